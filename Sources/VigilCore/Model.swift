import Foundation
import ONNX

/// A loaded model and what its metadata says about it (DESIGN.md, model contract):
/// `vigil.task`, `vigil.labels`, and the input it expects.
public final class Model: Sendable {
    public let name: String
    public let path: String
    public let task: String
    public let labels: [String]
    /// The model's own recommended alert threshold (`vigil.threshold`), if any.
    public let threshold: Double?
    public let input: TensorInfo
    public let metadata: [String: String]
    let session: ModelSession

    public init(name: String, path: String, threads: Int = 1) throws {
        let session: ModelSession
        do {
            session = try ModelSession(path: path, intraOpThreads: threads)
        } catch let e as ONNXError {
            throw ModelError(model: name, path: path, message: e.message)
        }
        guard session.inputs.count == 1, let input = session.inputs.first, input.elementType == .float else {
            throw ModelError(model: name, path: path,
                             message: "needs exactly one float32 input, has \(session.inputs.map(\.description).joined(separator: "; "))")
        }
        guard let output = session.outputs.first, output.elementType == .float else {
            throw ModelError(model: name, path: path, message: "its first output must be a float32 tensor of scores")
        }
        let outputCount = output.shape.filter { $0 > 0 }.reduce(1, *)
        let meta = session.metadata
        var labels = (meta["vigil.labels"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        labels.removeAll(where: \.isEmpty)
        let task = meta["vigil.task"] ?? (outputCount == 1 ? "score" : "classifier")
        if labels.isEmpty {
            labels = outputCount == 1 ? [task] : (0..<max(outputCount, 1)).map { "class\($0)" }
        } else if !output.shape.contains(where: { $0 < 0 }), labels.count != outputCount {
            throw ModelError(model: name, path: path,
                             message: "vigil.labels names \(labels.count) labels but output \(output.name) has \(outputCount) values")
        }
        self.name = name
        self.path = path
        self.session = session
        self.input = input
        self.metadata = meta
        self.task = task
        self.labels = labels
        self.threshold = meta["vigil.threshold"].flatMap(Double.init)
    }

    /// Input shape with the batch dimension fixed to 1 and other free dimensions left -1.
    public var inputShape: [Int] {
        input.shape.enumerated().map { i, d in (i == 0 && d < 0) ? 1 : d }
    }

    /// Elements one input holds, when the shape is fixed.
    public var inputElementCount: Int? {
        let s = inputShape
        return s.contains(where: { $0 < 0 }) ? nil : s.reduce(1, *)
    }

    public func metadataInt(_ key: String) -> Int? { metadata[key].flatMap { Int($0) } }

    /// Runs the model; returns one score per label and the run time.
    public func scores(for values: [Float], shape: [Int]) throws -> (scores: [Float], latencyMs: Double) {
        let start = DispatchTime.now().uptimeNanoseconds
        let outputs = try session.run(values, shape: shape)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        guard let first = outputs.first else {
            throw ModelError(model: name, path: path, message: "returned no float output")
        }
        return (first.values, ms)
    }
}

public struct ModelError: Error, CustomStringConvertible, Sendable {
    public let model: String
    public let path: String
    public let message: String
    public var description: String { "model \"\(model)\" (\(path)): \(message)" }
}

/// One result of running a pipeline's model on one input.
public struct Detection: Sendable, Equatable {
    public var uuid: String
    public var ts: Double
    public var pipeline: String
    public var device: String
    public var model: String
    public var label: String
    public var score: Double
    public var scores: [(String, Double)]
    public var latencyMs: Double

    public init(uuid: String = Detection.newUUID(), ts: Double, pipeline: String, device: String, model: String,
                label: String, score: Double, scores: [(String, Double)], latencyMs: Double) {
        self.uuid = uuid; self.ts = ts; self.pipeline = pipeline; self.device = device; self.model = model
        self.label = label; self.score = score; self.scores = scores; self.latencyMs = latencyMs
    }

    public static func == (a: Detection, b: Detection) -> Bool {
        a.uuid == b.uuid && a.ts == b.ts && a.label == b.label && a.score == b.score
    }

    /// The detection as one JSON object (the `detections` message and sync record body).
    public var json: JSONValue {
        .object([("uuid", .string(uuid)), ("ts", .number(ts)), ("pipeline", .string(pipeline)),
                 ("device", .string(device)), ("model", .string(model)), ("label", .string(label)),
                 ("score", .number(score)), ("scores", .object(scores.map { ($0.0, .number($0.1)) })),
                 ("latency_ms", .number(latencyMs))])
    }

    public static func newUUID() -> String { UUID().uuidString.lowercased() }

    /// `{"label": score, ...}` as stored in `detections.scores`.
    public var scoresJSON: String {
        JSONValue.object(scores.map { ($0.0, .number($0.1)) }).serialized
    }
}
