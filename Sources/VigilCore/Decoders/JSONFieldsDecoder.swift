import Foundation

/// `json`: an object; `fields` are dotted paths (`AM2301.Temperature` for Tasmota's nested
/// objects, plain keys for Zigbee2MQTT's flat ones); booleans read as 0/1; an optional
/// `ts` in epoch seconds (milliseconds are recognised by size) or ISO 8601 with a zone.
public struct JSONFieldsDecoder: PayloadDecoder {
    public let fields: [String]
    public init(fields: [String]) { self.fields = fields }

    public func decode(_ payload: [UInt8], receivedAt: Double) throws(FrameError) -> TimedFrame {
        let value: JSONValue
        do {
            value = try JSONParser.parse(payload)
        } catch {
            throw FrameError(.malformed, "invalid JSON: \(error)")
        }
        guard case .object = value else { throw FrameError(.malformed, "expected a JSON object") }
        var readings: [Float?] = []
        readings.reserveCapacity(fields.count)
        var present = 0
        for f in fields {
            guard let v = value.value(atPath: f), v != .null else { readings.append(nil); continue }
            guard let d = v.double else { throw FrameError(.malformed, "field \(f) is not a number") }
            guard d.isFinite, Float(d).isFinite else { throw FrameError(.nonFinite, "field \(f) is not finite") }
            readings.append(Float(d))
            present += 1
        }
        guard present > 0 else {
            throw FrameError(.malformed, "none of the fields \(fields.joined(separator: ", ")) is present")
        }
        var ts = receivedAt
        if let t = value["ts"], t != .null {
            // A ts that is present but unreadable is an error, not silently the arrival time:
            // the sensor window orders readings by it.
            if let d = t.double, d.isFinite, d > 0 {
                ts = d > 1e11 ? d / 1000 : d
            } else if let s = t.string, let date = ISO8601DateFormatter().date(from: s) {
                ts = date.timeIntervalSince1970
            } else {
                throw FrameError(.malformed, "ts must be epoch seconds (or milliseconds) or an ISO 8601 time with zone")
            }
        }
        return TimedFrame(frame: .readings(readings), ts: ts)
    }
}
