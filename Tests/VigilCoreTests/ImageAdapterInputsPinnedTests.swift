import Foundation
@testable import VigilCore
import XCTest

/// The model inputs the camera adapter makes, pinned bit for bit: a checksum of every input
/// (values' bit patterns, shape, ts) for fixed synthetic frame sequences, computed before
/// the adapter's loops were rewritten for speed (issue 16). A change to the arithmetic, even
/// one that only reorders a float sum, moves a checksum; a deliberate change of behaviour
/// updates the pins: healing the background's ghosts (2026-12-03, `CameraState.healGhosts`)
/// moved the first, whose sequence has a pixel match the clean background long enough.
final class ImageAdapterInputsPinnedTests: XCTestCase {
    /// A deterministic frame source: noise, gradients, flat and black frames, light steps
    /// and a moving block, with frame times that step forward, stand still, go back and jump.
    struct Frames {
        var rng: UInt64
        var ts = 0.0

        init(seed: UInt64) { rng = seed }

        mutating func next() -> UInt64 {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return rng >> 33
        }

        mutating func frame(_ i: Int, _ w: Int, _ h: Int) -> TimedFrame {
            let kind = Int(next() % 7)
            let gain = 1 + Int(next() % 3), shift = Int(next() % 40)
            var px = [UInt8](repeating: 0, count: w * h)
            for y in 0..<h {
                for x in 0..<w {
                    let v: Int = switch kind {
                    case 0: Int(next() & 255)                                              // noise
                    case 1: (x * 3 + y * 2) / gain + shift + Int(next() & 7)            // gradient
                    case 2: 0                                                              // black
                    case 3: 255                                                            // blown out
                    case 4: ((x / 8 + y / 8) % 2) * 200 * gain / 3 + shift                // checkers, light steps
                    case 5: abs(x - (i * 7) % w) < w / 6 && abs(y - h / 2) < h / 5 ? 20 : 120 + Int(next() & 15)
                    default: (x ^ y) & 255
                    }
                    px[y * w + x] = UInt8(clamping: v)
                }
            }
            switch next() % 10 {
            case 0: break                        // same time
            case 1: ts -= 0.5                    // the clock steps back
            case 2: ts += 1000                   // back after a long gap
            default: ts += 0.1
            }
            return TimedFrame(frame: .image(width: w, height: h, pixels: px), ts: ts)
        }
    }

    /// FNV-1a, a word at a time, over the inputs' bits and the adapter's rebaselines.
    struct Checksum {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        mutating func add(_ v: UInt64) { h = (h ^ v) &* 0x100_0000_01b3 }
        mutating func add(_ input: ModelInput) {
            for s in input.shape { add(UInt64(s)) }
            add(input.ts.bitPattern)
            for v in input.values { add(UInt64(v.bitPattern)) }
        }
    }

    /// Runs `count` frames (sizes taken in turn from `sizes`) through an adapter, telling it
    /// `lighting` now and then (twice in a row too), and returns the checksum.
    func checksum(channels: [CameraChannel], sizes: [(Int, Int)], count: Int, seed: UInt64,
                  masks: [MotionMask] = [], weight: Float = 1) throws -> String {
        var motion = MotionSettings()
        motion.masks = masks
        motion.backgroundSeconds = 3
        motion.activitySeconds = 1.5
        let a = ImageAdapter(shape: [1, channels.count, 120, 160], width: 160, height: 120, channels: channels,
                             motion: motion, device: "d", weightValue: weight)
        var frames = Frames(seed: seed)
        var sum = Checksum()
        for i in 0..<count {
            let (w, h) = sizes[(i * sizes.count) / count]
            let inputs = try a.inputs(for: frames.frame(i, w, h))
            sum.add(UInt64(inputs.count))
            for input in inputs {
                sum.add(input)
                let label = i % 9 == 4 || i % 9 == 5 || i % 13 == 0 ? ImageAdapter.lightingLabel : "still"
                var d = Detection(ts: input.ts, pipeline: "p", device: "d", model: "m", label: label, score: 1, scores: [], latencyMs: 0)
                a.observe(&d)
            }
        }
        sum.add(UInt64(a.rebaselines))
        return String(sum.h, radix: 16)
    }

    func testTheInputsAreBitForBitThoseOfTheFirstAdapter() throws {
        let all: [CameraChannel] = [.previous, .current, .background, .activity, .weight]
        let motion: [CameraChannel] = [.current, .background, .activity, .weight]
        let mask = [MotionMask(rect: 0, 0, 200, 480), MotionMask(points: [(640, 0), (640, 240), (320, 0)])]
        let got = [
            try checksum(channels: motion, sizes: [(640, 480)], count: 30, seed: 1, masks: mask, weight: 0.4),
            try checksum(channels: all, sizes: [(640, 480), (320, 240), (640, 480)], count: 24, seed: 2, masks: mask),
            try checksum(channels: motion, sizes: [(500, 375), (100, 80)], count: 20, seed: 3),
            try checksum(channels: [.previous, .current], sizes: [(640, 480), (333, 250)], count: 12, seed: 4),
            try checksum(channels: [.current], sizes: [(160, 120), (641, 481)], count: 8, seed: 5),
        ]
        print("pinned inputs: \(got)")
        XCTAssertEqual(got, ["ea75279163789d32", "b96cb0d658b19ef0", "84ca6d21395666a1", "d1295440c21928d5", "55c7cf6b703a327a"])
    }
}
