import Foundation
@testable import VigilCore
import XCTest

/// Motion v2.12 (issue 16): a creeping camera's frames are moved back onto the view its state
/// was learnt on (ViewAligner). The expected figures are what Models/training/motion_stream.py
/// (`warp`, `align_step`, the same update of the offset) prints for the same frames.
final class ViewAlignerTests: XCTestCase {
    let w = 64, h = 48

    /// A smooth textured scene (no third-party pixels).
    var scene: [Float] {
        (0..<(w * h)).map { i in
            let x = Double(i % w), y = Double(i / w)
            return Float(0.4 + 0.2 * sin(0.35 * x + 0.1 * y) + 0.15 * cos(0.27 * y - 0.05 * x))
        }
    }

    func moved(_ image: [Float], _ y: Double, _ x: Double) -> [Float] {
        var out = [Float](repeating: 0, count: image.count)
        ViewAligner.warp(image, by: (y, x), into: &out, width: w, height: h)
        return out
    }

    /// The view slides 1.2 px right and 0.5 px up over 12 s: the offset follows it to within a
    /// few hundredths of a pixel, and the aligned frame is the scene again.
    func testACreepingViewIsFollowedToASubPixelOffset() {
        var aligner = ViewAligner(width: w, height: h)
        var offset: (y: Double, x: Double) = (0, 0)
        var seen: [Int: (Double, Double)] = [:]
        var last: [Float] = []
        for i in 0..<120 {
            var frame = moved(scene, -0.004 * Double(i), 0.01 * Double(i))
            aligner.align(&frame, to: scene, offset: &offset)
            seen[i] = offset
            last = frame
        }
        let python: [Int: (Double, Double)] = [10: (0.03636, -0.0904), 60: (0.23758, -0.59125), 119: (0.47349, -1.18108)]
        for (i, (y, x)) in python {
            XCTAssertEqual(seen[i]!.0, y, accuracy: 1e-3, "frame \(i)")
            XCTAssertEqual(seen[i]!.1, x, accuracy: 1e-3, "frame \(i)")
        }
        let unaligned = moved(scene, -0.476, 1.19)
        let inner = (4..<(h - 4)).flatMap { y in (4..<(w - 4)).map { y * w + $0 } }
        let before = inner.map { abs(unaligned[$0] - scene[$0]) }.reduce(0, +) / Float(inner.count)
        let after = inner.map { abs(last[$0] - scene[$0]) }.reduce(0, +) / Float(inner.count)
        XCTAssertLessThan(after, before / 10, "aligned: \(after), as sent: \(before)")
    }

    /// A dark object crossing a still view, with the exposure 1.3x: the pixels it covers do not
    /// fit a shift and the gain is fitted with it, so the offset stays within a hundredth of a
    /// pixel (Python: at most 0.005).
    func testAnObjectCrossingAStillViewDoesNotMoveIt() {
        var aligner = ViewAligner(width: w, height: h)
        var offset: (y: Double, x: Double) = (0, 0)
        var largest = 0.0
        for i in 0..<60 {
            var frame = scene.map { min(1, $0 * 1.3) }
            let x0 = -10 + i
            for y in 16..<32 {
                for x in max(0, x0)..<min(w, max(0, x0 + 12)) { frame[y * w + x] = 0.05 }
            }
            aligner.align(&frame, to: scene, offset: &offset)
            largest = max(largest, abs(offset.y), abs(offset.x))
        }
        XCTAssertLessThan(largest, 0.02)
    }

    /// Foliage filling most of the view sways a pixel to the side: the restless map marks it, and
    /// the offset does not follow it; without the map it would.
    func testSwayingFoliageTheRestlessMapMarksDoesNotMoveTheView() {
        let swayed = moved(scene, 0, 1)
        let sway = (0..<(w * h)).map { i in i % w < 48 ? swayed[i] : scene[i] }
        let restless = (0..<(w * h)).map { i -> Float in i % w < 48 ? 0.6 : 0 }
        var aligner = ViewAligner(width: w, height: h)
        var marked: (y: Double, x: Double) = (0, 0), unmarked: (y: Double, x: Double) = (0, 0)
        for _ in 0..<10 {
            var f = sway, g = sway
            aligner.align(&f, to: scene, restless: restless, offset: &marked)
            aligner.align(&g, to: scene, offset: &unmarked)
        }
        XCTAssertLessThan(abs(marked.x), 0.05, "the still quarter of the view holds it")
        XCTAssertGreaterThan(abs(unmarked.x), 0.2, "without the map the swaying three quarters take it along")
    }

