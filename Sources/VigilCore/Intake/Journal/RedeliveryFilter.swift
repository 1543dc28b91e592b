import Foundation

/// Recognises a QoS 1 message the broker sends again because it never saw vigild's PUBACK
/// (vigild was killed after journaling it, or the broker restarted before the ack reached
/// it). MQTT 3.1.1 (4.4) resends unacknowledged messages on session resume with their
/// original packet identifier, first thing after the CONNACK; so a message that arrives
/// within `window` seconds of a (re)connect with the packet id and the topic+payload hash
/// of one already taken is that message again, and is dropped before it makes rows twice.
///
/// Outside the window a repeated id and payload is a new message (ids wrap every 65,535
/// messages; a static scene repeats its bytes), so nothing else is ever dropped.
/// The table is filled from the journal at start, so a redelivery to a restarted vigild
/// is caught as well as one to a reconnected vigild.
public final class RedeliveryFilter: @unchecked Sendable {
    // @unchecked Sendable: `seen` and `openUntil` are guarded by `lock`.
    private let lock = NSLock()
    /// The hash of the last message taken with each packet id (0: none).
    private var seen = [UInt64](repeating: 0, count: 65_536)
    private var openUntil = 0.0
    let window: Double

    public init(window: Double = 10) { self.window = window }

    /// A connection (re)started: resent messages may follow.
    public func connected(now: Double = monotonicSeconds()) { lock.withLock { openUntil = now + window } }

    /// Remembers a message taken (a journal entry at start) without checking it.
    public func remember(mid: Int32, hash: UInt64) {
        guard mid > 0 else { return }
        lock.withLock { seen[Int(mid) & 0xFFFF] = hash | 1 }
    }

    /// True when this is a resend of a message already taken; otherwise remembers it.
    /// QoS 0 messages have no packet id and are never resent.
    public func isRedelivery(mid: Int32, qos: Int32, hash: UInt64, now: Double = monotonicSeconds()) -> Bool {
        guard qos > 0, mid > 0 else { return false }
        let slot = Int(mid) & 0xFFFF
        let mark = hash | 1   // never 0, the empty slot
        return lock.withLock {
            if now < openUntil && seen[slot] == mark { return true }
            seen[slot] = mark
            return false
        }
    }
}
