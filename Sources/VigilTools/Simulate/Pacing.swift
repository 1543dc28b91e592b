import Foundation
import VigilCore

/// Waits for the first connection outcome.
final class ConnectionWaiter: @unchecked Sendable {
    // @unchecked Sendable: state is guarded by `condition`.
    private let condition = NSCondition()
    private var outcome: String??

    func report(_ problem: String?) {
        condition.lock()
        if outcome == nil { outcome = .some(problem) }
        condition.broadcast()
        condition.unlock()
    }

    /// nil when connected; the reason otherwise (nil too on timeout: the caller checks).
    func wait(timeout: Double) -> String? {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(timeout)
        while outcome == nil, condition.wait(until: deadline) {}
        return outcome ?? nil
    }
}

/// Seconds since creation on the monotonic clock, and sleeping to an absolute point on it.
struct MonotonicClock {
    let start = DispatchTime.now().uptimeNanoseconds
    var elapsed: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    /// Sleeps to an absolute point. nanosleep (under Thread.sleep) overshoots by ~60 µs; the send loop then sends
    /// everything that fell due meanwhile, so at thousands of messages a second sends come in
    /// bunches of a few. Spinning (sched_yield) to the exact deadline instead kept a whole core
    /// busy, taken from the broker and the system under test in `make bench`.
    func sleep(until t: Double) {
        let left = t - elapsed
        if left > 0 { Thread.sleep(forTimeInterval: max(1e-6, left)) }
    }
}

/// A binary min-heap of (stream, due time): the next stream to send in O(log n).
struct DueHeap {
    private var items: [(index: Int, due: Double)]

    init(_ items: [(Int, Double)]) {
        self.items = []
        for i in items { push(i.0, i.1) }
    }

    func peek() -> (Int, Double)? { items.first.map { ($0.index, $0.due) } }

    mutating func push(_ index: Int, _ due: Double) {
        items.append((index, due))
        var c = items.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            guard items[c].due < items[p].due else { break }
            items.swapAt(c, p)
            c = p
        }
    }

    mutating func pop() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        siftDown(0)
    }

    mutating func replaceTop(_ due: Double) {
        items[0].due = due
        siftDown(0)
    }

    private mutating func siftDown(_ start: Int) {
        var p = start
        while true {
            let l = 2 * p + 1, r = l + 1
            var m = p
            if l < items.count, items[l].due < items[m].due { m = l }
            if r < items.count, items[r].due < items[m].due { m = r }
            if m == p { return }
            items.swapAt(p, m)
            p = m
        }
    }
}
