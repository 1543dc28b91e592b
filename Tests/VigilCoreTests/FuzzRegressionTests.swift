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
        for (_, bytes) in cases {
            if let v = try? JSONParser.parse(bytes) { XCTAssertNotNil(try? JSONParser.parse(v.serialized)) }
            var relaxed = JSONParser(relaxed: true, trackLines: true)
            _ = try? relaxed.parse(bytes)
        }
    }

    /// The same calls and invariants as Fuzz/FuzzJSONFields.swift.
    func testJSONFieldsInputsStayHandled() {
        let cases = inputs("FuzzJSONFields")
        XCTAssertFalse(cases.isEmpty)
        let arrival = 1_800_000_000.0
        let decoder = JSONFieldsDecoder(fields: ["t", "a.b", "on"], maxClockSkew: 60, maxKeys: 16)
        var accepted = 0
        for (name, bytes) in cases {
            guard let frame = try? decoder.decode(bytes, receivedAt: arrival) else { continue }
            accepted += 1
            XCTAssertLessThanOrEqual(frame.ts, arrival + 60, name)
            let window = SensorWindowAdapter(shape: [1, 2, 3], window: 2, fields: 3, maxClockSkew: 60)
            _ = try? window.inputs(for: frame)
            _ = try? window.inputs(for: frame)
        }
        XCTAssertEqual(accepted, 3, "the seconds, micro and ISO seeds; not the future or the wide one")
    }

    func testConfigCrashesStayFixed() {
        for (_, bytes) in inputs("FuzzConfig") { _ = try? Config.parse(bytes, file: "fuzz.json") }
    }

    func testSurrogatePairsDecode() throws {
        XCTAssertEqual(try JSONParser.parse(#""\ud83d\ude00""#).string, "😀")
        XCTAssertEqual(try JSONParser.parse(#""\uDADA\uDADAff""#).string, "\u{FFFD}\u{FFFD}ff")
        XCTAssertEqual(try JSONParser.parse(#""\ud800x""#).string, "\u{FFFD}x")
    }
}
