import Foundation
import TestSupport
@testable import VigilCore
import XCTest

final class JSONParserTests: XCTestCase {
    func testParsesAndSerialisesRoundTrip() throws {
        let text = #"{"a":[1,2.5,-3e-2,true,false,null],"b":{"c":"x\"y\\z\n\u00e9\ud83d\ude00"}}"#
        let v = try JSONParser.parse(text)
        XCTAssertEqual(v.value(atPath: "b.c")?.string, "x\"y\\z\né😀")
        XCTAssertEqual(try JSONParser.parse(v.serialized), v)
    }

    func testSerialisesPlainAndEscapedStringsExactly() {
        // The fast path (nothing to escape) and the escaping path give the same text the
        // character loop always gave.
        XCTAssertEqual(JSONValue.string("glass_breaking").serialized, #""glass_breaking""#)
        XCTAssertEqual(JSONValue.string("caf\u{e9} 😀").serialized, "\"caf\u{e9} 😀\"")
        XCTAssertEqual(JSONValue.string("a\"b\\c\nd\u{01}").serialized, #""a\"b\\c\nd\u0001""#)
        XCTAssertEqual(JSONValue.object([("dev\"ice", .number(1))]).serialized, #"{"dev\"ice":1}"#)
    }

    func testRejectsHostileInputWithoutCrashing() {
        let bad = ["", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "01x", "\"\u{01}\"", "tru", "{\"a\":1}{",
                   String(repeating: "[", count: 100_000), "{\"a\":1,\"a\":2}", "\"\\ud800\"x", "-", "1e", "[1 2]"]
        for b in bad {
            XCTAssertThrowsError(try JSONParser.parse(b), b.prefix(20).description)
        }
    }

    /// Issue 15, item 2: members per object are capped, duplicates are still found past the
    /// point where the check switches to a set, and an unclosed comment is an error.
    func testMemberCapDuplicatesAndUnterminatedComments() throws {
        var p = JSONParser()
        p.maxMembers = 100
        let big = "{" + (0..<101).map { "\"k\($0)\":1" }.joined(separator: ",") + "}"
        XCTAssertThrowsError(try p.parse(Array(big.utf8))) { XCTAssertTrue(($0 as! JSONParseError).overLimit) }
        XCTAssertNoThrow(try JSONParser.parse(big))
        for n in [2, 15, 16, 17, 40] {
            let dup = "{" + (0..<n).map { "\"k\($0)\":1" }.joined(separator: ",") + ",\"k0\":2}"
            XCTAssertThrowsError(try JSONParser.parse(dup), "\(n)") { XCTAssertTrue("\($0)".contains("duplicate key \"k0\""), "\($0)") }
        }
        var relaxed = JSONParser(relaxed: true)
        XCTAssertThrowsError(try relaxed.parse(Array("{\"a\": 1}\n/* open".utf8))) { e in
            XCTAssertTrue("\(e)".contains("unterminated /* comment"), "\(e)")
            XCTAssertEqual((e as! JSONParseError).line, 2)
        }
    }

    func testKeyLinesAreCountedOnce() throws {
        var p = JSONParser(relaxed: true, trackLines: true)
        _ = try p.parse(Array("{\n\"a\": {\n  \"b\": 1,\n  \"c\": [\n {\"d\": 2}]},\n\"e\": 3}".utf8))
        XCTAssertEqual(p.keyLines["a"], 2)
        XCTAssertEqual(p.keyLines["a.b"], 3)
        XCTAssertEqual(p.keyLines["a.c[0].d"], 5)
        XCTAssertEqual(p.keyLines["e"], 6)
    }

    func testRelaxedModeAcceptsCommentsAndTrailingCommas() throws {
        var p = JSONParser(relaxed: true)
        let v = try p.parse(Array("/* c */ {\"a\": [1, 2,], // x\n \"b\": 2,}".utf8))
        XCTAssertEqual(v["a"], .array([.number(1), .number(2)]))
    }
}

final class DecoderTests: XCTestCase {
    func testJSONDottedPathsTasmotaAndZigbee2MQTT() throws {
        let tasmota = JSONFieldsDecoder(fields: ["AM2301.Temperature", "AM2301.Humidity"])
        let f = try tasmota.decode(Array(#"{"Time":"2024-01-01T00:00:00","AM2301":{"Temperature":21.5,"Humidity":40},"TempUnit":"C"}"#.utf8), receivedAt: 100)
        guard case .readings(let r) = f.frame else { return XCTFail() }
        XCTAssertEqual(r, [21.5, 40])
        XCTAssertEqual(f.ts, 100)
        let z2m = JSONFieldsDecoder(fields: ["temperature", "humidity", "occupancy"])
        let g = try z2m.decode(Array(#"{"temperature":19.2,"humidity":55,"occupancy":true,"linkquality":120,"ts":1700000000123}"#.utf8), receivedAt: 1_700_000_001)
        guard case .readings(let r2) = g.frame else { return XCTFail() }
        XCTAssertEqual(r2, [19.2, 55, 1])
        XCTAssertEqual(g.ts, 1_700_000_000.123, accuracy: 1e-6, "millisecond timestamps are recognised")
    }

    /// Issue 15, item 1: epochs in s, ms, µs and ns; a ts past arrival + max_clock_skew_s is
    /// `badTimestamp`; objects over max_json_keys are `tooLarge`.
    func testJSONTimestampsSkewAndKeyCap() throws {
        let d = JSONFieldsDecoder(fields: ["t"], maxClockSkew: 60, maxKeys: 8)
        let now = 1_800_000_000.0
        func ts(_ t: String) throws -> Double { try d.decode(Array(#"{"t":1,"ts":\#(t)}"#.utf8), receivedAt: now).ts }
        XCTAssertEqual(try ts("1799999990"), 1_799_999_990)
        XCTAssertEqual(try ts("1799999990500"), 1_799_999_990.5, accuracy: 1e-6)
        XCTAssertEqual(try ts("1799999990500000"), 1_799_999_990.5, accuracy: 1e-6)
        XCTAssertEqual(try ts("1799999990500000000"), 1_799_999_990.5, accuracy: 1e-3)
        XCTAssertEqual(try ts("1800000059"), 1_800_000_059, "within the skew")
        for future in ["4102444800", "1800086400", "1800086400000", "\"2100-01-01T00:00:00Z\""] {
            XCTAssertThrowsError(try ts(future), future) { e in
                XCTAssertEqual((e as! FrameError).reason, .badTimestamp)
                XCTAssertTrue("\(e)".contains("limits.max_clock_skew_s"), "\(e)")
            }
        }
        let f = try d.decode(Array(#"{"t":1}"#.utf8), receivedAt: now)
        XCTAssertFalse(f.hasOwnTime)
        XCTAssertTrue(try d.decode(Array(#"{"t":1,"ts":1799999990}"#.utf8), receivedAt: now).hasOwnTime)
        let wide = "{" + (0..<9).map { "\"k\($0)\":1" }.joined(separator: ",") + "}"
        XCTAssertThrowsError(try d.decode(Array(wide.utf8), receivedAt: now)) { e in
            XCTAssertEqual((e as! FrameError).reason, .tooLarge)
            XCTAssertTrue("\(e)".contains("limits.max_json_keys"), "\(e)")
        }
    }

    func testJSONRejections() {
        let d = JSONFieldsDecoder(fields: ["t"])
        func reason(_ s: String) -> RejectReason? {
            do { _ = try d.decode(Array(s.utf8), receivedAt: 0); return nil } catch { return error.reason }
        }
        XCTAssertEqual(reason("{not json"), .malformed)
        XCTAssertEqual(reason("[1,2]"), .malformed)
        XCTAssertEqual(reason(#"{"x":1}"#), .malformed)
        XCTAssertEqual(reason(#"{"t":"hot"}"#), .malformed)
        XCTAssertEqual(reason(#"{"t":1e999}"#), .nonFinite)
        XCTAssertEqual(reason(#"{"t":1e39}"#), .nonFinite, "finite as a double but not as float32")
        XCTAssertNil(reason(#"{"t":-4.5}"#))
    }

    func testF32LE() throws {
        let d = F32LEDecoder(expectedCount: 3)
        let f = try d.decode(f32le([1, -2.5, 3e-3]), receivedAt: 0)
        guard case .vector(let v) = f.frame else { return XCTFail() }
        XCTAssertEqual(v, [1, -2.5, 3e-3])
        XCTAssertThrowsError(try d.decode(f32le([1, 2]), receivedAt: 0)) { XCTAssertEqual(($0 as! FrameError).reason, .wrongSize) }
        XCTAssertThrowsError(try d.decode([1, 2, 3, 4, 5], receivedAt: 0)) { XCTAssertEqual(($0 as! FrameError).reason, .wrongSize) }
        XCTAssertThrowsError(try d.decode(f32le([1, .nan, 2]), receivedAt: 0)) { XCTAssertEqual(($0 as! FrameError).reason, .nonFinite) }
        XCTAssertThrowsError(try d.decode(f32le([1, .infinity, 2]), receivedAt: 0)) { XCTAssertEqual(($0 as! FrameError).reason, .nonFinite) }
    }

    func testTopicPatternDevice() {
        let p = TopicPattern("sensors/{device}/camera")!
        XCTAssertEqual(p.subscription, "sensors/+/camera")
        XCTAssertTrue(p.matches("sensors/cam-1/camera"))
        XCTAssertEqual(p.device(in: "sensors/cam-1/camera"), "cam-1")
        XCTAssertEqual(TopicPattern("tele/+/SENSOR")!.device(in: "tele/kitchen/SENSOR"), "kitchen")
        XCTAssertEqual(TopicPattern("zigbee2mqtt/#")!.device(in: "zigbee2mqtt/room/1"), "room/1")
        XCTAssertEqual(TopicPattern("fixed/topic")!.device(in: "fixed/topic"), "default")
        XCTAssertNil(TopicPattern("a/{device}x/b"))
        XCTAssertNil(TopicPattern("a/#/b"))
    }
}
