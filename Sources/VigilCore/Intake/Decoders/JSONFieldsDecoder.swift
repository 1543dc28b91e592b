import Foundation

/// `json`: an object; `fields` are dotted paths (`AM2301.Temperature` for Tasmota's nested
/// objects, plain keys for Zigbee2MQTT's flat ones); booleans read as 0/1; an optional
/// `ts` in epoch seconds (milliseconds, microseconds and nanoseconds are recognised by
/// size) or ISO 8601 with a zone.
///
/// A `ts` more than `maxClockSkew` seconds ahead of the arrival time is rejected
/// (`badTimestamp`): the sensor window keeps a device's newest time, and one reading from
/// the year 2100 would otherwise make every later reading "older" and blind the device.
public struct JSONFieldsDecoder: PayloadDecoder {
    /// One parser for every payload's ISO 8601 `ts`: a Sendable value (swift-foundation's
    /// format style), so lanes share it without a lock; `ISO8601DateFormatter()` per payload
    /// built a formatter object each time.
    static let iso8601 = Date.ISO8601FormatStyle()
    public let fields: [String]
    /// `limits.max_clock_skew_s`.
    public let maxClockSkew: Double
    /// `limits.max_json_keys`: members any one object of the payload may have.
    public let maxKeys: Int
    public init(fields: [String], maxClockSkew: Double = LimitSettings().maxClockSkew,
                maxKeys: Int = LimitSettings().maxJSONKeys) {
        self.fields = fields; self.maxClockSkew = maxClockSkew; self.maxKeys = maxKeys
    }

    public func decode(_ payload: [UInt8], receivedAt: Double) throws(FrameError) -> TimedFrame {
        let value: JSONValue
        do {
            var parser = JSONParser()
            parser.maxMembers = maxKeys
            value = try parser.parse(payload)
        } catch let e as JSONParseError where e.overLimit {
            throw FrameError(.tooLarge, "JSON over limits: \(e) (limits.max_json_keys is \(maxKeys))")
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
                ts = JSONFieldsDecoder.epochSeconds(d)
            } else if let s = t.string, let date = try? JSONFieldsDecoder.iso8601.parse(s) {
                ts = date.timeIntervalSince1970
            } else {
                throw FrameError(.malformed, "ts must be epoch seconds (or milliseconds, microseconds, nanoseconds) or an ISO 8601 time with zone")
            }
            if ts > receivedAt + maxClockSkew {
                throw FrameError(.badTimestamp, String(format: "ts %.3f is %.0f s ahead of the gateway's clock (limits.max_clock_skew_s is %g); reading dropped, the device's newest time unchanged",
                                                       ts, ts - receivedAt, maxClockSkew))
            }
        }
        return TimedFrame(frame: .readings(readings), ts: ts, receivedAt: receivedAt)
    }

    /// Epoch seconds from a number in seconds, milliseconds, microseconds or nanoseconds,
    /// told apart by size: today is ~1.8e9 s, 1.8e12 ms, 1.8e15 µs, 1.8e18 ns, and each
    /// boundary (1e11, 1e14, 1e17) is ~3,000 years from any of them.
    static func epochSeconds(_ d: Double) -> Double {
        if d > 1e17 { return d / 1e9 }
        if d > 1e14 { return d / 1e6 }
        if d > 1e11 { return d / 1e3 }
        return d
    }
}
