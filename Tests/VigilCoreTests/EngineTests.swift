import Foundation
import ONNX
import TestSupport
@testable import VigilCore
import XCTest

/// Collects what the engine produces.
final class Sink: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Detection] = []
    func add(_ d: Detection) { lock.withLock { items.append(d) } }
    var all: [Detection] { lock.withLock { items } }
}

final class EngineTests: XCTestCase {
    func settings(_ format: String, fields: String = "") throws -> PipelineSettings {
        let c = try Config.parse(Array("""
            { "node": "n", "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" } },
              "pipelines": [ { "name": "p", "topic": "s/{device}/x", "format": "\(format)", \(fields) "model": "tiny" } ] }
            """.utf8))
        return c.pipelines[0]
    }

    func testPipelineRejectsAModelOfTheWrongSize() throws {
        let model = try Model(name: "tiny", path: Paths.fixture("tiny_classifier.onnx"))
        XCTAssertThrowsError(try Pipeline.build(try settings("json", fields: "\"fields\": [\"a\",\"b\"],"), model: model)) { e in
            XCTAssertTrue("\(e)".contains("pipeline \"p\" with model \"tiny\": 2 fields"), "\(e)")
        }
        XCTAssertNoThrow(try Pipeline.build(try settings("json", fields: "\"fields\": [\"a\",\"b\",\"c\",\"d\"],"), model: model))
    }

    func testModelMetadataAndRefusals() throws {
        let m = try Model(name: "tiny", path: Paths.fixture("tiny_classifier.onnx"))
        XCTAssertEqual(m.labels, ["low", "mid", "high"])
        XCTAssertEqual(m.task, "classifier")
        XCTAssertEqual(m.threshold, 0.5)
        XCTAssertThrowsError(try Model(name: "two", path: Paths.fixture("two_inputs.onnx"))) {
            XCTAssertTrue("\($0)".contains("exactly one float32 input"), "\($0)")
        }
    }

    func testBadFramesAreCountedAndGoodOnesStillProcessed() throws {
        let model = try Model(name: "tiny", path: Paths.fixture("tiny_classifier.onnx"))
        let p = try Pipeline.build(try settings("f32le"), model: model)
        let counters = Counters()
        let sink = Sink()
        var limits = LimitSettings()
        limits.maxPayloadBytes = 1024
        let engine = Engine(pipelines: [p], limits: limits, counters: counters) { sink.add($0) }
        let good = f32le([1, 2, 3, 4])
        let sends: [(String, [UInt8])] = [
            ("s/a/x", good),
            ("s/a/x", f32le([1, 2, 3])),                    // wrong size
            ("s/a/x", f32le([1, .nan, 3, 4])),              // NaN
            ("s/a/x", [UInt8](repeating: 0, count: 4096)),  // too large
            ("other/topic", good),                          // unrouted
            ("s/a/x", [1, 2, 3]),                           // not whole floats
            ("s/b/x", good),
        ]
        for (t, payload) in sends { engine.submit(.init(topic: t, payload: payload)) }
        engine.stop()
        let s = counters.snapshot()
        XCTAssertEqual(sink.all.count, 2)
        XCTAssertEqual(Set(sink.all.map(\.device)), ["a", "b"])
        XCTAssertEqual(s.rejected(.wrongSize), 2)
        XCTAssertEqual(s.rejected(.nonFinite), 1)
        XCTAssertEqual(s.rejected(.tooLarge), 1)
        XCTAssertEqual(s.rejected(.unrouted), 1)
        XCTAssertEqual(s.totalProcessed, 2)
    }

    func testFramesOfOneDeviceStayInOrderAcrossWorkers() throws {
        let model = try Model(name: "tiny", path: Paths.fixture("tiny_classifier.onnx"))
        let p = try Pipeline.build(try settings("f32le"), model: model)
        let sink = Sink()
        var limits = LimitSettings()
        limits.workers = 4
        limits.queueDepth = 100_000
        let engine = Engine(pipelines: [p], limits: limits, counters: Counters()) { sink.add($0) }
        for i in 0..<400 {
            engine.submit(.init(topic: "s/dev\(i % 7)/x", payload: f32le([Float(i), 0, 0, 0]), receivedAt: Double(i)))
        }
        engine.stop()
        XCTAssertEqual(sink.all.count, 400)
        for dev in 0..<7 {
            let ts = sink.all.filter { $0.device == "dev\(dev)" }.map(\.ts)
            XCTAssertEqual(ts, ts.sorted(), "device dev\(dev) processed in order")
        }
    }

    func testAFullQueueDropsTheOldestAndCountsThem() throws {
        let model = try Model(name: "tiny", path: Paths.fixture("tiny_classifier.onnx"))
        let p = try Pipeline.build(try settings("f32le"), model: model)
        let counters = Counters()
        let sink = Sink()
        var limits = LimitSettings()
        limits.workers = 1
        limits.queueDepth = 10
        let engine = Engine(pipelines: [p], limits: limits, counters: counters) { sink.add($0) }
        for i in 0..<5000 {
            engine.submit(.init(topic: "s/a/x", payload: f32le([Float(i), 0, 0, 0]), receivedAt: Double(i)))
        }
        engine.stop()
        let s = counters.snapshot()
        XCTAssertGreaterThan(s.totalDropped, 0)
        XCTAssertEqual(s.totalDropped + sink.all.count, 5000, "every frame is processed or counted as dropped")
        XCTAssertEqual(sink.all.last?.ts, 4999, "the newest frame survives")
    }
}
