import Foundation
import TestSupport
@testable import VigilCore
import XCTest

/// The `store` policy (Inference/EventGate.swift): which detections become rows.
final class EventGateTests: XCTestCase {
    func pipeline(_ storeKeys: String) throws -> Pipeline {
        let c = try Config.parse(Array("""
            { "node": "n", "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" } },
              "pipelines": [ { "name": "p", "topic": "s/{device}/x", "format": "f32le", "model": "tiny"\(storeKeys) } ] }
            """.utf8))
        return try Pipeline.build(c.pipelines[0], model: try Model(name: "tiny", path: Paths.fixture("tiny_classifier.onnx")))
    }

    func detection(_ ts: Double, _ label: String, device: String = "d", score: Double = 0.6) -> Detection {
        let others = ["low", "mid", "high"].filter { $0 != label }
        return Detection(ts: ts, pipeline: "p", device: device, model: "tiny", label: label, score: score,
                         scores: [(label, score), (others[0], (1 - score) / 2), (others[1], (1 - score) / 2)], latencyMs: ts)
    }

    func counts(_ summary: Detection) -> [String: Double] {
        Dictionary(summary.scores.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
    }

    func testAllStoresEveryDetection() throws {
        let gate = EventGate(pipelines: [try pipeline("")])
        XCTAssertFalse(gate.summarizes)
        for i in 0..<5 { XCTAssertEqual(gate.admit(detection(Double(i), "low")).count, 1) }
        XCTAssertTrue(gate.flush().isEmpty)
    }

    func testEventsKeepsNonBackgroundRowsAndOneSummaryPerDevicePeriod() throws {
        let gate = EventGate(pipelines: [try pipeline(#", "store": "events", "summary_s": 60"#)])
        XCTAssertTrue(gate.summarizes)
        var rows: [Detection] = []
        // Period [60, 120): 3 background rows, one "high" at 0.9; the background's best other label reaches 0.3.
        rows += gate.admit(detection(61, "low", score: 0.4))
        rows += gate.admit(detection(70, "high", score: 0.9))
        rows += gate.admit(detection(80, "low"))
        rows += gate.admit(detection(119.9, "low"))
        rows += gate.admit(detection(65, "low", device: "e"))
        XCTAssertEqual(rows.map(\.label), ["high"], "only the event is stored while the period is open")
        // The first detection of the next period closes the old one: its summary first.
        rows = gate.admit(detection(120, "mid"))
        XCTAssertEqual(rows.map(\.label), [EventGate.summaryLabel, "mid"])
        let summary = rows[0]
        XCTAssertEqual(summary.ts, 60)
        XCTAssertEqual(summary.device, "d")
        XCTAssertEqual(counts(summary), ["low": 3, "high": 1, EventGate.periodKey: 60])
        XCTAssertEqual(summary.score, 0.9, accuracy: 1e-9, "the highest non-background score of the period")
        XCTAssertEqual(summary.latencyMs, 119.9, "the period's slowest")
        // Stop: every open period's summary, and nothing after.
        let flushed = gate.flush()
        XCTAssertEqual(flushed.map(\.device).sorted(), ["d", "e"])
        XCTAssertEqual(counts(flushed.first { $0.device == "e" }!), ["low": 1, EventGate.periodKey: 60])
        XCTAssertTrue(gate.flush().isEmpty)
    }

    func testASilentDeviceGetsItsSummaryAfterAWholePeriodOfWallTime() throws {
        let gate = EventGate(pipelines: [try pipeline(#", "store": "events", "summary_s": 30"#)])
        XCTAssertTrue(gate.admit(detection(1000, "low"), now: 5000).isEmpty)
        XCTAssertTrue(gate.sweep(now: 5029).isEmpty, "not silent for a whole period yet")
        let swept = gate.sweep(now: 5030)
        XCTAssertEqual(swept.map(\.label), [EventGate.summaryLabel])
        XCTAssertEqual(counts(swept[0])["low"], 1)
        XCTAssertTrue(gate.sweep(now: 9999).isEmpty)
    }

    func testReloadEndsOpenPeriodsAndAppliesTheNewPolicy() throws {
        let gate = EventGate(pipelines: [try pipeline(#", "store": "events""#)])
        _ = gate.admit(detection(10, "low"))
        XCTAssertEqual(gate.flush(replacing: [try pipeline("")]).count, 1)
        XCTAssertEqual(gate.admit(detection(11, "low")).map(\.label), ["low"], "store all after the reload")
    }

    /// Label groups have no background label: a row is background when no group reaches the
    /// model's threshold (the tiny model has none: 0.5).
    func testWithLabelGroupsARowUnderTheThresholdIsBackground() throws {
        let gate = EventGate(pipelines: [try pipeline(#", "label_groups": { "alarm": ["high"], "hum": ["mid"] }, "store": "events""#)])
        func grouped(_ ts: Double, _ score: Double) -> Detection {
            Detection(ts: ts, pipeline: "p", device: "d", model: "tiny", label: "alarm", score: score,
                      scores: [("alarm", score), ("hum", score / 2)], latencyMs: 1)
        }
        XCTAssertTrue(gate.admit(grouped(1, 0.3)).isEmpty)
        XCTAssertEqual(gate.admit(grouped(2, 0.7)).map(\.score), [0.7])
        let summary = try XCTUnwrap(gate.flush().first)
        XCTAssertEqual(counts(summary)["alarm"], 2)
        XCTAssertEqual(summary.score, 0.7, "every group counts towards the period's highest score")
    }

    func testConfigKeysAreChecked() throws {
        XCTAssertEqual(try pipeline("").settings.store, .all)
        XCTAssertEqual(try pipeline(#", "store": "events""#).settings.store, .events(summarySeconds: StorePolicy.defaultSummarySeconds))
        XCTAssertThrowsError(try pipeline(#", "store": "some""#)) { XCTAssertTrue("\($0)".contains("unknown store policy \"some\""), "\($0)") }
        XCTAssertThrowsError(try pipeline(#", "summary_s": 60"#)) { XCTAssertTrue("\($0)".contains("summary_s"), "\($0)") }
        XCTAssertThrowsError(try pipeline(#", "store": "events", "summary_s": 1"#)) { XCTAssertTrue("\($0)".contains("summary_s"), "\($0)") }
    }
}
