import Foundation
import TestSupport
@testable import VigilCore
import XCTest

/// Liveness while a lane works on one long frame (issue 20): frames waiting and none finished
/// is a stall only when no lane is on a frame younger than `limits.frameAllowance`.
final class LivenessTests: XCTestCase {
    func testALaneOnOneLongFrameIsAliveUntilTheFrameOutlivesItsAllowance() throws {
        let p = try buildPipeline(model: "tiny_classifier.onnx", format: "f32le")
        var limits = LimitSettings()
        limits.workers = 1
        let counters = Counters()
        let inSink = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        // The sink runs on the lane: holding it keeps the lane on its frame, as a long payload would.
        let engine = Engine(pipelines: [p], limits: limits, counters: counters) { _ in
            inSink.signal()
            release.wait()
        }
        defer {
            for _ in 0..<3 { release.signal() }
            engine.stop()
        }
        XCTAssertEqual(engine.busySince, [], "an idle lane is on no frame")
        let before = HealthMonitor.now()
        engine.submit(.init(topic: "s/d/x", payload: f32le([1, 2, 3, 4])))
        XCTAssertEqual(inSink.wait(timeout: .now() + 10), .success, "the lane took the first frame")
        for _ in 0..<2 { engine.submit(.init(topic: "s/d/x", payload: f32le([1, 2, 3, 4]))) }
        XCTAssertEqual(engine.queuedFrames, 2, "two frames wait behind it")
        let started = try XCTUnwrap(engine.busySince.first, "the busy lane says when its frame began")
        XCTAssertEqual(engine.busySince.count, 1)
        XCTAssertGreaterThanOrEqual(started, before)
        XCTAssertLessThanOrEqual(started, HealthMonitor.now())

        var watch = StallWatch()
        let allowance = limits.frameAllowance
        XCTAssertEqual(allowance, 64, "4 MiB payloads: 1 s per 64 KiB")
        func look(at now: Double) -> Double? {
            watch.look(finished: HealthMonitor.finishedFrames(counters.snapshot()), queued: engine.queuedFrames,
                       busySince: engine.busySince, allowance: allowance, now: now)
        }
        // Frames waiting and none finished for 40 s: the rule before issue 20 saw a stall from the
        // second look, 20 s old at the third (HealthMonitor reports one past stallAfter, 15 s
        // with the shipped unit).
        XCTAssertNil(look(at: started + 1))
        XCTAssertNil(look(at: started + 21), "a lane 21 s into one frame is working, not stalled")
        XCTAssertNil(look(at: started + 41), "a lane 41 s into one frame is working, not stalled")
        // The same frame past its allowance no longer counts: a wedged lane is still found.
        XCTAssertEqual(look(at: started + allowance + 1), 0)
        XCTAssertEqual(try XCTUnwrap(look(at: started + allowance + 16)), 15, accuracy: 1e-9)

        // Once the frame is done the lane takes the next, and finished frames are progress again.
        release.signal()
        XCTAssertEqual(inSink.wait(timeout: .now() + 10), .success, "the lane moved on to the second frame")
        XCTAssertTrue(waitUntil(timeout: 10) { HealthMonitor.finishedFrames(counters.snapshot()) == 1 })
        let next = try XCTUnwrap(engine.busySince.first)
        XCTAssertGreaterThan(next, started, "each frame is timed from its own start")
        XCTAssertNil(look(at: started + allowance + 17), "a frame finished since the last look")
    }
}
