// libFuzzer target: the json payload decoder (dotted fields, `ts` in s/ms/µs/ns or ISO 8601,
// the clock-skew check, the key cap) and the sensor window behind it. Any input must give a
// frame or a FrameError; an accepted `ts` is never further ahead of the arrival than the
// skew; a payload with an object over the key cap is never accepted.
import VigilCore

func widestObject(_ v: JSONValue) -> Int {
    switch v {
    case .object(let m): return max(m.count, m.map { widestObject($0.1) }.max() ?? 0)
    case .array(let a): return a.map(widestObject).max() ?? 0
    default: return 0
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONFields(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let arrival = 1_800_000_000.0
    let decoder = JSONFieldsDecoder(fields: ["t", "a.b", "on"], maxClockSkew: 60, maxKeys: 16)
    guard let frame = try? decoder.decode(bytes, receivedAt: arrival) else { return 0 }
    precondition(frame.ts <= arrival + 60, "a ts beyond the clock skew was accepted")
    precondition(frame.receivedAt == arrival, "the arrival time was lost")
    if let v = try? JSONParser.parse(bytes) { precondition(widestObject(v) <= 16, "an object over the key cap was accepted") }
    let window = SensorWindowAdapter(shape: [1, 2, 3], window: 2, fields: 3, maxClockSkew: 60)
    _ = try? window.inputs(for: frame)
    let out = try? window.inputs(for: frame)
    precondition(out?.allSatisfy { $0.values.count == 6 } ?? true, "window of the wrong size")
    return 0
}
