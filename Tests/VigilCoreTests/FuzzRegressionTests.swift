import Foundation
import TestSupport
@testable import VigilCore
import XCTest

/// Replays every input the fuzzers (scripts/fuzz) ever crashed on, through the same calls
/// as the fuzz targets in Fuzz/. Each file was a crash once; now each must be handled.
final class FuzzRegressionTests: XCTestCase {
    func inputs(_ target: String) -> [(String, [UInt8])] {
        let dir = Paths.fixture("fuzz/\(target)")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.sorted().compactMap { n in
            FileManager.default.contents(atPath: dir + "/" + n).map { (n, Array($0)) }
        }
    }

    func testJSONCrashesStayFixed() throws {
        let cases = inputs("FuzzJSON")
        XCTAssertFalse(cases.isEmpty)
        var outcomes: [String: String] = [:]
        for (name, bytes) in cases {
            // What parses serialises back to the same value, and the relaxed parser (config
            // files) reads it the same; what does not is an error with a position, in both.
            var relaxed = JSONParser(relaxed: true, trackLines: true)
            do {
                let v = try JSONParser.parse(bytes)
                XCTAssertEqual(try JSONParser.parse(v.serialized), v, name)
                XCTAssertEqual(try relaxed.parse(bytes), v, name)
                outcomes[name] = "parsed"
            } catch {
                outcomes[name] = "\(error)"
                XCTAssertThrowsError(try relaxed.parse(bytes), name)
            }
        }
        // The crash: lone surrogates in a string cut before its closing quote.
        XCTAssertEqual(outcomes, ["crash-b099f190833baf83cb1a0f93b3051e514e0254ec": "line 1, column 1: unterminated string",
                                  "seed-tasmota.json": "parsed"])
    }

    /// The same calls and invariants as Fuzz/FuzzJSONFields.swift.
    func testJSONFieldsInputsStayHandled() {
        let cases = inputs("FuzzJSONFields")
        XCTAssertFalse(cases.isEmpty)
        let arrival = 1_800_000_000.0
        let decoder = JSONFieldsDecoder(fields: ["t", "a.b", "on"], maxClockSkew: 60, maxKeys: 16)
        var accepted: [String: Double] = [:], refused: [String: String] = [:]
        for (name, bytes) in cases {
            let frame: TimedFrame
            do {
                frame = try decoder.decode(bytes, receivedAt: arrival)
            } catch {
                refused[name] = "\(error)"
                continue
            }
            accepted[name] = frame.ts
            XCTAssertLessThanOrEqual(frame.ts, arrival + 60, name)
            XCTAssertEqual(frame.receivedAt, arrival, name)
            let window = SensorWindowAdapter(shape: [1, 2, 3], window: 2, fields: 3, maxClockSkew: 60)
            XCTAssertEqual(try window.inputs(for: frame).count, 0, "\(name): one reading does not fill a window of 2")
            // A second reading at the same ts fills the window only when it has all 3 fields.
            XCTAssertEqual(try window.inputs(for: frame).map(\.values.count), name == "seed-seconds.json" ? [6] : [], name)
        }
        XCTAssertEqual(accepted.keys.sorted(), ["seed-iso.json", "seed-micro.json", "seed-seconds.json"],
                       "the seconds, micro and ISO seeds; not the future or the wide one")
        XCTAssertEqual(accepted["seed-iso.json"], 1_800_000_000)
        XCTAssertEqual(accepted["seed-micro.json"] ?? 0, 1_799_999_990.123456, accuracy: 1e-5)
        XCTAssertEqual(accepted["seed-seconds.json"], 1_799_999_990)
        XCTAssertEqual(refused.keys.sorted(), ["seed-future.json", "seed-wide.json"])
        XCTAssertTrue(refused["seed-future.json"]?.contains("(limits.max_clock_skew_s is 60); reading dropped") == true, "\(refused)")
        XCTAssertTrue(refused["seed-wide.json"]?.contains("more than 16 keys (limits.max_json_keys is 16)") == true, "\(refused)")
    }

    func testConfigCrashesStayFixed() throws {
        let cases = inputs("FuzzConfig")
        XCTAssertFalse(cases.isEmpty)
        for (name, bytes) in cases {
            // The seed has every section; its sync block names no transport, and the error says where.
            XCTAssertThrowsError(try Config.parse(bytes, file: "fuzz.json"), name) { e in
                XCTAssertEqual("\(e)", #"fuzz.json:19: sync: needs "mqtt" or "http""#)
            }
            // Cut anywhere, it is a ConfigError naming the file, never a crash or a config.
            for cut in stride(from: 1, to: bytes.count, by: max(1, bytes.count / 16)) {
                XCTAssertThrowsError(try Config.parse(Array(bytes.prefix(cut)), file: "fuzz.json"), "\(name) cut at \(cut)") { e in
                    XCTAssertTrue(e is ConfigError && "\(e)".contains("fuzz.json"), "\(e)")
                }
            }
        }
    }

    func testSurrogatePairsDecode() throws {
        XCTAssertEqual(try JSONParser.parse(#""\ud83d\ude00""#).string, "😀")
        XCTAssertEqual(try JSONParser.parse(#""\uDADA\uDADAff""#).string, "\u{FFFD}\u{FFFD}ff")
        XCTAssertEqual(try JSONParser.parse(#""\ud800x""#).string, "\u{FFFD}x")
    }
}
