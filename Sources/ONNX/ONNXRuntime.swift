import COnnxRuntime
import Foundation

/// An error from ONNX Runtime, naming the operation and model at fault.
public struct ONNXError: Error, CustomStringConvertible, Sendable {
    public let code: Int
    public let operation: String
    public let message: String
    public var description: String { "ONNX Runtime \(operation) failed: \(message)" }
}

/// The C API's function table for the headers' version. A library older than the
/// headers returns nil here, which is a broken install, not a runtime condition.
/// nonisolated(unsafe): the table is immutable, written once by ONNX Runtime at load.
nonisolated(unsafe) let api: UnsafePointer<OrtApi> = {
    guard let p = cort_api() else {
        fatalError("libonnxruntime does not provide ORT API version \(ORT_API_VERSION): upgrade ONNX Runtime")
    }
    return p
}()

/// Turns an OrtStatus into a typed error; the one place ONNX Runtime statuses are read.
func check(_ status: OpaquePointer?, _ operation: @autoclosure () -> String) throws {
    guard let status else { return }
    let message = api.pointee.GetErrorMessage(status).map { String(cString: $0) } ?? "unknown error"
    let code = Int(api.pointee.GetErrorCode(status).rawValue)
    api.pointee.ReleaseStatus(status)
    throw ONNXError(code: code, operation: operation(), message: message)
}

/// The process-wide ONNX Runtime environment (logging, thread pools). One per process.
final class Environment: @unchecked Sendable {
    // @unchecked Sendable: OrtEnv is immutable after creation and documented thread-safe.
    let handle: OpaquePointer

    static let shared: Environment = {
        do { return try Environment() } catch { fatalError("cannot create ONNX Runtime environment: \(error)") }
    }()

    private init() throws {
        var env: OpaquePointer?
        try check(api.pointee.CreateEnv(ORT_LOGGING_LEVEL_ERROR, "vigil", &env), "create environment")
        handle = env!
        _ = api.pointee.DisableTelemetryEvents(handle)
    }
}

/// Describes one model input or output.
public struct TensorInfo: Sendable, Equatable, CustomStringConvertible {
    public enum ElementType: String, Sendable { case float, double, int64, int32, int8, uint8, int16, bool, string, other }
    public let name: String
    public let elementType: ElementType
    /// Dimensions; -1 where the model leaves a dimension free.
    public let shape: [Int]
    /// Names of the free dimensions ("" where none).
    public let symbolicShape: [String]

    /// Element count when every dimension is fixed.
    public var fixedElementCount: Int? {
        shape.contains(where: { $0 < 0 }) ? nil : shape.reduce(1, *)
    }

    public var description: String {
        let dims = zip(shape, symbolicShape).map { d, s in d >= 0 ? String(d) : (s.isEmpty ? "?" : s) }
        return "\(name): \(elementType.rawValue)[\(dims.joined(separator: ", "))]"
    }
}

/// The outputs of one run: each output flattened, with its shape.
public struct InferenceOutput: Sendable {
    public let name: String
    public let shape: [Int]
    public let values: [Float]
}

/// One loaded model. `Run` is documented thread-safe by ONNX Runtime, so one session
/// serves every worker.
public final class ModelSession: @unchecked Sendable {
    // @unchecked Sendable: the session handle is only used through OrtApi::Run (thread-safe)
    // and the properties below are immutable after init.
    private let session: OpaquePointer
    private let memoryInfo: OpaquePointer
    public let path: String
    public let inputs: [TensorInfo]
    public let outputs: [TensorInfo]
    /// `metadata_props` of the model (custom metadata map).
    public let metadata: [String: String]
    public let producer: String
    public let graphName: String
    private let inputNames: [String]
    private let outputNames: [String]

