import Foundation
import TestSupport
@testable import VigilCore
@testable import VigilTools
import XCTest

/// The per-device camera state a background model gets (vigil.channels) and the `motion`
/// config key: masks, min_area, per-device settings, and their validation.
final class MotionStateTests: XCTestCase {
    let roles: [CameraChannel] = [.current, .background, .activity, .weight]

    func image(_ w: Int, _ h: Int, _ value: (Int, Int) -> UInt8, ts: Double) -> TimedFrame {
        var px = [UInt8](repeating: 0, count: w * h)
        for y in 0..<h { for x in 0..<w { px[y * w + x] = value(x, y) } }
        return TimedFrame(frame: .image(width: w, height: h, pixels: px), ts: ts)
    }

    func plane(_ input: ModelInput, _ i: Int) -> [Float] {
        let n = input.values.count / input.shape[1]
        return Array(input.values[(i * n)..<((i + 1) * n)])
    }

    /// The background is a running average in frame time: after one time constant a new
    /// level has come 1 - 1/e of the way, whatever the frame rate.
    func testTheBackgroundFollowsInFrameTimeAndTheFirstFrameWaits() throws {
        var motion = MotionSettings()
        motion.backgroundSeconds = 10
        let a = ImageAdapter(shape: [1, 4, 2, 2], width: 2, height: 2, channels: roles, motion: motion)
        XCTAssertEqual(try a.inputs(for: image(2, 2, { _, _ in 0 }, ts: 100)).count, 0, "nothing to compare the first frame with")
        let first = try a.inputs(for: image(2, 2, { _, _ in 255 }, ts: 110))
        XCTAssertEqual(plane(first[0], 0), [1, 1, 1, 1], accuracy: 1e-6, "current")
        XCTAssertEqual(plane(first[0], 1), [0, 0, 0, 0], accuracy: 1e-6, "the background before this frame")
        XCTAssertEqual(plane(first[0], 3), [1, 1, 1, 1], accuracy: 1e-6, "weight without masks or min_area")
        let second = try a.inputs(for: image(2, 2, { _, _ in 255 }, ts: 110))
        XCTAssertEqual(plane(second[0], 1), [Float](repeating: Float(1 - exp(-1.0)), count: 4), accuracy: 1e-5)
        // Ten frames in the same second move it as much as one frame a second later would.
        let b = ImageAdapter(shape: [1, 4, 2, 2], width: 2, height: 2, channels: roles, motion: motion)
        _ = try b.inputs(for: image(2, 2, { _, _ in 0 }, ts: 0))
        for i in 1...10 { _ = try b.inputs(for: image(2, 2, { _, _ in 255 }, ts: Double(i) / 10)) }
        let after = try b.inputs(for: image(2, 2, { _, _ in 255 }, ts: 1))
        XCTAssertEqual(plane(after[0], 1)[0], Float(1 - exp(-0.1)), accuracy: 1e-5)
    }

    /// `lighting` from the model re-bases the background: rescaled to the latest frame's
    /// light level the first time (a person in view then is not copied into it), replaced
    /// by the frame when `lighting` follows `lighting`; other labels leave it alone. The
    /// activity map measures change after matching mean brightness, so a uniform gain step
    /// adds nothing to it.
    func testLightingRebasesTheBackgroundAndAGainStepIsNotActivity() throws {
        let a = ImageAdapter(shape: [1, 4, 4, 4], width: 4, height: 4, channels: roles)
        let scene: (Int, Int) -> UInt8 = { x, y in UInt8(30 + 8 * x + 15 * y) }
        _ = try a.inputs(for: image(4, 4, scene, ts: 0))
        let bright: (Int, Int) -> UInt8 = { x, y in UInt8(2 * (30 + 8 * x + 15 * y)) }
        _ = try a.inputs(for: image(4, 4, bright, ts: 1))
        let next = try a.inputs(for: image(4, 4, bright, ts: 2))[0]
        XCTAssertEqual(plane(next, 2).max()!, 0, accuracy: 2e-3, "a global gain is not activity")
        XCTAssertLessThan(plane(next, 1)[0], 0.2, "the background still holds the dark scene")
        let d = Detection(ts: 2, pipeline: "p", device: "d", model: "m", label: "motion", score: 1, scores: [], latencyMs: 0)
        var still = d
        a.observe(&still)
        XCTAssertEqual(a.rebaselines, 0)
        var lit = d
        lit.label = "lighting"
        a.observe(&lit)
        XCTAssertEqual(a.rebaselines, 1)
        let rebased = try a.inputs(for: image(4, 4, bright, ts: 3))[0]
        XCTAssertEqual(plane(rebased, 1), plane(rebased, 0), accuracy: 1e-5, "the dark background times the light step = the bright frame")
        // A light switched while a person (a dark pixel) is in view: the rescaled background
        // does not take the person in; `lighting` again (the scene itself changed) does.
        let b = ImageAdapter(shape: [1, 4, 20, 20], width: 20, height: 20, channels: roles)
        let room: (Int, Int) -> UInt8 = { x, y in UInt8(20 + 2 * x + 3 * y) }
        _ = try b.inputs(for: image(20, 20, room, ts: 0))
        let withPerson: (Int, Int) -> UInt8 = { x, y in (8..<10).contains(x) && (8..<10).contains(y) ? 5 : 2 * room(x, y) }
        _ = try b.inputs(for: image(20, 20, withPerson, ts: 1))
        b.observe(&lit)
        let after = plane(try b.inputs(for: image(20, 20, withPerson, ts: 1))[0], 1)
        XCTAssertGreaterThan(after[8 * 20 + 8], 0.3, "no ghost: the person's pixel keeps the scene's brightness, \(after[8 * 20 + 8])")
        b.observe(&lit)
        XCTAssertEqual(b.rebaselines, 2)
        let copied = try b.inputs(for: image(20, 20, withPerson, ts: 1))[0]
        XCTAssertEqual(plane(copied, 1), plane(copied, 0), accuracy: 1e-6, "lighting twice: the frame is the background")
        // Another scene, not another light (day/night): no rescaling explains it, so the
        // first `lighting` already starts from the frame.
        let c = ImageAdapter(shape: [1, 4, 4, 4], width: 4, height: 4, channels: roles)
        _ = try c.inputs(for: image(4, 4, scene, ts: 0))
        let night: (Int, Int) -> UInt8 = { x, y in UInt8(30 + 15 * x + 8 * ((y * 3) % 4)) }
        _ = try c.inputs(for: image(4, 4, night, ts: 1))
        var first = d
        first.label = "lighting"
        c.observe(&first)
        let switched = try c.inputs(for: image(4, 4, night, ts: 1))[0]
        XCTAssertEqual(plane(switched, 1), plane(switched, 0), accuracy: 1e-6, "day/night: the frame is the background")
    }

