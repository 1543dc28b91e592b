import Foundation
import VigilCore

/// The kinds of sensor `vigilctl simulate` imitates, and the topic level each publishes on.
public enum SensorKind: String, CaseIterable, Sendable {
    case camera, audio, env, vector
}

/// One simulated sensor of one device: each call makes the next payload.
/// Sources are confined to the simulator's publishing thread.
public protocol SensorSource: AnyObject {
    /// The next payload; `wallTime` is the epoch time it is sent at (for `ts` fields).
    func next(wallTime: Double) -> [UInt8]
    /// What the last payload shows that a model should notice (`motion`, `smoke_alarm`,
    /// `spike`...), nil when nothing: the ground truth for evaluations.
    var event: String? { get }
}

/// A fixed camera looking at a room: a textured background, sensor noise, lighting that
/// steps (lights switched) and drifts, and now and then an object (a person-sized blob)
/// crossing the view. Emits binary PGM (P5). Frames are cheap to make: the background and
/// a noise table are computed once, so one core produces thousands of frames a second.
public final class CameraSource: SensorSource {
    public let width: Int
    public let height: Int
    let dt: Double
    var rng: SimRandom
    let background: [UInt8]
    let noise: [Int8]
    let header: [UInt8]
    var t = 0.0
    // Lighting: gain applied to the background, stepped by switches, plus a slow drift.
    var gain: Double
    var nextLightingChange: Double
    var lightingChanged = false
    // The object: idle until `nextObject`, then crossing at `velocity`.
    var objectActive = false
    var nextObject: Double
    var position = (x: 0.0, y: 0.0)
    var velocity = (x: 0.0, y: 0.0)
    var radius = (x: 0.0, y: 0.0)
    var contrast = 0.0
    /// The object's own pattern (clothes: bands and blotches), in object coordinates, so it
    /// moves with the object: a textured object changes the image's structure as it moves,
    /// as a person does, not only its brightness.
    var texture: [Double] = []
    var textureSize = (w: 0, h: 0)
    public private(set) var event: String?

    /// `fps` is the rate frames are made at: objects move in simulated seconds.
    public init(width: Int = 160, height: Int = 120, fps: Double, seed: UInt64,
                meanObjectGap: Double = 8, meanLightingGap: Double = 45) {
        self.width = width
        self.height = height
        dt = 1 / max(fps, 0.001)
        var rng = SimRandom(seed: seed)
        header = Array("P5\n\(width) \(height)\n255\n".utf8)
        // Background: a wall-to-floor gradient, a few darker and lighter "furniture" blocks, fixed texture.
        var bg = [UInt8](repeating: 0, count: width * height)
        var blocks: [(x0: Int, y0: Int, x1: Int, y1: Int, d: Int)] = []
        for _ in 0..<rng.int(3...6) {
            // max() keeps the ranges valid for tiny frames (tests, odd cameras).
            let x0 = rng.int(0...max(0, width - 8)), y0 = rng.int(min(height / 4, max(0, height - 8))...max(0, height - 8))
            blocks.append((x0, y0, min(width, x0 + rng.int(8...max(8, width / 3))), min(height, y0 + rng.int(6...max(6, height / 3))),
                           rng.int(-50...40)))
        }
        for y in 0..<height {
            for x in 0..<width {
                var v = 150.0 - 50.0 * Double(y) / Double(height) + 6 * rng.gaussian()
                for b in blocks where x >= b.x0 && x < b.x1 && y >= b.y0 && y < b.y1 { v += Double(b.d) }
                bg[y * width + x] = UInt8(max(10, min(235, v)))
            }
        }
        background = bg
        // Sensor noise: read from a random offset in a table longer than a frame.
        noise = NoiseTables.shared.pixelNoise(count: width * height + 65536)
        gain = rng.uniform(0.85, 1.1)
        nextLightingChange = rng.exponential(mean: meanLightingGap)
        nextObject = rng.exponential(mean: meanObjectGap / 2)
        self.rng = rng
        self.meanObjectGap = meanObjectGap
        self.meanLightingGap = meanLightingGap
    }

    let meanObjectGap: Double
    let meanLightingGap: Double