    /// Loads a model. `intraOpThreads` 0 lets ONNX Runtime choose (one per core).
    public init(path: String, intraOpThreads: Int = 1) throws {
        _ = Environment.shared
        guard FileManager.default.fileExists(atPath: path) else {
            throw ONNXError(code: Int(ORT_NO_SUCHFILE.rawValue), operation: "load model \(path)", message: "no such file")
        }
        var options: OpaquePointer?
        try check(api.pointee.CreateSessionOptions(&options), "create session options")
        defer { api.pointee.ReleaseSessionOptions(options) }
        try check(api.pointee.SetIntraOpNumThreads(options, Int32(intraOpThreads)), "set intra-op threads")
        try check(api.pointee.SetInterOpNumThreads(options, 1), "set inter-op threads")
        try check(api.pointee.SetSessionGraphOptimizationLevel(options, ORT_ENABLE_ALL), "set optimisation level")
        // Spinning worker threads burn a core while idle; a gateway daemon must idle at ~0% CPU.
        try check(api.pointee.AddSessionConfigEntry(options, "session.intra_op.allow_spinning", "0"), "disable spinning")
        try check(api.pointee.AddSessionConfigEntry(options, "session.inter_op.allow_spinning", "0"), "disable spinning")

        var s: OpaquePointer?
        try check(api.pointee.CreateSession(Environment.shared.handle, path, options, &s), "load model \(path)")
        session = s!
        var mem: OpaquePointer?
        do {
            try check(api.pointee.CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mem), "create memory info")
        } catch {
            api.pointee.ReleaseSession(session)
            throw error
        }
        memoryInfo = mem!
        self.path = path
        do {
            inputs = try ModelSession.describe(session, input: true, path: path)
            outputs = try ModelSession.describe(session, input: false, path: path)
            (metadata, producer, graphName) = try ModelSession.readMetadata(session, path: path)
        } catch {
            api.pointee.ReleaseMemoryInfo(memoryInfo)
            api.pointee.ReleaseSession(session)
            throw error
        }
        inputNames = inputs.map(\.name)
        outputNames = outputs.map(\.name)
    }

    deinit {
        api.pointee.ReleaseMemoryInfo(memoryInfo)
        api.pointee.ReleaseSession(session)
    }

    private static func allocator() throws -> UnsafeMutablePointer<OrtAllocator> {
        var a: UnsafeMutablePointer<OrtAllocator>?
        try check(api.pointee.GetAllocatorWithDefaultOptions(&a), "get allocator")
        return a!
    }

    private static func takeString(_ p: UnsafeMutablePointer<CChar>?, _ alloc: UnsafeMutablePointer<OrtAllocator>) -> String {
        guard let p else { return "" }
        defer { _ = api.pointee.AllocatorFree(alloc, p) }
        return String(cString: p)
    }

    private static func describe(_ session: OpaquePointer, input: Bool, path: String) throws -> [TensorInfo] {
        let alloc = try allocator()
        var count = 0
        try check(input ? api.pointee.SessionGetInputCount(session, &count)
                        : api.pointee.SessionGetOutputCount(session, &count), "count tensors of \(path)")
        var result: [TensorInfo] = []
        for i in 0..<count {
            var namePtr: UnsafeMutablePointer<CChar>?
            try check(input ? api.pointee.SessionGetInputName(session, i, alloc, &namePtr)
                            : api.pointee.SessionGetOutputName(session, i, alloc, &namePtr), "read tensor name in \(path)")
            let name = takeString(namePtr, alloc)
            var typeInfo: OpaquePointer?
            try check(input ? api.pointee.SessionGetInputTypeInfo(session, i, &typeInfo)
                            : api.pointee.SessionGetOutputTypeInfo(session, i, &typeInfo), "read type of \(name) in \(path)")
            defer { api.pointee.ReleaseTypeInfo(typeInfo) }
            var tensorInfo: OpaquePointer?
            try check(api.pointee.CastTypeInfoToTensorInfo(typeInfo, &tensorInfo), "read tensor info of \(name)")
            guard let tensorInfo else {
                // Sequences and maps (e.g. a scikit-learn ZipMap output): described, not used.
                result.append(TensorInfo(name: name, elementType: .other, shape: [], symbolicShape: []))
                continue
            }
            var et = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED
            try check(api.pointee.GetTensorElementType(tensorInfo, &et), "read element type of \(name)")
            var ndims = 0
            try check(api.pointee.GetDimensionsCount(tensorInfo, &ndims), "read rank of \(name)")
            var dims = [Int64](repeating: 0, count: ndims)
            try check(api.pointee.GetDimensions(tensorInfo, &dims, ndims), "read shape of \(name)")
            var symbolic = [UnsafePointer<CChar>?](repeating: nil, count: ndims)
            try check(api.pointee.GetSymbolicDimensions(tensorInfo, &symbolic, ndims), "read dimension names of \(name)")
            result.append(TensorInfo(name: name, elementType: elementType(et), shape: dims.map { Int($0) },
                                     symbolicShape: symbolic.map { $0.map { String(cString: $0) } ?? "" }))
        }
        return result
    }

    private static func elementType(_ t: ONNXTensorElementDataType) -> TensorInfo.ElementType {
        switch t {
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return .float
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return .double
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return .int64
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return .int32
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return .int16
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return .int8
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return .uint8
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return .bool
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: return .string
        default: return .other
        }
    }

    private static func readMetadata(_ session: OpaquePointer, path: String) throws -> ([String: String], String, String) {
        let alloc = try allocator()
        var meta: OpaquePointer?
        try check(api.pointee.SessionGetModelMetadata(session, &meta), "read metadata of \(path)")
        defer { api.pointee.ReleaseModelMetadata(meta) }
        var keys: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        var nkeys: Int64 = 0
        try check(api.pointee.ModelMetadataGetCustomMetadataMapKeys(meta, alloc, &keys, &nkeys), "read metadata keys of \(path)")
        var map: [String: String] = [:]
        if let keys {
            for i in 0..<Int(nkeys) {
                guard let k = keys[i] else { continue }
                var value: UnsafeMutablePointer<CChar>?
                try check(api.pointee.ModelMetadataLookupCustomMetadataMap(meta, alloc, k, &value), "read metadata of \(path)")
                map[String(cString: k)] = takeString(value, alloc)
                _ = api.pointee.AllocatorFree(alloc, k)
            }
            _ = api.pointee.AllocatorFree(alloc, keys)
        }
        var p: UnsafeMutablePointer<CChar>?
        try check(api.pointee.ModelMetadataGetProducerName(meta, alloc, &p), "read producer of \(path)")
        let producer = takeString(p, alloc)
        try check(api.pointee.ModelMetadataGetGraphName(meta, alloc, &p), "read graph name of \(path)")
        let graph = takeString(p, alloc)
        return (map, producer, graph)
    }

    /// Runs the model on one float32 input of the given shape; returns every float output.
    public func run(_ input: [Float], shape: [Int]) throws -> [InferenceOutput] {
        guard inputs.count == 1 else {
            throw ONNXError(code: Int(ORT_INVALID_ARGUMENT.rawValue), operation: "run \(path)",
                            message: "model has \(inputs.count) inputs; vigil feeds exactly one")
        }
        return try run([(input, shape)])
    }

    /// Runs the model on one float32 tensor per declared input, in the model's input order
    /// (a stateful anomaly model takes its window and the daemon's baseline); returns every
    /// float output.
    public func run(_ tensors: [(values: [Float], shape: [Int])]) throws -> [InferenceOutput] {
        guard tensors.count == inputs.count else {
            throw ONNXError(code: Int(ORT_INVALID_ARGUMENT.rawValue), operation: "run \(path)",
                            message: "model has \(inputs.count) inputs, \(tensors.count) given")
        }
        for (i, t) in tensors.enumerated() {
            let expected = t.shape.reduce(1, *)
            guard expected == t.values.count else {
                throw ONNXError(code: Int(ORT_INVALID_ARGUMENT.rawValue), operation: "run \(path)",
                                message: "input \(inputNames[i]) has \(t.values.count) values but shape \(t.shape) needs \(expected)")
            }
        }
        var inputValues = [OpaquePointer?](repeating: nil, count: tensors.count)
        var outputValues = [OpaquePointer?](repeating: nil, count: outputNames.count)
        defer {
            for v in inputValues where v != nil { api.pointee.ReleaseValue(v) }
            for v in outputValues where v != nil { api.pointee.ReleaseValue(v) }
        }
        // ORT never writes to an input tensor, so the caller's buffers are lent as they are: a
        // `var` copy here cost a 62 KB (audio) to 154 KB (camera) copy per run.
        func lend(_ i: Int) throws {
            guard i < tensors.count else {
                try withCStrings(inputNames) { inNames in
                    try withCStrings(outputNames) { outNames in
                        try check(api.pointee.Run(session, nil, inNames, &inputValues, inputValues.count, outNames,
                                                  outNames.count, &outputValues), "run \(path)")
                    }
                }
                return
            }
            let dims = tensors[i].shape.map { Int64($0) }
            try tensors[i].values.withUnsafeBytes { buf in
                try check(api.pointee.CreateTensorWithDataAsOrtValue(memoryInfo, UnsafeMutableRawPointer(mutating: buf.baseAddress),
                                                                     buf.count, dims, dims.count,
                                                                     ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &inputValues[i]),
                          "create input tensor \(inputNames[i]) for \(path)")
                try lend(i + 1)   // the buffer stays lent until the run below has returned
            }
        }
        try lend(0)
        var results: [InferenceOutput] = []
        for (i, value) in outputValues.enumerated() {
            guard let value, outputs[i].elementType == .float else { continue }
            var shapeInfo: OpaquePointer?
            try check(api.pointee.GetTensorTypeAndShape(value, &shapeInfo), "read output shape")
            defer { api.pointee.ReleaseTensorTypeAndShapeInfo(shapeInfo) }
            var count = 0
            try check(api.pointee.GetTensorShapeElementCount(shapeInfo, &count), "count output elements")
            var ndims = 0
            try check(api.pointee.GetDimensionsCount(shapeInfo, &ndims), "read output rank")
            var odims = [Int64](repeating: 0, count: ndims)
            try check(api.pointee.GetDimensions(shapeInfo, &odims, ndims), "read output dims")
            var raw: UnsafeMutableRawPointer?
            try check(api.pointee.GetTensorMutableData(value, &raw), "read output \(outputNames[i])")
            let values = raw.map { Array(UnsafeBufferPointer(start: $0.assumingMemoryBound(to: Float.self), count: count)) } ?? []
            results.append(InferenceOutput(name: outputNames[i], shape: odims.map { Int($0) }, values: values))
        }
        return results
    }

    public static var runtimeVersion: String {
        guard let base = OrtGetApiBase(), let v = base.pointee.GetVersionString() else { return "unknown" }
        return String(cString: v)
    }
}

/// Lends an array of C strings for the duration of `body`.
private func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) throws -> R) rethrows -> R {
    let dup = strings.map { strdup($0) }
    defer { dup.forEach { free($0) } }
    return try body(dup.map { UnsafePointer($0) })
}