    /// The `moving` channel (motion v2.5): 1 everywhere on the frame after one the model
    /// called `motion`, 0 after `still` or `lighting`, so a model can keep an object already in
    /// view apart from a whole-frame change that comes out of a still scene.
    func testTheMovingChannelIsOneAfterAMotionFrameOnly() throws {
        let withMoving: [CameraChannel] = [.current, .background, .activity, .weight, .moving]
        let a = ImageAdapter(shape: [1, 5, 2, 2], width: 2, height: 2, channels: withMoving)
        XCTAssertEqual(try a.inputs(for: image(2, 2, { _, _ in 100 }, ts: 0)).count, 0, "the first frame waits")
        var d = Detection(ts: 1, pipeline: "p", device: "d", model: "m", label: "still", score: 1, scores: [], latencyMs: 0)
        var seen: [Float] = []
        for (i, label) in ["motion", "motion", "lighting", "still", "motion"].enumerated() {
            let input = try a.inputs(for: image(2, 2, { _, _ in 100 }, ts: Double(i + 1)))[0]
            XCTAssertEqual(Set(plane(input, 4)).count, 1, "one value over the plane")
            seen.append(plane(input, 4)[0])
            d.label = label
            a.observe(&d)
        }
        XCTAssertEqual(seen, [0, 1, 1, 0, 0], "the verdict on the frame before each")
        XCTAssertEqual(plane(try a.inputs(for: image(2, 2, { _, _ in 100 }, ts: 9))[0], 4), [1, 1, 1, 1])
        XCTAssertEqual(a.rebaselines, 1, "lighting still re-bases the background")
    }

    /// Motion v2.14 (issue 16): a model that declares `vigil.moving_through_lighting` keeps the
    /// `moving` channel on through one `lighting` verdict that follows a `motion` one (a car whose
    /// paint blew out the exposure is still in view), not through a second, nor after `still`.
    /// Without the key the channel is what it was.
    func testAModelCanHoldTheMovingChannelThroughOneLightingFrame() throws {
        let withMoving: [CameraChannel] = [.current, .background, .activity, .weight, .moving]
        let labels = ["motion", "lighting", "lighting", "still", "lighting", "motion", "lighting", "motion", ""]
        func seen(holding: Bool) throws -> [Float] {
            let motion = MotionSettings().applying(model: holding ? ["vigil.moving_through_lighting": "1"] : [:])
            XCTAssertEqual(motion.movingThroughLighting, holding)
            let a = ImageAdapter(shape: [1, 5, 2, 2], width: 2, height: 2, channels: withMoving, motion: motion)
            _ = try a.inputs(for: image(2, 2, { _, _ in 100 }, ts: 0))
            var d = Detection(ts: 1, pipeline: "p", device: "d", model: "m", label: "still", score: 1, scores: [], latencyMs: 0)
            var out: [Float] = []
            for (i, label) in labels.enumerated() {
                out.append(plane(try a.inputs(for: image(2, 2, { _, _ in 100 }, ts: Double(i + 1)))[0], 4)[0])
                guard !label.isEmpty else { break }
                d.label = label
                a.observe(&d)
            }
            XCTAssertEqual(a.rebaselines, 4, "lighting re-bases the background either way")
            return out
        }
        XCTAssertEqual(try seen(holding: true), [0, 1, 1, 0, 0, 0, 1, 1, 1])
        XCTAssertEqual(try seen(holding: false), [0, 1, 0, 0, 0, 0, 1, 0, 1])
    }

    /// A 20x20 room (a gradient) with, where `object` says so, a dark 6x6 square in it.
    func room(object: Bool) -> [Float] {
        (0..<400).map { i in
            let x = i % 20, y = i / 20
            return object && (7..<13).contains(x) && (7..<13).contains(y) ? 5 / 255 : Float(40 + 3 * x + 2 * y) / 255
        }
    }

    /// Feeds `seconds` of frames at 10 fps from `from` on; returns the time after the last.
    @discardableResult
    func feed(_ s: inout CameraState, _ frame: [Float], from t0: Double, seconds: Double, ghostSeconds: Double = 1) -> Double {
        var t = t0
        for _ in 0..<Int((seconds * 10).rounded()) {
            t += 0.1
            var f = frame
            s.update(with: &f, ts: t, backgroundSeconds: 20, activitySeconds: 60, hold: 1, ghostSeconds: ghostSeconds)
        }
        return t
    }

    /// v2.9 (issue 16): the model declares how long a spot must match the clean background
    /// before the ghost there is healed (`vigil.ghost_s`, or `motion.ghost_s`); with 0.3 s
    /// the ghost of an object that stood 30 s is gone half a second after it left, where 1 s
    /// (before v2.9) still keeps it.
    func testTheGhostTimeSetsHowSoonWhatAnObjectLeftBehindIsHealed() throws {
        let empty = room(object: false), occupied = room(object: true), centre = 10 * 20 + 10
        for (ghost, healed) in [(1.0, false), (0.3, true)] {
            var s = CameraState(first: empty, ts: 0, width: 20, height: 20)
            var t = feed(&s, empty, from: 0, seconds: 5, ghostSeconds: ghost)
            t = feed(&s, occupied, from: t, seconds: 30, ghostSeconds: ghost)
            XCTAssertGreaterThan(empty[centre] - s.background[centre], 0.1, "ghost \(ghost): the object is in the background")
            feed(&s, empty, from: t, seconds: 0.5, ghostSeconds: ghost)
            XCTAssertEqual(abs(s.background[centre] - empty[centre]) < 0.02, healed, "ghost time \(ghost) s, 0.5 s after it left")
        }
    }

