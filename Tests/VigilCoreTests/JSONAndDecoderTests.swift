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
        let g = try z2m.decode(Array(#"{"temperature":19.2,"humidity":55,"occupancy":true,"linkquality":120,"ts":1700000000123}"#.utf8), receivedAt: 5)
        guard case .readings(let r2) = g.frame else { return XCTFail() }
        XCTAssertEqual(r2, [19.2, 55, 1])
        XCTAssertEqual(g.ts, 1_700_000_000.123, accuracy: 1e-6, "millisecond timestamps are recognised")
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
