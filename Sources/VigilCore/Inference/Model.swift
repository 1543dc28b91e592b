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
    /// The input that takes the daemon's per-device baseline, when `vigil.state` names one
    /// (stateful anomaly models: Models/README.md, "the baseline state"), with the rows it
    /// wants in order (`vigil.state_layout`).
    public let stateInput: TensorInfo?
    public let stateLayout: [BaselineRow]
    /// Every output; the first holds the scores.
    public let outputs: [TensorInfo]
    /// The output `vigil.embedding` names (float32 [batch, D]: a vector per input that
    /// enrollment compares by cosine similarity, Enrollment/); nil when the model has none,
    /// and then enrollment is off for its pipelines and nothing else changes.
    public let embedding: TensorInfo?
    public let metadata: [String: String]
    /// `vigil.version` ("" when absent): what an enrollment made with this model is tied to.
    public var version: String { metadata["vigil.version"] ?? "" }
    /// ONNX Runtime intra-op threads this model runs with.
    public let threads: Int
    let session: ModelSession

    public init(name: String, path: String, threads: Int = 1) throws {
        let session: ModelSession
        do {
            session = try ModelSession(path: path, intraOpThreads: threads)
        } catch let e as ONNXError {
            throw ModelError(model: name, path: path, message: e.message)
        }
        let meta = session.metadata
        let stateName = meta["vigil.state"]?.trimmingCharacters(in: .whitespaces)
        let stateInput = session.inputs.first { $0.name == stateName }
        let dataInputs = session.inputs.filter { $0.name != stateName }
        guard dataInputs.count == 1, let input = dataInputs.first, input.elementType == .float else {
            throw ModelError(model: name, path: path,
                             message: "needs exactly one float32 input (plus the baseline input vigil.state names), has \(session.inputs.map(\.description).joined(separator: "; "))")
        }
        if let stateName, !stateName.isEmpty {
            guard let stateInput else {
                throw ModelError(model: name, path: path, message: "vigil.state names input \"\(stateName)\", which the model does not have")
            }
            guard stateInput.elementType == .float, stateInput.shape.count == 3 else {
                throw ModelError(model: name, path: path, message: "the baseline input \(stateInput) must be float32 [batch, rows, fields]")
            }
        }
        var layout: [BaselineRow] = []
        if stateInput != nil {
            for name in (meta["vigil.state_layout"] ?? "").split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                guard let row = BaselineRow(rawValue: name) else {
                    throw ModelError(model: name, path: path, message: "vigil.state_layout names row \"\(name)\"; vigild provides \(BaselineRow.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                layout.append(row)
            }
            let rows = stateInput!.shape[1]
            guard !layout.isEmpty, rows < 0 || rows == layout.count else {
                throw ModelError(model: name, path: path, message: "vigil.state_layout must list one row name per row of \(stateInput!) (\(layout.count) listed)")
            }
        }
        guard let output = session.outputs.first, output.elementType == .float else {
            throw ModelError(model: name, path: path, message: "its first output must be a float32 tensor of scores")
        }
        let outputCount = output.shape.filter { $0 > 0 }.reduce(1, *)
        var labels = (meta["vigil.labels"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        labels.removeAll(where: \.isEmpty)
        let task = meta["vigil.task"] ?? (outputCount == 1 ? "score" : "classifier")
        if labels.isEmpty {
            labels = outputCount == 1 ? [task] : (0..<max(outputCount, 1)).map { "class\($0)" }
        } else if !output.shape.dropFirst().contains(where: { $0 < 0 }), labels.count != outputCount {
            // A free batch dimension (the first) still leaves one row of scores per input.
            throw ModelError(model: name, path: path,
                             message: "vigil.labels names \(labels.count) labels but output \(output.name) has \(outputCount) values")
        }
        self.name = name
        self.path = path
        self.session = session
        self.input = input
        self.stateInput = stateInput
        self.stateLayout = layout
        self.outputs = session.outputs
        if let wanted = meta["vigil.embedding"]?.trimmingCharacters(in: .whitespaces), !wanted.isEmpty {
            guard let e = session.outputs.first(where: { $0.name == wanted }), e.name != output.name, e.elementType == .float,
                  e.shape.count == 2, e.shape[1] > 0 else {
                throw ModelError(model: name, path: path, message: "vigil.embedding names output \"\(wanted)\", which must be a float32 [batch, D] output other than the scores")
            }
            self.embedding = e
        } else {
            self.embedding = nil
        }
        self.threads = threads
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

    public func metadataInt(_ key: String) -> Int? {
        metadata[key].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// Scores the first output holds, when its shape is fixed (batch dimension counted as 1).
    public var outputCount: Int? {
        guard let o = outputs.first else { return nil }
        let dims = o.shape.enumerated().map { i, d in (i == 0 && d < 0) ? 1 : d }
        return dims.contains(where: { $0 < 0 }) ? nil : dims.reduce(1, *)
    }

    /// Whether the model declares a free batch dimension on its input and its scores, so
    /// several inputs can share one run (`scores(batch:)`).
    public var batchable: Bool {
        (input.shape.first ?? 1) < 0 && (outputs.first?.shape.first ?? 1) < 0 && (stateInput?.shape.first ?? -1) < 0
    }

    /// Runs the model once on several inputs of one shape, stacked on the batch dimension;
    /// returns each input's scores and the run's time shared out per input. One run of 32
    /// anomaly windows costs about as much as four single runs: for a small model, ONNX
    /// Runtime's fixed cost per call is most of the time.
    public func scores(batch: [ModelInput]) throws -> (scores: [[Float]], latencyMs: Double) {
        let r = try run(batch: batch)
        return (r.scores, r.latencyMs)
    }

    /// `scores(batch:)` with each input's embedding (empty arrays when the model has none).
    public func run(batch: [ModelInput]) throws -> (scores: [[Float]], embeddings: [[Float]], latencyMs: Double) {
        guard let first = batch.first else { return ([], [], 0) }
        if batch.count == 1 {
            let one = try run(first)
            return ([one.scores], [one.embedding], one.latencyMs)
        }
        var values: [Float] = [], state: [Float] = []
        values.reserveCapacity(first.values.count * batch.count)
        state.reserveCapacity(first.state.count * batch.count)
        for input in batch {
            guard input.shape == first.shape, input.stateShape == first.stateShape else {
                throw ModelError(model: name, path: path, message: "inputs of one batch differ in shape (\(first.shape) and \(input.shape))")
            }
            values.append(contentsOf: input.values)
            state.append(contentsOf: input.state)
        }
        var shape = first.shape, stateShape = first.stateShape
        shape[0] = batch.count
        if !stateShape.isEmpty { stateShape[0] = batch.count }
        let all = try run(ModelInput(values: values, shape: shape, ts: 0, state: state, stateShape: stateShape))
        func split(_ v: [Float], _ what: String) throws -> [[Float]] {
            guard v.count % batch.count == 0 else {
                throw ModelError(model: name, path: path, message: "returned \(v.count) \(what) values for a batch of \(batch.count)")
            }
            let k = v.count / batch.count
            return (0..<batch.count).map { Array(v[$0 * k..<($0 + 1) * k]) }
        }
        let embeddings = embedding == nil ? Array(repeating: [], count: batch.count) : try split(all.embedding, "embedding")
        return (try split(all.scores, "score"), embeddings, all.latencyMs / Double(batch.count))
    }

    /// Runs the model; returns one score per label and the run time.
    public func scores(for values: [Float], shape: [Int]) throws -> (scores: [Float], latencyMs: Double) {
        try scores(for: ModelInput(values: values, shape: shape, ts: 0))
    }

    /// Runs the model on one input (and its baseline, for a stateful model).
    public func scores(for input: ModelInput) throws -> (scores: [Float], latencyMs: Double) {
        let r = try run(input)
        return (r.scores, r.latencyMs)
    }

    /// Runs the model on one input; returns its scores, its embedding (empty when the model
    /// has none) and the run time.
    public func run(_ input: ModelInput) throws -> (scores: [Float], embedding: [Float], latencyMs: Double) {
        var tensors = [(values: input.values, shape: input.shape)]
        if let stateInput {
            guard !input.stateShape.isEmpty else {
                throw ModelError(model: name, path: path, message: "takes a baseline (input \(stateInput.name)) and none was given")
            }
            let s = (values: input.state, shape: input.stateShape)
            if session.inputs.first?.name == stateInput.name { tensors.insert(s, at: 0) } else { tensors.append(s) }
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let outputs = try session.run(tensors)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        guard let first = outputs.first else {
            throw ModelError(model: name, path: path, message: "returned no float output")
        }
        guard let embedding else { return (first.values, [], ms) }
        guard let e = outputs.first(where: { $0.name == embedding.name }) else {
            throw ModelError(model: name, path: path, message: "returned no embedding output \(embedding.name)")
        }
        return (first.values, e.values, ms)
    }
}

public struct ModelError: Error, CustomStringConvertible, Sendable {
    public let model: String
    public let path: String
    public let message: String
    public var description: String { "model \"\(model)\" (\(path)): \(message)" }
}

/// What a model file declares, for `vigilctl models PATH`: inputs, outputs, metadata,
/// and whether it fits vigil's model contract (and if not, why). Reads any model ONNX
/// Runtime can load, including ones vigil would refuse.
public struct ModelDescription: Sendable {
    public let path: String
    public let producer: String
    public let graphName: String
    public let inputs: [TensorInfo]
    public let outputs: [TensorInfo]
    /// `metadata_props`, read through ONNX Runtime's model-metadata API.
    public let metadata: [String: String]
    /// The task and labels vigil would use; nil when the model does not fit the contract.
    public let task: String?
    public let labels: [String]
    /// Why vigil cannot serve a pipeline with this model; nil when it can.
    public let problem: String?

    public static func read(path: String) throws -> ModelDescription {
        let session: ModelSession
        do {
            session = try ModelSession(path: path, intraOpThreads: 1)
        } catch let e as ONNXError {
            throw ModelError(model: URL(fileURLWithPath: path).lastPathComponent, path: path, message: e.message)
        }
        var task: String?, labels: [String] = [], problem: String?
        do {
            let m = try Model(name: URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent, path: path, threads: 1)
            task = m.task
            labels = m.labels
        } catch let e as ModelError {
            problem = e.message
        }
        return ModelDescription(path: path, producer: session.producer, graphName: session.graphName,
                                inputs: session.inputs, outputs: session.outputs, metadata: session.metadata,
                                task: task, labels: labels, problem: problem)
    }

    /// A few lines for people: inputs, outputs, task, labels (abbreviated past 20), metadata.
    public var text: String {
        var lines = ["\(path)"]
        if !producer.isEmpty { lines.append("  producer: \(producer)") }
        for i in inputs { lines.append("  input  \(i)") }
        for o in outputs { lines.append("  output \(o)") }
        if let task { lines.append("  task: \(task)") }
        if !labels.isEmpty {
            let shown = labels.prefix(20).joined(separator: ", ")
            lines.append("  labels (\(labels.count)): \(shown)\(labels.count > 20 ? ", ..." : "")")
        }
        for k in metadata.keys.sorted() where k != "vigil.labels" {
            let v = metadata[k]!
            lines.append("  \(k) = \(v.count > 200 ? String(v.prefix(200)) + "..." : v)")
        }
        if let problem { lines.append("  not usable by vigil: \(problem)") }
        return lines.joined(separator: "\n")
    }
}

/// Reads a labels file: one label per line, or, for a `.csv` file, one column of a CSV
/// with a header row (`display_name`, else `label`, else `name`; AudioSet's
/// `yamnet_class_map.csv` has `index,mid,display_name`). Quoted fields may hold commas.
public enum LabelsFile {
    public static func read(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LabelsFileError(path: path, message: FileManager.default.fileExists(atPath: path) ? "cannot read it" : "no such file")
        }
        var text = String(decoding: data, as: UTF8.self)
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }  // a BOM from spreadsheet exports
        if path.lowercased().hasSuffix(".csv") {
            let rows = parseCSV(text).filter { !($0.count == 1 && $0[0].isEmpty) }
            guard let header = rows.first else { throw LabelsFileError(path: path, message: "is empty") }
            let names = header.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let col = ["display_name", "label", "name"].lazy.compactMap({ names.firstIndex(of: $0) }).first else {
                throw LabelsFileError(path: path, message: "has no display_name, label or name column (header: \(header.joined(separator: ",")))")
            }
            return try rows.dropFirst().enumerated().map { i, r in
                guard col < r.count else { throw LabelsFileError(path: path, message: "row \(i + 2) has no column \(col + 1)") }
                return r[col]
            }
        }
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// RFC 4180 CSV: quoted fields with doubled quotes, CRLF or LF line ends.
    static func parseCSV(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = ""
        var quoted = false, afterQuote = false
        var it = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        while let c = pending ?? it.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    if let n = it.next() {
                        if n == "\"" { field.unicodeScalars.append(n) } else { quoted = false; afterQuote = true; pending = n }
                    } else { quoted = false }
                } else { field.unicodeScalars.append(c) }
                continue
            }
            switch c {
            case "\"" where field.isEmpty && !afterQuote: quoted = true
            case ",": row.append(field); field = ""; afterQuote = false
            case "\n": row.append(field); rows.append(row); row = []; field = ""; afterQuote = false
            case "\r": break
            default: field.unicodeScalars.append(c)
            }
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }
}

public struct LabelsFileError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let message: String
    public var description: String { "labels file \(path): \(message)" }
}
