import Foundation
import ONNX
import VigilCore

/// What `vigilctl models` says about one .onnx file: its inputs and outputs (with free
/// dimensions by name), metadata, and whether it meets Vigil's model contract.
public struct ModelReport: Sendable {
    public let path: String
    public let bytes: Int
    public let inputs: [TensorInfo]
    public let outputs: [TensorInfo]
    public let metadata: [String: String]
    public let producer: String
    public let graphName: String
    /// nil when the model meets the contract, else why not.
    public let contractProblem: String?
    public let task: String?
    public let labels: [String]

    /// Loads `path`; throws when ONNX Runtime cannot load it at all.
    public init(path: String) throws {
        let session = try ModelSession(path: path, intraOpThreads: 1)
        self.path = path
        bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        inputs = session.inputs
        outputs = session.outputs
        metadata = session.metadata
        producer = session.producer
        graphName = session.graphName
        do {
            let m = try Model(name: URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent, path: path)
            contractProblem = nil
            task = m.task
            labels = m.labels
        } catch let e as ModelError {
            contractProblem = e.message
            task = session.metadata["vigil.task"]
            labels = []
        }
    }

    /// The .onnx files a PATH names: the file itself, or those in a folder (sorted).
    public static func files(at path: String) throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw QueryError("no such file or folder: \(path)")
        }
        guard isDir.boolValue else { return [path] }
        let names = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".onnx") }.sorted()
        guard !names.isEmpty else { throw QueryError("no .onnx files in \(path)") }
        return names.map { URL(fileURLWithPath: path).appendingPathComponent($0).path }
    }

    static func shape(_ t: TensorInfo) -> String {
        "[" + zip(t.shape, t.symbolicShape).map { d, s in d >= 0 ? String(d) : (s.isEmpty ? "?" : s) }.joined(separator: ", ") + "]"
    }

    public var text: String {
        var out = "\(path)\n"
        out += "  size:     \(String(format: "%.1f", Double(bytes) / 1024)) KiB"
        if !producer.isEmpty { out += ", producer \(producer)" }
        if !graphName.isEmpty { out += ", graph \(graphName)" }
        out += "\n"
        for t in inputs { out += "  input:    \(t.name) \(t.elementType.rawValue)\(ModelReport.shape(t))\n" }
        for t in outputs { out += "  output:   \(t.name) \(t.elementType.rawValue)\(ModelReport.shape(t))\n" }
        if let task { out += "  task:     \(task)\n" }
        if !labels.isEmpty { out += "  labels:   \(labels.joined(separator: ", "))\n" }
        out += "  contract: " + (contractProblem.map { "NOT MET: \($0)" } ?? "ok") + "\n"
        if !metadata.isEmpty {
            out += "  metadata:\n"
            let w = metadata.keys.map(\.count).max() ?? 0
            for k in metadata.keys.sorted() {
                out += "    \(k)" + String(repeating: " ", count: w - k.count) + "  \(metadata[k]!)\n"
            }
        }
        return out
    }

    public var json: JSONValue {
        func tensor(_ t: TensorInfo) -> JSONValue {
            .object([("name", .string(t.name)), ("type", .string(t.elementType.rawValue)),
                     ("shape", .array(zip(t.shape, t.symbolicShape).map { d, s in d >= 0 ? .number(Double(d)) : .string(s.isEmpty ? "?" : s) }))])
        }
        return .object([
            ("path", .string(path)), ("bytes", .number(Double(bytes))),
            ("producer", .string(producer)), ("graph", .string(graphName)),
            ("inputs", .array(inputs.map(tensor))), ("outputs", .array(outputs.map(tensor))),
            ("task", task.map { .string($0) } ?? .null), ("labels", .array(labels.map { .string($0) })),
            ("contract", .string(contractProblem == nil ? "ok" : "not met")),
            ("problem", contractProblem.map { .string($0) } ?? .null),
            ("metadata", .object(metadata.keys.sorted().map { ($0, .string(metadata[$0]!)) })),
        ])
    }
}