    /// The offset moves by a quarter pixel a frame at most, and never past the reach; a blank
    /// view (no texture) tells nothing.
    func testTheOffsetMovesBySmallStepsWithinItsReach() {
        var aligner = ViewAligner(width: w, height: h)
        var offset: (y: Double, x: Double) = (0, 0)
        for _ in 0..<3 {
            var f = moved(scene, 0, 1)
            let was = offset.x
            aligner.align(&f, to: scene, offset: &offset)
            XCTAssertLessThanOrEqual(abs(offset.x - was), ViewAligner.maxStep + 1e-12)
        }
        XCTAssertEqual(offset.x, -3 * ViewAligner.maxStep, accuracy: 1e-9, "a pixel away: a quarter pixel a frame")
        var blank = [Float](repeating: 0.5, count: w * h)
        var still: (y: Double, x: Double) = (0, 0)
        aligner.align(&blank, to: [Float](repeating: 0.5, count: w * h), offset: &still)
        XCTAssertTrue(still == (0, 0))
        var far: (y: Double, x: Double) = (0, -ViewAligner.reach)
        var f = moved(scene, 0, ViewAligner.reach + 0.5)
        aligner.align(&f, to: scene, offset: &far)
        XCTAssertGreaterThanOrEqual(far.x, -ViewAligner.reach, "a camera knocked further is not followed")
    }
}

/// Motion v2.13 (issue 16): after `lighting` the background may be the last frame, with whatever
/// was crossing it; an aligner measuring against it follows the object. Through the adapter, as
/// vigild runs it: the offset holds on every frame after a `lighting` verdict.
final class ViewAlignerAfterLightingTests: XCTestCase {
    let w = 64, h = 48

    func frame(objectAt x0: Int?, ts: Double) -> TimedFrame {
        var px = [UInt8](repeating: 0, count: w * h)
        for y in 0..<h {
            for x in 0..<w {
                // A flat wall with one textured patch (the only part of the view the empty scene
                // can be aligned on), and a large textured object that covers most of the blocks.
                var v = 100.0
                if x < 16 && y < 12 { v += 40 * sin(0.9 * Double(x)) * cos(0.8 * Double(y)) }
                if let x0, x >= x0, x < x0 + 40, y >= 12, y < 44 {
                    v = 160 + 50 * sin(0.7 * Double(x - x0)) * cos(0.6 * Double(y))
                }
                px[y * w + x] = UInt8(max(0, min(255, v.rounded())))
            }
        }
        return TimedFrame(frame: .image(width: w, height: h, pixels: px), ts: ts)
    }

    /// A large object crosses a still view while the model says `lighting` on every frame (the
    /// background replaced by the last frame each time): the offset does not follow the object,
    /// so the empty view after it is read as sent (unwarped).
    func testTheOffsetHoldsAfterLightingSoACrossingObjectDoesNotWalkIt() throws {
        var motion = MotionSettings()
        motion.align = true
        let a = ImageAdapter(shape: [1, 4, h, w], width: w, height: h, channels: [.current, .background, .activity, .weight], motion: motion)
        var ts = 0.0
        func verdict(_ label: String) {
            var d = Detection(ts: ts, pipeline: "p", device: "d", model: "m", label: label, score: 1, scores: [], latencyMs: 0)
            a.observe(&d)
        }
        _ = try a.inputs(for: frame(objectAt: nil, ts: ts))
        for _ in 0..<5 { ts += 0.1; _ = try a.inputs(for: frame(objectAt: nil, ts: ts)); verdict("still") }
        for x0 in stride(from: 8, through: 20, by: 1) {
            ts += 0.1
            _ = try a.inputs(for: frame(objectAt: x0, ts: ts))
            verdict("lighting")
        }
        ts += 0.1
        _ = try a.inputs(for: frame(objectAt: nil, ts: ts))
        verdict("still")
        ts += 0.1
        let empty = frame(objectAt: nil, ts: ts)
        let input = try XCTUnwrap(a.inputs(for: empty).first)
        guard case .image(_, _, let px) = empty.frame else { return XCTFail("an image") }
        let current = Array(input.values[0..<(w * h)])
        let moved = zip(current, px).map { abs($0 - Float($1) / 255) }.max() ?? 0
        // Without the hold the offset walks with the object and the patch is read 0.3 away; the first
        // object frame (after `still`) may move the offset by a hair.
        XCTAssertLessThan(moved, 0.01, "the empty view is read where it was: the offset did not follow the object")
    }
}

