import Foundation
import Synchronization

/// Row identifiers: UUID version 7 (RFC 9562), lower-case text, e.g. `0190b6e2-...`.
///
/// Why not Foundation's `UUID()`: on Linux it opens, reads and closes /dev/urandom for
/// every call, three system calls per detection, which at 16,000 readings/s was a visible
/// share of vigild's CPU. Why version 7: its first 48 bits are the Unix time in
/// milliseconds, so new rows land at the right-hand end of the `uuid` UNIQUE index instead
/// of on a random page of it, and the cloud can sort by uuid. The other 74 bits come from a
/// generator seeded once from the system's random source: unique in practice, not secret
/// (nothing relies on uuids being unguessable).
public enum RowID {
    private static let generator = LockedGenerator()

    public static func make(now: Date = Date()) -> String {
        let ms = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        let (a, b) = generator.next()
        // 48 bits time | version 7 | 12 random bits | variant 10 | 62 random bits
        let hi = (ms << 16) | 0x7000 | (a & 0x0FFF)
        let lo = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return format(hi, lo)
    }

    /// A version 7 uuid whose 74 non-time bits are derived from `identity` instead of drawn at
    /// random: the same frame (or alert) gives the same uuid however often it is processed
    /// (a journal replay, a broker's redelivery), so `INSERT OR IGNORE` and the cloud's
    /// de-duplication by uuid see one row. The time bits are the row's own `ts`, so rows
    /// still sort by time. docs/storage.md, "Row identity", says what goes into `identity`.
    public static func derived(ts: Double, identity: UInt64) -> String {
        let ms = UInt64(max(0, min(ts * 1000, Double(UInt64(1) << 47))))
        let a = FrameHash.combine(identity, 0x7669_6769_6c2d_6964)   // "vigil-id"
        let b = FrameHash.combine(a, identity)
        let hi = (ms << 16) | 0x7000 | (a & 0x0FFF)
        let lo = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return format(hi, lo)
    }

    /// The identity of a text (an alert's uuid from its detection's uuid and state).
    /// Whether `text` has a uuid's shape (8-4-4-4-12 hex digits): safe as a file name.
    public static func isUUID(_ text: String) -> Bool {
        let u = Array(text.utf8)
        guard u.count == 36 else { return false }
        for (i, c) in u.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 { if c != UInt8(ascii: "-") { return false }; continue }
            guard (48...57).contains(c) || (97...102).contains(c) || (65...70).contains(c) else { return false }
        }
        return true
    }

    public static func identity(of text: String) -> UInt64 { FrameHash.hash(Array(text.utf8)) }

    static func format(_ hi: UInt64, _ lo: UInt64) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: UInt8(ascii: "-"), count: 36)
        var pos = 0
        func put(_ v: UInt64, nibbles: Int) {
            for i in stride(from: nibbles - 1, through: 0, by: -1) {
                if pos == 8 || pos == 13 || pos == 18 || pos == 23 { pos += 1 }
                out[pos] = digits[Int((v >> UInt64(i * 4)) & 0xF)]
                pos += 1
            }
        }
        put(hi, nibbles: 16)
        put(lo, nibbles: 16)
        return String(decoding: out, as: UTF8.self)
    }
}

/// xoshiro256** behind a Mutex, seeded from the system random source once per process.
private final class LockedGenerator: Sendable {
    private let state: Mutex<Xoshiro256>

    init() {
        var rng = SystemRandomNumberGenerator()
        state = Mutex(Xoshiro256(s: (rng.next(), rng.next(), rng.next(), rng.next() | 1)))
    }

    func next() -> (UInt64, UInt64) {
        state.withLock { (g: inout Xoshiro256) -> (UInt64, UInt64) in (g.step(), g.step()) }
    }
}

private struct Xoshiro256 {
    var s: (UInt64, UInt64, UInt64, UInt64)

    mutating func step() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}
