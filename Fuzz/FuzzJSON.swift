// libFuzzer target: the JSON parser that reads every json payload, strict and relaxed,
// and the serialiser (what parses must serialise and parse back to the same value).
import VigilCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let v = try? JSONParser.parse(bytes) {
        let again = try? JSONParser.parse(v.serialized)
        precondition(again != nil, "serialised JSON does not parse back")
    }
    var relaxed = JSONParser(relaxed: true, trackLines: true)
    _ = try? relaxed.parse(bytes)
    return 0
}
