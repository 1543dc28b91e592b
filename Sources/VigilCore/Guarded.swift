import Synchronization

/// A value shared between threads behind a `Mutex` (the standard library's Synchronization
/// module): the one box for state too small for a type of its own (a flag, a counter, a
/// message). Checked `Sendable`, unlike the hand-made NSLock boxes it replaces. A class, because
/// a `Mutex` cannot be copied and so cannot be captured by an escaping closure itself.
public final class Guarded<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    public init(_ value: Value) { mutex = Mutex(value) }

    /// Runs `body` with the value, holding the lock; keep it short.
    public func withLock<R: Sendable>(_ body: (inout Value) throws -> R) rethrows -> R {
        try mutex.withLock { v throws -> R in try body(&v) }
    }

    public var value: Value { mutex.withLock { $0 } }

    public func set(_ v: Value) { mutex.withLock { $0 = v } }
}