    /// Issue 16, on real footage (Models/motion.md): a person who stood at a table for 20 s
    /// and walked away left their shape in the running-average background, and the model said
    /// motion for 20-60 s after they had gone. Now, once the spot has matched the clean
    /// background (the room before they came) for a second, the background there is reset:
    /// the ghost goes, while the person who stays is still a difference; a change that stands
    /// for 5 background time constants (a parked car) becomes the clean scene.
    func testAnObjectThatStoodAndLeftLeavesNoGhostButAParkedOneBecomesTheScene() throws {
        let empty = room(object: false), occupied = room(object: true), centre = 10 * 20 + 10
        var s = CameraState(first: empty, ts: 0, width: 20, height: 20)
        var t = feed(&s, empty, from: 0, seconds: 5)
        t = feed(&s, occupied, from: t, seconds: 10)
        XCTAssertGreaterThan(s.background[centre] - occupied[centre], 0.1, "still in view after 10 s: not healed away")
        t = feed(&s, occupied, from: t, seconds: 20)
        let absorbed = (empty[centre] - s.background[centre]) / (empty[centre] - occupied[centre])
        XCTAssertGreaterThan(absorbed, 0.5, "after 30 s the average has taken in most of it: \(absorbed)")
        XCTAssertEqual(s.clean[centre], empty[centre], accuracy: 0.02, "the clean background kept the room")
        t = feed(&s, empty, from: t, seconds: 0.5)
        XCTAssertGreaterThan(empty[centre] - s.background[centre], 0.05, "half a second after: not yet (ghostSeconds is 1)")
        t = feed(&s, empty, from: t, seconds: 1)
        XCTAssertEqual(s.background[centre], empty[centre], accuracy: 0.02, "1.5 s after it left, the ghost is gone")
        XCTAssertEqual(s.background, empty, accuracy: 0.02)
        // Parked: once the frame has agreed with the background for 5 background time
        // constants (100 s; the average takes ~46 s to come within the bar of this dark a
        // square), the clean background takes it in, so the spot is not "healed" back to the
        // empty room while the car stands there.
        t = feed(&s, occupied, from: t, seconds: 140)
        XCTAssertEqual(s.clean[centre], empty[centre], accuracy: 0.02, "not yet after 140 s")
        t = feed(&s, occupied, from: t, seconds: 10)
        XCTAssertEqual(s.clean[centre], occupied[centre], accuracy: 0.02, "a parked object becomes the scene")
        XCTAssertEqual(s.background[centre], occupied[centre], accuracy: 0.02)
    }

    /// Issue 16 (Models/motion.md, "v2.7"): a person standing still sank into the running
    /// average within `background_s` and was no longer seen. With a hold, the background
    /// learns `hold` times slower where the frame differs from it, and as fast as before where
    /// it agrees (sensor noise, the room around them).
    func testTheBackgroundHoldsWhereTheFrameDiffersAndFollowsElsewhere() throws {
        let empty = room(object: false), occupied = room(object: true), centre = 10 * 20 + 10
        func stand(hold: Double) -> CameraState {
            var s = CameraState(first: empty, ts: 0, width: 20, height: 20)
            var t = 0.0
            for _ in 0..<50 { t += 0.1; var f = empty; s.update(with: &f, ts: t, backgroundSeconds: 20, activitySeconds: 60, hold: hold) }
            for _ in 0..<200 { t += 0.1; var f = occupied; s.update(with: &f, ts: t, backgroundSeconds: 20, activitySeconds: 60, hold: hold) }
            return s
        }
        let plain = stand(hold: 1), held = stand(hold: 2)
        let gap = empty[centre] - occupied[centre]
        let absorbedPlain = (empty[centre] - plain.background[centre]) / gap
        let absorbedHeld = (empty[centre] - held.background[centre]) / gap
        // 20 s standing: 1 - e^-1 = 0.63 of it absorbed at one rate; about 1 - e^-0.5 = 0.39 held.
        XCTAssertEqual(absorbedPlain, 0.63, accuracy: 0.02)
        XCTAssertLessThan(absorbedHeld, 0.45, "held: \(absorbedHeld)")
        XCTAssertEqual(held.background[0], plain.background[0], accuracy: 1e-6, "where nothing differs, the same rate")
        // What Models/training/motion_stream.py's CameraState(background_s=20, activity_s=60,
        // hold=2) prints for the same frames: the evaluation replays the same state.
        XCTAssertEqual(Array(held.background[205..<215]), [0.29412, 0.30588, 0.20038, 0.20751, 0.21465, 0.22178, 0.22892, 0.23606, 0.38824, 0.4],
                       accuracy: 1e-4)
    }

    /// Motion v2.8 (issue 16): the restless map counts the share of time each pixel differs from
    /// the frame of 0.4 s before, so foliage that never stops moving stops counting while a
    /// person who stands does not. A square that comes and goes every 0.3 s: its pixels (and the
    /// blur's one-pixel rim) turn restless, the rest of the room stays at 0; the numbers are what
    /// Models/training/motion_stream.py's CameraState prints for the same frames.
    func testTheRestlessMapCountsWhatKeepsChangingAndComputesWhatThePythonMirrorDoes() throws {
        var s = CameraState(first: room(object: false), ts: 0, width: 20, height: 20)
        var t = 0.0
        for i in 0..<50 {
            t += 0.1
            var f = room(object: (i / 3) % 2 == 1)
            s.update(with: &f, ts: t, backgroundSeconds: 20, activitySeconds: 60, hold: 1)
        }
        XCTAssertEqual(Array(s.restless[205..<215]), [0.0, 0.04969, 0.04969, 0.04969, 0.04969, 0.04969, 0.04969, 0.04969, 0.04969, 0.04969],
                       accuracy: 1e-4)
        XCTAssertEqual(s.restless[0], 0, "the room around it never changed")
        XCTAssertEqual(s.snapshotTs, 4.7, accuracy: 1e-9, "renewed every 0.4 s of frame time")
    }

    /// The evaluation replays vigild's camera state in numpy (Models/training/motion_stream.py):
    /// the same room, the square standing 30 s, then gone while the light drops to 0.8x.
    /// Values printed by that file's CameraState(background_s=20, activity_s=60) on the same
    /// frames (commit of 2026-12-03); a light change between the two is what the gain matching
    /// against `clean`'s own level is for.
    func testTheGhostHealingComputesWhatThePythonMirrorDoes() throws {
        var s = CameraState(first: room(object: false), ts: 0, width: 20, height: 20)
        var t = feed(&s, room(object: false), from: 0, seconds: 5)
        t = feed(&s, room(object: true), from: t, seconds: 30)
        feed(&s, room(object: false).map { $0 * 0.8 }, from: t, seconds: 2)
        XCTAssertEqual(Array(s.background[205..<215]), [0.28852, 0.30005, 0.31159, 0.32313, 0.33467, 0.34621, 0.35775, 0.36929, 0.38083, 0.39239],
                       accuracy: 1e-4)
        XCTAssertEqual(Array(s.clean[205..<215]), [0.29414, 0.30588, 0.31765, 0.32941, 0.34118, 0.35294, 0.36471, 0.37647, 0.38824, 0.4],
                       accuracy: 1e-4)
        XCTAssertEqual(s.ghost[210], 0, "healed: the timer starts again")
        XCTAssertEqual(s.settled[0], 37, accuracy: 1e-3)
    }