    public func next(wallTime: Double) -> [UInt8] {
        step()
        // Lighting as a lookup table: 256 multiplies per frame instead of one per pixel.
        let drift = 1 + 0.03 * sin(2 * .pi * t / 120)
        var lut = [Int16](repeating: 0, count: 256)
        for v in 0..<256 { lut[v] = Int16(max(0, min(255, Double(v) * gain * drift))) }
        var out = header
        out.reserveCapacity(header.count + width * height)
        let offset = rng.int(0...(noise.count - width * height))
        background.withUnsafeBufferPointer { bg in
            noise.withUnsafeBufferPointer { nz in
                lut.withUnsafeBufferPointer { l in
                    for i in 0..<(width * height) {
                        let v = l[Int(bg[i])] &+ Int16(nz[offset + i])
                        out.append(UInt8(truncatingIfNeeded: max(0, min(255, v))))
                    }
                }
            }
        }
        if objectActive { drawObject(&out) }
        event = objectActive ? "motion" : (lightingChanged ? "lighting" : nil)
        return out
    }

    func step() {
        t += dt
        lightingChanged = false
        if t >= nextLightingChange {
            // Lights on or off: a step up or down, kept within a plausible exposure range.
            let target = gain < 0.75 ? rng.uniform(0.9, 1.2) : (rng.chance(0.5) ? rng.uniform(0.45, 0.7) : rng.uniform(0.9, 1.25))
            gain = target
            lightingChanged = true
            nextLightingChange = t + max(2, rng.exponential(mean: meanLightingGap))
        }
        if objectActive {
            position.x += velocity.x * dt
            position.y += velocity.y * dt
            if position.x < -radius.x * 1.5 || position.x > Double(width) + radius.x * 1.5
                || position.y < -radius.y * 1.5 || position.y > Double(height) + radius.y * 1.5 {
                objectActive = false
                nextObject = t + rng.exponential(mean: meanObjectGap)
            }
        } else if t >= nextObject {
            // Enter from the left or right edge and walk across, drifting a little up or down.
            let scale = Double(width) / 160
            objectActive = true
            radius = (rng.uniform(6, 12) * scale, rng.uniform(12, 24) * scale)
            let speed = rng.uniform(25, 70) * scale
            let fromLeft = rng.chance(0.5)
            position = (fromLeft ? -radius.x : Double(width) + radius.x, rng.uniform(0.35, 0.75) * Double(height))
            velocity = (fromLeft ? speed : -speed, rng.uniform(-0.15, 0.15) * speed)
            contrast = (rng.chance(0.5) ? 1 : -1) * rng.uniform(45, 90)
            textureSize = (Int(2 * radius.x) + 2, Int(2 * radius.y) + 2)
            let bands = rng.uniform(3, 7)
            let phase = rng.uniform(0, 2 * .pi)
            var blotch = [Double](repeating: 0, count: 64)
            for i in blotch.indices { blotch[i] = rng.uniform(-0.35, 0.35) }
            texture = (0..<(textureSize.w * textureSize.h)).map { i in
                let x = i % textureSize.w, y = i / textureSize.w
                let band = 0.3 * sin(phase + bands * 2 * .pi * Double(y) / Double(textureSize.h))
                return 0.75 + band + blotch[(x / 4 % 8) * 8 + (y / 4 % 8)]
            }
        }
    }

    func drawObject(_ out: inout [UInt8]) {
        let x0 = max(0, Int(position.x - radius.x)), x1 = min(width - 1, Int(position.x + radius.x))
        let y0 = max(0, Int(position.y - radius.y)), y1 = min(height - 1, Int(position.y + radius.y))
        guard x0 <= x1, y0 <= y1 else { return }
        let h = header.count
        let c = contrast * gain
        for y in y0...y1 {
            let dy = (Double(y) - position.y) / radius.y
            for x in x0...x1 {
                let dx = (Double(x) - position.x) / radius.x
                let r2 = dx * dx + dy * dy
                guard r2 < 1 else { continue }
                // Soft edge: full contrast inside, fading over the outer fifth.
                let w = r2 < 0.64 ? 1 : (1 - r2) / 0.36
                let tx = min(textureSize.w - 1, max(0, Int(Double(x) - position.x + radius.x)))
                let ty = min(textureSize.h - 1, max(0, Int(Double(y) - position.y + radius.y)))
                let i = h + y * width + x
                out[i] = UInt8(max(0, min(255, Double(out[i]) + c * w * texture[ty * textureSize.w + tx])))
            }
        }
    }
}
