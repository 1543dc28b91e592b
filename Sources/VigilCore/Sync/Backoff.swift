/// Exponential backoff with jitter: each failure doubles the delay up to `max`, and the
/// delay actually used is drawn from [delay/2, delay], so gateways that lost the same uplink
/// do not all come back in the same second.
struct Backoff {
    let min: Double
    let max: Double
    private(set) var failures = 0

    init(min: Double, max: Double) {
        self.min = min
        self.max = Swift.max(min, max)
    }

    /// The delay before the next attempt, counting one more failure.
    mutating func next() -> Double {
        let exp = Swift.min(Double(1 << Swift.min(failures, 30)) * min, max)
        failures += 1
        return Double.random(in: (exp / 2)...exp)
    }

    mutating func reset() { failures = 0 }
}
