import Foundation

/// A configured pipeline bound to its model: how to decode its payloads and how to make
/// the per-device stream state that turns frames into model inputs.
public final class Pipeline: Sendable {
    public let settings: PipelineSettings
    public let model: Model
    public let decoder: any PayloadDecoder
    let makeAdapter: @Sendable () -> any StreamAdapter

    public var name: String { settings.name }

    init(settings: PipelineSettings, model: Model, decoder: any PayloadDecoder,
         makeAdapter: @escaping @Sendable () -> any StreamAdapter) {
        self.settings = settings; self.model = model; self.decoder = decoder; self.makeAdapter = makeAdapter
    }

    /// Checks the pipeline against its model and builds it; the error names pipeline,
    /// model and mismatch, so vigild can refuse to start with one clear line.
    public static func build(_ s: PipelineSettings, model: Model) throws -> Pipeline {
        func mismatch(_ why: String) -> PipelineError {
            PipelineError(pipeline: s.name, model: model.name, message: why)
        }
        let modelShape = model.inputShape
        switch s.format {
        case .f32le:
            let shape: [Int]
            if let given = s.shape {
                shape = [1] + given
                if let n = model.inputElementCount, n != given.reduce(1, *) {
                    throw mismatch("shape \(given) holds \(given.reduce(1, *)) values but the model's input \(model.input) takes \(n)")
                }
            } else {
                guard model.inputElementCount != nil else {
                    throw mismatch("the model's input \(model.input) has free dimensions: set \"shape\" in the pipeline")
                }
                shape = modelShape
            }
            let count = shape.reduce(1, *)
            return Pipeline(settings: s, model: model, decoder: F32LEDecoder(expectedCount: count),
                            makeAdapter: { DirectAdapter(shape: shape) })
        case .json:
            guard let n = model.inputElementCount else {
                throw mismatch("the model's input \(model.input) has free dimensions, which json pipelines do not fill yet")
            }
            guard n == s.fields.count else {
                throw mismatch("\(s.fields.count) fields but the model's input \(model.input) takes \(n) values")
            }
            return Pipeline(settings: s, model: model, decoder: JSONFieldsDecoder(fields: s.fields),
                            makeAdapter: { DirectAdapter(shape: modelShape) })
        default:
            throw mismatch("format \(s.format.rawValue) is not supported by this build")
        }
    }

    /// Runs the model on one input and names the winning label.
    func detect(_ input: ModelInput, device: String) throws -> Detection {
        let (scores, ms) = try model.scores(for: input.values, shape: input.shape)
        guard !scores.isEmpty else { throw FrameError(.inferenceFailed, "model \(model.name) returned no scores") }
        var best = 0
        for i in scores.indices where scores[i] > scores[best] { best = i }
        let labels = model.labels
        let named = scores.enumerated().map { i, v in (i < labels.count ? labels[i] : "class\(i)", Double(v)) }
        return Detection(ts: input.ts, pipeline: name, device: device, model: model.name,
                         label: named[best].0, score: named[best].1, scores: named, latencyMs: ms)
    }
}

public struct PipelineError: Error, CustomStringConvertible, Sendable {
    public let pipeline: String
    public let model: String
    public let message: String
    public var description: String { "pipeline \"\(pipeline)\" with model \"\(model)\": \(message)" }
}
