/// The broker's answers (SUBACK) to vigild's subscriptions. "Connected" is not "frames flow":
/// a frame published between the two reaches nobody (a new session has nothing queued), so
/// the log says when every subscription of a connection is granted. And a broker that refuses
/// one (granted 0x80, MQTT 3.1.1's failure code: an ACL, a limit) would otherwise fail
/// silently, with no frames and no error, so the refusal names its topic filter.
public final class SubscriptionAcks: Sendable {
    public enum Answer: Equatable, Sendable {
        /// This connection's subscriptions are all answered: `granted` of `of` granted.
        case connectionReady(granted: Int, of: Int)
        case refused(topic: String)
    }

    private struct State {
        var topics: [Int32: String] = [:]       // sent, not answered yet
        var early: [Int32: [Int32]] = [:]       // answered before `sent` recorded them (a reload's, from another thread)
        var expected = 0, answered = 0, granted = 0
    }
    private let state = Guarded(State())

    public init() {}

    /// A new connection is about to send `count` subscriptions (none: it is ready at once).
    public func connectionStarts(expecting count: Int) -> [Answer] {
        state.withLock { $0 = State(); $0.expected = count }
        return count == 0 ? [.connectionReady(granted: 0, of: 0)] : []
    }

    /// Subscription `mid` for `topic` was sent (a reload's too: a refusal is reported for it).
    public func sent(_ mid: Int32, _ topic: String) -> [Answer] {
        state.withLock { s in
            guard let qos = s.early.removeValue(forKey: mid) else {
                s.topics[mid] = topic
                return []
            }
            return Self.settle(&s, topic, qos)
        }
    }

    /// The broker answered subscription `mid` with these granted QoS values.
    public func answered(_ mid: Int32, granted qos: [Int32]) -> [Answer] {
        state.withLock { s in
            guard let topic = s.topics.removeValue(forKey: mid) else {
                s.early[mid] = qos
                return []
            }
            return Self.settle(&s, topic, qos)
        }
    }

    private static func settle(_ s: inout State, _ topic: String, _ qos: [Int32]) -> [Answer] {
        var out: [Answer] = []
        let refused = qos.isEmpty || qos.contains { $0 >= 0x80 }
        if refused { out.append(.refused(topic: topic)) }
        guard s.answered < s.expected else { return out }   // a reload's subscription
        s.answered += 1
        if !refused { s.granted += 1 }
        if s.answered == s.expected { out.append(.connectionReady(granted: s.granted, of: s.expected)) }
        return out
    }
}