    /// Masks are in source-frame pixels and apply at any source size; a device's own
    /// masks add to the pipeline's; min_area sets the weight as model min_area / min_area.
    func testMasksAndMinAreaBecomeTheWeightPlanePerDevice() throws {
        var motion = MotionSettings()
        motion.masks = [MotionMask(rect: 0, 0, 320, 480)]                        // left half of 640x480
        motion.devices["gate"] = .init(masks: [MotionMask(points: [(640, 0), (640, 240), (320, 0)])], minArea: 0.01)
        let hall = ImageAdapter(shape: [1, 4, 4, 4], width: 4, height: 4, channels: roles, motion: motion, device: "hall", weightValue: 1)
        _ = try hall.inputs(for: image(640, 480, { _, _ in 9 }, ts: 0))
        let w = plane(try hall.inputs(for: image(640, 480, { _, _ in 9 }, ts: 1))[0], 3)
        XCTAssertEqual(w, [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1])
        let gate = ImageAdapter(shape: [1, 4, 4, 4], width: 4, height: 4, channels: roles, motion: motion, device: "gate", weightValue: 0.2)
        // Coordinates are pixels of the frame as sent, not fractions: a 64x48 frame lies
        // inside the pipeline's 320x480 mask.
        _ = try gate.inputs(for: image(64, 48, { _, _ in 9 }, ts: 0))
        let small = plane(try gate.inputs(for: image(64, 48, { _, _ in 9 }, ts: 1))[0], 3)
        XCTAssertEqual(small, [Float](repeating: 0, count: 16), "a 64x48 frame lies entirely inside the 320x480 mask")
        _ = try gate.inputs(for: image(640, 480, { _, _ in 9 }, ts: 2))
        let big = plane(try gate.inputs(for: image(640, 480, { _, _ in 9 }, ts: 3))[0], 3)
        // The triangle (320,0)-(640,0)-(640,240) covers the top-right corner cells.
        XCTAssertEqual(big, [0, 0, 0, 0, 0, 0, 0.2, 0, 0, 0, 0.2, 0.2, 0, 0, 0.2, 0.2], accuracy: 1e-6)
        XCTAssertTrue(MotionMask(points: [(0, 0), (10, 0), (0, 10)]).contains(2, 2))
        XCTAssertFalse(MotionMask(points: [(0, 0), (10, 0), (0, 10)]).contains(8, 8))
    }

    /// Settings that save each device's state in `dir`/motion-state every `seconds` of frame time.
    func savingMotion(_ dir: TempDir, every seconds: Double) -> MotionSettings {
        var motion = MotionSettings()
        motion.saveSeconds = seconds
        motion.stateDirectory = dir.file("motion-state")
        return motion
    }

