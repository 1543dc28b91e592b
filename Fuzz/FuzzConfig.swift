// libFuzzer target: the config parser (JSON with comments, key paths, every section).
// Built and run by scripts/fuzz; any input must give a Config or a ConfigError, never a crash.
import VigilCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? Config.parse(bytes, file: "fuzz.json")
    return 0
}