/// Motion v2.14 (issue 16): the weight plane on a crept view, through the adapter as vigild runs it.
final class ViewAlignerBorderTests: XCTestCase {
    let w = 64, h = 48

    /// Motion v2.14 (issue 16): where the aligner's shift invents the picture (the edge
    /// repeated, on the side the view crept from), a model's `vigil.align_band` px are left out
    /// of the weight plane, so what an object left of itself at that border is not counted.
    /// The view here creeps right and up; the offset moves it back left and down, so the right
    /// columns and the top rows are invented. Without the key, or before the view has moved,
    /// the plane is untouched.
    func testTheBorderTheShiftInventsIsLeftOutOfTheWeightPlane() throws {
        func view(_ dy: Double, _ dx: Double, ts: Double) -> TimedFrame {
            var px = [UInt8](repeating: 0, count: w * h)
            for y in 0..<h {
                for x in 0..<w {
                    let u = Double(x) - dx, v = Double(y) - dy
                    px[y * w + x] = UInt8((255 * (0.4 + 0.2 * sin(0.35 * u + 0.1 * v) + 0.15 * cos(0.27 * v - 0.05 * u))).rounded())
                }
            }
            return TimedFrame(frame: .image(width: w, height: h, pixels: px), ts: ts)
        }
        func weights(band: String?) throws -> (first: [Float], last: [Float], offset: (y: Double, x: Double)) {
            var motion = MotionSettings()
            motion.align = true
            motion = motion.applying(model: band.map { ["vigil.align_band": $0] } ?? [:])
            let a = ImageAdapter(shape: [1, 4, h, w], width: w, height: h, channels: [.current, .background, .activity, .weight], motion: motion)
            _ = try a.inputs(for: view(0, 0, ts: 0))
            var first: [Float] = [], last: [Float] = []
            for i in 1...80 {
                let input = try XCTUnwrap(a.inputs(for: view(-0.01 * Double(i), 0.02 * Double(i), ts: Double(i) / 10)).first)
                last = Array(input.values[(3 * w * h)..<(4 * w * h)])
                if i == 1 { first = a.bandedWeights(offset: (0, 0)) }
                var d = Detection(ts: Double(i) / 10, pipeline: "p", device: "d", model: "m", label: "still", score: 1, scores: [], latencyMs: 0)
                a.observe(&d)
            }
            return (first, last, try XCTUnwrap(a.viewOffset))
        }
        let banded = try weights(band: "3")
        XCTAssertLessThan(banded.offset.x, -0.5, "the view crept right: \(banded.offset)")
        XCTAssertGreaterThan(banded.offset.y, 0.2, "and up: \(banded.offset)")
        XCTAssertEqual(banded.first, [Float](repeating: 1, count: w * h), "no offset, no band")
        for y in 0..<h {
            for x in 0..<w {
                let invented = x >= w - 3 || y < 3
                XCTAssertEqual(banded.last[y * w + x], invented ? 0 : 1, "(\(x), \(y))")
            }
        }
        let plain = try weights(band: nil)
        XCTAssertEqual(plain.last, [Float](repeating: 1, count: w * h), "a model without vigil.align_band")
    }
}