    /// A restart resumes what a camera had learnt: the state is saved every `save_s` of
    /// frame time next to the log and read back by the device's next adapter; a damaged
    /// file is ignored (the device starts afresh), and device names cannot leave the folder.
    func testTheStateIsSavedAndAResumedDeviceNeedsNoFirstFrame() throws {
        let dir = TempDir("vigil-motion-state")
        defer { dir.remove() }
        var motion = savingMotion(dir, every: 10)
        let device = "../../etc/cam 1"
        func adapter() -> ImageAdapter {
            ImageAdapter(shape: [1, 4, 3, 4], width: 4, height: 3, channels: roles, motion: motion, pipeline: "cam", device: device)
        }
        let scene: (Int, Int) -> UInt8 = { x, y in UInt8(20 + 30 * x + 9 * y) }
        let a = adapter()
        _ = try a.inputs(for: image(4, 3, scene, ts: 0))
        _ = try a.inputs(for: image(4, 3, { x, y in scene(x, y) / 2 }, ts: 5))
        let file = try XCTUnwrap(a.stateFile?.path)
        XCTAssertFalse(FileManager.default.fileExists(atPath: file), "not yet: 5 s of frame time")
        _ = try a.inputs(for: image(4, 3, scene, ts: 12))
        XCTAssertTrue(FileManager.default.fileExists(atPath: file))
        // Dropped (stop, reload, TTL): the adapter saves at once, whatever the period, once
        // it has learnt for a background time constant (a one-frame device leaves no file).
        motion.backgroundSeconds = 4
        let b = ImageAdapter(shape: [1, 4, 3, 4], width: 4, height: 3, channels: roles, motion: motion, pipeline: "cam", device: "b")
        let bFile = try XCTUnwrap(b.stateFile?.path)
        _ = try b.inputs(for: image(4, 3, scene, ts: 0))
        b.retire()
        XCTAssertFalse(FileManager.default.fileExists(atPath: bFile), "one frame has learnt nothing")
        _ = try b.inputs(for: image(4, 3, scene, ts: 5))
        XCTAssertFalse(FileManager.default.fileExists(atPath: bFile), "the period (10 s) is not over")
        b.retire()
        XCTAssertTrue(FileManager.default.fileExists(atPath: bFile))
        motion.backgroundSeconds = nil
        XCTAssertTrue(file.hasPrefix(dir.file("motion-state/cam/")), file)
        XCTAssertFalse(file.dropFirst(dir.path.count).contains(".."), file)
        let expected = try a.inputs(for: image(4, 3, scene, ts: 13))[0]
        let resumed = try adapter().inputs(for: image(4, 3, scene, ts: 13))
        XCTAssertEqual(resumed.count, 1, "a resumed device compares its first frame at once")
        XCTAssertEqual(resumed[0].values, expected.values, accuracy: 1e-6)
        // Another size, or a damaged file: start afresh.
        XCTAssertEqual(try ImageAdapter(shape: [1, 4, 2, 2], width: 2, height: 2, channels: roles, motion: motion,
                                        pipeline: "cam", device: device).inputs(for: image(4, 3, scene, ts: 14)).count, 0)
        try Data("VGCS1\nshort".utf8).write(to: URL(fileURLWithPath: file))
        XCTAssertEqual(try adapter().inputs(for: image(4, 3, scene, ts: 15)).count, 0)
        // States not written for longer than the sweep's age go; recent ones stay.
        XCTAssertEqual(CameraStateFile.sweep(directory: dir.file("motion-state"), maxAge: 3600), 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: file))
        XCTAssertEqual(CameraStateFile.sweep(directory: dir.file("motion-state"), maxAge: 3600, now: Date() + 7200), 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: file))
        // Config: camera pipelines keep their state next to the log.
        let c = try Config.parse(Array("""
            { "node": "n", "storage": { "path": "/var/lib/vigil/vigil.db" }, "models": { "m": { "path": "/x.onnx" } },
              "pipelines": [ { "name": "cam", "topic": "s/{device}/c", "format": "pgm", "model": "m", "motion": { "save_s": 60 } } ] }
            """.utf8))
        XCTAssertEqual(c.pipelines[0].motion?.stateDirectory, "/var/lib/vigil/motion-state")
        XCTAssertEqual(c.pipelines[0].motion?.saveSeconds, 60)
    }

    /// The clean background and the restless map are saved with the rest, so a restart does not
    /// forget the room as it was before a car parked, nor where the trees sway (the timers start
    /// again at 0); files written before (`VGCS3`: four planes, `VGCS2`: three) still resume
    /// their device: the restless map starts at 0, the background stands in for the clean one.
    func testTheCleanBackgroundIsSavedAndAnOlderStateFileStillResumes() throws {
        let dir = TempDir("vigil-motion-v3")
        defer { dir.remove() }
        var s = CameraState(first: room(object: false), ts: 0, width: 20, height: 20)
        let t = feed(&s, room(object: false), from: 0, seconds: 5)
        feed(&s, room(object: true), from: t, seconds: 30)
        s.viewOffset = (0.375, -1.25)
        let file = CameraStateFile(directory: dir.file("motion-state"), pipeline: "cam", device: "hall")
        try file.save(s)
        let back = try XCTUnwrap(file.load(width: 20, height: 20))
        XCTAssertEqual(back.viewOffset.y, 0.375)
        XCTAssertEqual(back.viewOffset.x, -1.25, "a creeping camera's offset is kept: its frames stay on the learnt view")
        XCTAssertEqual(back.clean, s.clean)
        XCTAssertEqual(back.background, s.background)
        XCTAssertEqual(back.restless, s.restless)
        XCTAssertEqual(back.snapshot, s.snapshot)
        XCTAssertGreaterThan(s.restless.max() ?? 0, 0, "the square's arrival changed some pixels against the snapshot")
        XCTAssertEqual(back.settled, [Float](repeating: 0, count: 400), "timers are not saved")
        XCTAssertNotEqual(s.clean, s.background, "the background holds some of the square, the clean one does not")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file.path)))
        let head = try XCTUnwrap(CameraStateFile.header(bytes))
        XCTAssertEqual(head.planes, 6)
        // An offset past the aligner's reach is not one it wrote: the device starts afresh.
        var far = bytes
        far.replaceSubrange((far.count - 8)..<far.count, with: (0..<8).map { UInt8(truncatingIfNeeded: (40.0).bitPattern >> (8 * $0)) })
        try Data(far).write(to: URL(fileURLWithPath: file.path))
        XCTAssertNil(file.load(width: 20, height: 20))
        // As the format before v2.12 wrote it: its magic, no offset after the planes.
        bytes.replaceSubrange(0..<CameraStateFile.magic.count, with: CameraStateFile.magicV4)
        bytes.removeLast(16)
        try Data(bytes).write(to: URL(fileURLWithPath: file.path))
        let v4 = try XCTUnwrap(file.load(width: 20, height: 20), "a VGCS4 file still resumes")
        XCTAssertEqual(v4.restless, s.restless)
        XCTAssertTrue(v4.viewOffset == (0, 0), "no offset: the view as learnt")
        // As the format before v2.8 wrote it: its magic, the first four planes.
        bytes.replaceSubrange(0..<CameraStateFile.magic.count, with: CameraStateFile.magicV3)
        bytes.removeLast(2 * 4 * 400)
        try Data(bytes).write(to: URL(fileURLWithPath: file.path))
        let v3 = try XCTUnwrap(file.load(width: 20, height: 20), "a VGCS3 file still resumes")
        XCTAssertEqual(v3.clean, s.clean)
        XCTAssertEqual(v3.restless, [Float](repeating: 0, count: 400), "no restless plane: it starts at 0")
        XCTAssertEqual(v3.snapshot, s.last, "no snapshot: the last frame")
        // As the format before ghosts were healed wrote it: old magic, the first three planes.
        bytes.replaceSubrange(0..<CameraStateFile.magic.count, with: CameraStateFile.magicV2)
        bytes.removeLast(4 * 400)
        try Data(bytes).write(to: URL(fileURLWithPath: file.path))
        let old = try XCTUnwrap(file.load(width: 20, height: 20), "a VGCS2 file still resumes")
        XCTAssertEqual(old.background, s.background)
        XCTAssertEqual(old.activity, s.activity)
        XCTAssertEqual(old.clean, s.background, "no clean plane: the background stands in")
        XCTAssertEqual(old.settled, [Float](repeating: 0, count: 400))
        XCTAssertEqual(CameraStateFolder.list(directory: dir.file("motion-state")).first?.device, "hall")
    }

    /// `vigilctl baseline cameras` shows how far each camera's view has crept (the offset the
    /// aligner applies, px at the model's size), flagged within a pixel of where the aligner stops
    /// following; a file from before the offset was saved, or one whose offset is not one the
    /// aligner wrote, shows none.
    func testTheListingShowsHowFarEachCamerasViewHasCrept() throws {
        let dir = TempDir("vigil-motion-view")
        defer { dir.remove() }
        func save(_ device: String, _ offset: (y: Double, x: Double)) throws -> String {
            var s = CameraState(first: room(object: false), ts: 0, width: 20, height: 20)
            s.viewOffset = offset
            let file = CameraStateFile(directory: dir.file("motion-state"), pipeline: "cam", device: device)
            try file.save(s)
            return file.path
        }
        let fm = FileManager.default
        for (i, (device, offset)) in [("steady", (0.0, 0.0)), ("pole", (0.375, -1.25)), ("bracket", (-0.5, 3.25)),
                                      ("older", (0.0, 0.0)), ("broken", (0.0, 0.0))].enumerated() {
            let path = try save(device, offset)
            try fm.setAttributes([.modificationDate: Date() - Double(100 - i)], ofItemAtPath: path)   // listed in this order
        }
        func rewrite(_ device: String, _ change: (inout [UInt8]) -> Void) throws {
            let path = try XCTUnwrap(CameraStateFolder.list(directory: dir.file("motion-state")).first { $0.device == device }?.path)
            let date = try fm.attributesOfItem(atPath: path)[.modificationDate]
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            change(&bytes)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            try fm.setAttributes([.modificationDate: try XCTUnwrap(date)], ofItemAtPath: path)
        }
        try rewrite("older") { b in   // as the format before v2.12 wrote it: no offset after the planes
            b.replaceSubrange(0..<CameraStateFile.magic.count, with: CameraStateFile.magicV4)
            b.removeLast(16)
        }
        try rewrite("broken") { b in   // an x offset of 40 px: not one the aligner wrote
            b.replaceSubrange((b.count - 8)..<b.count, with: (0..<8).map { UInt8(truncatingIfNeeded: (40.0).bitPattern >> (8 * $0)) })
        }
        let table = CameraStateQuery.table(directory: dir.file("motion-state"))
        let column = { (name: String) in try XCTUnwrap(CameraStateQuery.columns.firstIndex { $0.name == name }) }
        let view = try column("view_px"), vx = try column("view_x"), vy = try column("view_y")
        XCTAssertEqual(table.rows.map { $0[1] }, [.text("steady"), .text("pole"), .text("bracket"), .text("older"), .text("broken")])
        XCTAssertEqual(table.rows.map { $0[view] }, [.text("x+0.00 y+0.00"), .text("x-1.25 y+0.38"), .text("x+3.25 y-0.50 (limit 4)"),
                                                     .null, .null])
        XCTAssertEqual(table.rows[1][vx], .real(-1.25))
        XCTAssertEqual(table.rows[1][vy], .real(0.375))
        XCTAssertTrue(table.render(.table).contains("x+3.25 y-0.50 (limit 4)"), table.render(.table))
    }

    /// The saved states are capped in bytes (`storage.motion_state_mb`): past it the states
    /// written least recently go first, never the one just written, counted in /metrics; a
    /// lower cap at start trims the folder at once. `vigilctl baseline` lists each state with
    /// its pipeline and device as sent (the file name keeps only safe characters), age and size.
    func testSavedStatesAreCappedOldestFirstAndListedWithTheirNames() throws {
        let dir = TempDir("vigil-motion-cap")
        defer { dir.remove() }
        let motion = savingMotion(dir, every: 1)
        let folder = CameraStateFolder.at(dir.file("motion-state"))
        let metrics = MetricsRegistry()
        let scene: (Int, Int) -> UInt8 = { x, y in UInt8(20 + 30 * x + 9 * y) }
        func save(_ device: String) throws -> String {
            let a = ImageAdapter(shape: [1, 4, 3, 4], width: 4, height: 3, channels: roles, motion: motion, pipeline: "cam", device: device)
            _ = try a.inputs(for: image(4, 3, scene, ts: 0))
            _ = try a.inputs(for: image(4, 3, scene, ts: 2))
            return try XCTUnwrap(a.stateFile?.path)
        }
        folder.configure(maxBytes: 1 << 20, metrics: metrics)
        let first = try save("gate/1"), one = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: first)[.size] as? Int)
        XCTAssertEqual(metrics.value(MetricName.motionStatesDropped), 0, "listed at 0 before anything is dropped")
        // Room for two states: the third save drops the first.
        folder.configure(maxBytes: 2 * one + one / 2, metrics: metrics)
        let second = try save("../../etc/cam 1"), third = try save("yard")
        let fm = FileManager.default
        XCTAssertFalse(fm.fileExists(atPath: first), "the state written least recently goes")
        XCTAssertTrue(fm.fileExists(atPath: second) && fm.fileExists(atPath: third))
        XCTAssertEqual(folder.dropped, 1)
        XCTAssertEqual(metrics.value(MetricName.motionStatesDropped), 1)
        func size(_ p: String) throws -> Int { try XCTUnwrap(fm.attributesOfItem(atPath: p)[.size] as? Int) }
        XCTAssertEqual(folder.bytes, try size(second) + size(third))
        let table = CameraStateQuery.table(directory: dir.file("motion-state"))
        XCTAssertEqual(table.rows.map { $0[1] }, [.text("../../etc/cam 1"), .text("yard")], "oldest first, names as sent")
        XCTAssertEqual(table.rows[0][0], .text("cam"))
        XCTAssertEqual(table.rows[0][2], .text("4x3"))
        XCTAssertEqual(table.rows[0][3], .integer(1), "size in KB, rounded up")
        XCTAssertEqual(CameraStateQuery.table(directory: dir.file("motion-state"), devices: ["y*"]).rows.count, 1)
        XCTAssertTrue(table.render(.table).contains("../../etc/cam 1"))
        // A lower cap at start (one state) trims the folder at once, the oldest first (file
        // times are set apart: two saves in one clock tick share a modification time).
        try fm.setAttributes([.modificationDate: Date() - 20], ofItemAtPath: second)
        try fm.setAttributes([.modificationDate: Date() - 10], ofItemAtPath: third)
        XCTAssertEqual(folder.configure(maxBytes: one + 8, metrics: metrics), 1)
        XCTAssertFalse(fm.fileExists(atPath: second))
        XCTAssertTrue(fm.fileExists(atPath: third))
        XCTAssertEqual(metrics.value(MetricName.motionStatesDropped), 2)
        // A state the cap cannot hold is still written: the newest is never the one dropped.
        folder.configure(maxBytes: 1, metrics: metrics)
        let fourth = try save("porch")
        XCTAssertTrue(fm.fileExists(atPath: fourth))
        XCTAssertFalse(fm.fileExists(atPath: third))
    }

    func parse(_ motion: String, format: String = "pgm", extra: String = "") throws -> Config {
        try Config.parse(Array("""
            { "node": "n", "models": { "m": { "path": "/x.onnx" } },
              "pipelines": [ { "name": "cam", "topic": "s/{device}/c", "format": "\(format)", "model": "m"\(extra),
                "motion": \(motion) } ] }
            """.utf8), file: "vigil.json")
    }

    func testMotionConfigIsReadAndEveryMistakeNamesItsKeyAndLine() throws {
        let c = try parse("""
            { "background_s": 30, "activity_s": 120, "background_hold": 3, "ghost_s": 0.5, "min_area": 0.005, "align": false,
              "masks": [ { "rect": [0, 0, 100, 50] }, { "polygon": [[0, 400], [640, 300], [640, 480], [0, 480]] } ],
              "devices": { "gate": { "min_area": 0.02, "masks": [ { "rect": [10, 10, 5, 5] } ] } } }
            """)
        let m = try XCTUnwrap(c.pipelines[0].motion)
        XCTAssertEqual(m.backgroundSeconds, 30)
        XCTAssertEqual(m.activitySeconds, 120)
        XCTAssertEqual(m.backgroundHold, 3)
        XCTAssertEqual(m.ghostSeconds, 0.5)
        XCTAssertEqual(m.align, false)
        XCTAssertEqual(m.applying(model: ["vigil.align": "1"]).align, false, "the config's word over the model's")
        XCTAssertEqual(MotionSettings().applying(model: ["vigil.align": "1"]).align, true)
        XCTAssertEqual(MotionSettings().applying(model: [:]).align, false, "a model that does not ask is not aligned")
        XCTAssertEqual(m.minArea, 0.005)
        XCTAssertEqual(m.masks, [MotionMask(rect: 0, 0, 100, 50), MotionMask(points: [(0, 400), (640, 300), (640, 480), (0, 480)])])
        XCTAssertEqual(m.resolved(for: "gate").minArea, 0.02)
        XCTAssertEqual(m.resolved(for: "gate").masks.count, 3)
        XCTAssertEqual(m.resolved(for: "hall").masks.count, 2)
        XCTAssertEqual(m.resolved(for: "hall").minArea, 0.005)

        let cases: [(String, String, String, String)] = [
            (#"{ "masks": [ { "polygon": [[0, 0], [1, 1]] } ] }"#, "pgm", "", "motion.masks[0].polygon: needs at least 3 points"),
            (#"{ "masks": [ { "rect": [0, 0, -5, 5] } ] }"#, "pgm", "", "motion.masks[0].rect: width and height must be positive"),
            (#"{ "masks": [ { "rect": [0, 0, 5] } ] }"#, "pgm", "", "motion.masks[0].rect: must be [x, y, width, height]"),
            (#"{ "masks": [ { "polygon": [[0, 0], [1, "a"], [2, 2]] } ] }"#, "pgm", "", "motion.masks[0].polygon[1]: must be a point [x, y]"),
            (#"{ "masks": [ { "rect": [0, 0, 5, 5], "polygon": [[0, 0], [1, 1], [2, 0]] } ] }"#, "pgm", "", "motion.masks[0]: a mask is either"),
            (#"{ "masks": [ { "rect": [0, 0, 500, 5] } ] }"#, "gray8", #", "width": 320, "height": 240"#, "motion.masks[0].rect: (500, 0) is outside the 320x240 frame"),
            (#"{ "min_area": 2 }"#, "pgm", "", "motion.min_area: must be between"),
            (#"{ "background_hold": 0.5 }"#, "pgm", "", "motion.background_hold: must be between"),
            (#"{ "ghost_s": 0 }"#, "pgm", "", "motion.ghost_s: must be between"),
            (#"{ "align": "yes" }"#, "pgm", "", "motion.align: must be true or false"),
            (#"{ "devices": { "gate": { "mask": [] } } }"#, "pgm", "", "motion.devices.gate.mask: unknown key"),
            (#"{ "backgrund_s": 5 }"#, "pgm", "", "motion.backgrund_s: unknown key"),
            (#"{ }"#, "wav", "", "pipelines[0].motion: only pgm and gray8 pipelines take motion"),
        ]
        for (motion, format, extra, expected) in cases {
            XCTAssertThrowsError(try parse(motion, format: format, extra: extra), motion) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(motion): \(e)")
                XCTAssertTrue("\(e)".hasPrefix("vigil.json:"), "\(e) names the file and line")
            }
        }
    }

    /// A background model's pipeline is checked at load: masks need a weight channel,
    /// min_area needs the model's own, and an alert must name the labels it watches.
    func testTheShippedModelsChannelsAndWhatAPipelineMayAskOfThem() throws {
        let shipped = Paths.repo.appendingPathComponent("Models/motion.onnx").path
        func build(_ model: String, _ pipeline: String) throws -> Pipeline {
            let c = try Config.parse(Array("""
                { "node": "n", "models": { "m": { "path": "\(model)" } },
                  "pipelines": [ { "name": "cam", "topic": "s/{device}/c", "format": "pgm", "model": "m"\(pipeline) } ] }
                """.utf8))
            return try Pipeline.build(c.pipelines[0], model: Model(name: "m", path: model))
        }
        let p = try build(shipped, #", "motion": { "min_area": 0.01 }, "alert": { "labels": ["motion"] }"#)
        XCTAssertEqual(p.labels, ["still", "motion", "lighting"])
        XCTAssertTrue(p.inputDescription.contains("current, background, restless, weight, moving"), p.inputDescription)
        let a = try XCTUnwrap(p.makeAdapter(device: "x") as? ImageAdapter)
        XCTAssertEqual(a.weightValue, Float(Double(p.model.metadata["vigil.min_area"]!)! / 0.01), accuracy: 1e-6)
        // Time constants the config leaves out are the ones the model was tuned with.
        XCTAssertEqual(a.motion.activitySeconds, Double(try XCTUnwrap(p.model.metadata["vigil.activity_s"])))
        XCTAssertEqual(a.motion.backgroundSeconds, Double(try XCTUnwrap(p.model.metadata["vigil.background_s"])))
        XCTAssertEqual(a.motion.backgroundHold, Double(try XCTUnwrap(p.model.metadata["vigil.background_hold"])))
        XCTAssertGreaterThan(a.motion.backgroundHold!, 1, "v2.7 holds the background where the frame differs")
        XCTAssertEqual(a.motion.ghostSeconds, Double(try XCTUnwrap(p.model.metadata["vigil.ghost_s"])))
        XCTAssertLessThan(a.motion.ghostSeconds!, 1, "v2.9 heals a ghost sooner than the 1 s before it")
        XCTAssertThrowsError(try build(shipped, #", "alert": { "min_score": 0.5 }"#)) {
            XCTAssertTrue("\($0)".contains("set alert.labels"), "\($0)")
        }
        let pairModel = Paths.fixture("motion_small.onnx")
        XCTAssertThrowsError(try build(pairModel, #", "motion": { "masks": [ { "rect": [0, 0, 1, 1] } ] }"#)) {
            XCTAssertTrue("\($0)".contains("need a model with a weight channel"), "\($0)")
        }
        XCTAssertNoThrow(try build(pairModel, #", "motion": { "background_s": 5 }"#))
        let pair = try XCTUnwrap(try build(pairModel, "").makeAdapter(device: "x") as? ImageAdapter)
        XCTAssertEqual(pair.motion.backgroundHold, 1, "a model that declares no hold: the same rate everywhere")
        XCTAssertEqual(pair.motion.ghostSeconds, 1, "a model that declares no ghost time: the 1 s chosen before v2.9")
    }
}

/// Figures, not a gate: what a camera frame costs through the shipped motion model.
/// `scripts/bench-figures` prints them (debug build: the
/// Swift adapter is several times slower than in release; ONNX Runtime is the C library
/// either way).
final class MotionCostFigures: XCTestCase {
    func testPrintTheCostOfAFrame() throws {
        try XCTSkipUnless(figuresAsked, figuresSkipped)
        var rng: UInt64 = 7
        // A view that creeps a pixel (at 640) every 20 frames, so that the aligner has work.
        let frames: [TimedFrame] = (0..<200).map { i in
            let px = (0..<(640 * 480)).map { j -> UInt8 in
                rng = rng &* 6364136223846793005 &+ 1442695040888963407
                return UInt8(truncatingIfNeeded: (j % 640 + i / 20) / 3 + (j / 640) / 4 + Int(rng >> 62) + i)
            }
            return TimedFrame(frame: .image(width: 640, height: 480, pixels: px), ts: Double(i) / 10)
        }
        // Both settings in one run, alternating frame by frame: the ratio is what a shared machine can tell.
        let aligned = try costs(align: true), fixed = try costs(align: false)
        var timings: [Bool: (adapter: [Double], model: [Double])] = [true: ([], []), false: ([], [])]
        for f in frames {
            for (align, (p, a)) in [(true, aligned), (false, fixed)] {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let inputs = try a.inputs(for: f)
                let t1 = DispatchTime.now().uptimeNanoseconds
                for input in inputs {
                    var d = try p.detect(input, device: "cam1")
                    timings[align]!.model.append(d.latencyMs)
                    a.observe(&d)
                }
                timings[align]!.adapter.append(Double(t1 - t0) / 1e6)
            }
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        func p95(_ v: [Double]) -> Double { v.sorted()[min(v.count - 1, Int(Double(v.count) * 0.95))] }
        for align in [true, false] {
            let (adapterMs, modelMs) = timings[align]!
            print(String(format: "motion frame 640x480, motion.align %@: adapter (resize, align, background, activity, restless, weight) median %.2f ms p95 %.2f ms; model median %.2f ms p95 %.2f ms (1 thread)",
                         align ? "on " : "off", median(adapterMs), p95(adapterMs), median(modelMs), p95(modelMs)))
            XCTAssertEqual(modelMs.count, frames.count - 1)
        }
    }

    private func costs(align: Bool) throws -> (Pipeline, ImageAdapter) {
        let path = Paths.repo.appendingPathComponent("Models/motion.onnx").path
        let c = try Config.parse(Array("""
            { "node": "n", "models": { "m": { "path": "\(path)", "threads": 1 } },
              "pipelines": [ { "name": "cam", "topic": "s/{device}/c", "format": "pgm", "model": "m",
                "motion": { "align": \(align), "masks": [ { "rect": [0, 0, 200, 480] } ] }, "alert": { "labels": ["motion"] } } ] }
            """.utf8))
        let p = try Pipeline.build(c.pipelines[0], model: Model(name: "m", path: path, threads: 1))
        return (p, try XCTUnwrap(p.makeAdapter(device: "cam1") as? ImageAdapter))
    }
}

/// The shipped model through vigild's camera state on `vigilctl simulate`'s camera, whose
/// ground truth (`event`) comes from the generator, not from any pixel rule: a room with
/// lights that switch and drift and person-sized textured objects crossing it.
final class MotionSimulatedCameraTests: XCTestCase {
    func testObjectsAreCaughtAndLightSwitchesAreNot() throws {
        let path = Paths.repo.appendingPathComponent("Models/motion.onnx").path
        let c = try Config.parse(Array("""
            { "node": "n", "models": { "m": { "path": "\(path)" } },
              "pipelines": [ { "name": "cam", "topic": "s/{device}/c", "format": "pgm", "model": "m", "alert": { "labels": ["motion"] } } ] }
            """.utf8))
        let p = try Pipeline.build(c.pipelines[0], model: Model(name: "m", path: path))
        var byEvent: [String: (n: Int, motion: Int, lighting: Int)] = [:]
        var lightSwitches = 0, switchesAsMotion = 0
        var passes = 0, passesCaught = 0   // object passes, and those with two motion frames in a row (the demo's rule)
        for seed in [42, 7] as [UInt64] {
            let cam = CameraSource(width: 320, height: 240, fps: 10, seed: seed, meanObjectGap: 3, meanLightingGap: 20)
            let a = p.makeAdapter(device: "sim")
            var previous: String? = "start"
            var run = 0, caught = false
            for i in 0..<1200 {
                let payload = cam.next(wallTime: 0)
                let event = cam.event
                defer { previous = event }
                for input in try a.inputs(for: try p.decoder.decode(payload, receivedAt: Double(i) / 10)) {
                    var input = input
                    input.ts = Double(i) / 10
                    var d = try p.detect(input, device: "sim")
                    a.observe(&d)
                    if event == "motion" {
                        if previous != "motion" { passes += 1; run = 0; caught = false }
                        run = d.label == "motion" ? run + 1 : 0
                        if run >= 2, !caught { caught = true; passesCaught += 1 }
                    }
                    // Score steady states only: the frame and the one before agree on what happens.
                    if event == "lighting", previous != "motion" { lightSwitches += 1; if d.label == "motion" { switchesAsMotion += 1 } }
                    guard i > 10, event == previous else { continue }
                    let key = event ?? "nothing"
                    var e = byEvent[key] ?? (0, 0, 0)
                    e.n += 1
                    if d.label == "motion" { e.motion += 1 }
                    if d.label == "lighting" { e.lighting += 1 }
                    byEvent[key] = e
                }
            }
        }
        print("simulated camera, frames by ground truth (n, said motion, said lighting): \(byEvent); light switches \(lightSwitches), said motion \(switchesAsMotion); object passes \(passes), with two motion frames in a row \(passesCaught)")
        XCTAssertGreaterThan(lightSwitches, 5)
        XCTAssertEqual(switchesAsMotion, 0, "a light switch is never motion")
        // Regression floors, not targets: the simulator's objects are soft-edged blobs on a
        // faintly textured room, which change a window's brightness more than its structure.
        // Measured (Models/motion.md): v1 1481/1497 and 0/789; v2.0 (structure only) 714/1497
        // and 40/789; v2.1 and v2.2 (brightness term, light switches rescale the background)
        // 1295/1497 and 0/789, 36 of 39 passes; v2.3 (a brightness change counts only near an
        // outline, so that a lamp's soft pool of light is not motion) 1143/1497 and 0/789, 34 of
        // 39 passes: a soft-edged, faintly textured blob added to a faint room looks like a lamp; v2.5
        // the same (its large-object exception does not touch these blobs).
        let moving = try XCTUnwrap(byEvent["motion"]), empty = try XCTUnwrap(byEvent["nothing"])
        XCTAssertGreaterThan(Double(moving.motion) / Double(moving.n), 0.7)
        XCTAssertGreaterThan(passes, 30)
        XCTAssertGreaterThanOrEqual(Double(passesCaught) / Double(passes), 0.8, "object passes that raise an alert under the demo's rule")
        XCTAssertLessThan(Double(empty.motion) / Double(empty.n), 0.02)
    }
}
