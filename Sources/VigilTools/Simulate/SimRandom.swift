import Foundation
import VigilCore

/// A small, fast, seedable generator (xoshiro256**, seeded through SplitMix64), so that
/// `vigilctl simulate --seed N` produces the same traffic on every machine.
public struct SimRandom: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(); s1 = splitmix(); s2 = splitmix(); s3 = splitmix()
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1).
    @inline(__always)
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    public mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * unit() }

    public mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }

    public mutating func chance(_ p: Double) -> Bool { unit() < p }

    /// Standard normal (Box-Muller).
    public mutating func gaussian() -> Double {
        let u = max(unit(), 1e-300)
        return (-2 * Foundation.log(u)).squareRoot() * cos(2 * .pi * unit())
    }

    /// Exponential with the given mean (waiting times between events).
    public mutating func exponential(mean: Double) -> Double { -Foundation.log(max(1 - unit(), 1e-300)) * mean }

    /// A child generator for one stream, independent of the others.
    public mutating func fork() -> SimRandom { SimRandom(seed: next()) }
}

/// Gaussian noise tables shared by every simulated sensor: a sensor reads its noise from a
/// random offset, so one table serves a thousand devices (a table per device would cost
/// ~340 KB each). Made once per length from a fixed seed, so runs stay reproducible.
final class NoiseTables: Sendable {
    static let shared = NoiseTables()
    private let bytes = Guarded<[Int: [Int8]]>([:])
    private let floats = Guarded<[Int: [Float]]>([:])

    /// Integers from N(0, 3²), clipped to ±20 (camera sensor noise in grey levels).
    func pixelNoise(count: Int) -> [Int8] {
        bytes.withLock { tables in
            if let t = tables[count] { return t }
            var r = SimRandom(seed: 0x5EED_0001)
            let t = (0..<count).map { _ in Int8(max(-20, min(20, (3 * r.gaussian()).rounded()))) }
            tables[count] = t
            return t
        }
    }

    /// Standard normal samples (audio hiss and rumble).
    func gaussian(count: Int) -> [Float] {
        floats.withLock { tables in
            if let t = tables[count] { return t }
            var r = SimRandom(seed: 0x5EED_0002)
            let t = (0..<count).map { _ in Float(r.gaussian()) }
            tables[count] = t
            return t
        }
    }
}
