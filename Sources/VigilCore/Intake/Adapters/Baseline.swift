import Foundation

/// The rows of a stateful anomaly model's `baseline` input, by name (`vigil.state_layout`).
/// Models/README.md ("the baseline state") documents each; Models/training/baseline.py
/// computes the same numbers for evaluation.
public enum BaselineRow: String, CaseIterable, Sendable {
    /// Long-horizon mean of the field.
    case center
    /// Long-horizon mean absolute deviation from `center` (how far the level usually is from it).
    case spread
    /// Long-horizon mean absolute deviation from a fast mean over about one window (usual jitter).
    case change
    /// The scale floor: the field's quantisation step (smallest non-zero change seen), the
    /// configured `min_scale`, or 1e-6 of the level, whichever is largest.
    case floor
    /// 1 when the field is scored, 0 while it is stuck or has fewer than two readings.
    case mask
}

/// Settings of a pipeline's per-device baseline (pipeline key `baseline`).
public struct BaselineSettings: Sendable, Equatable {
    /// Time constant of the exponentially weighted estimates, seconds.
    public var horizonSeconds: Double = 3 * 86400
    /// No alert before a device has been seen this long...
    public var warmupSeconds: Double = 86400
    /// ...and sent this many readings (default 4 windows).
    public var warmupReadings: Int?
    /// Per-field scale floor in the field's units, by field path (a sensor's stated resolution).
    public var minScale: [String: Double] = [:]
    /// How often the baselines are written to the SQLite log, seconds (and at stop).
    public var snapshotSeconds: Double = 300
    public init() {}
}

/// One field's baseline: O(1) memory (10 numbers) and time per reading.
public struct FieldBaseline: Sendable, Equatable, Codable {
    var center = 0.0
    var spread = 0.0
    var fast = 0.0
    var change = 0.0
    /// Smallest non-zero change seen (the quantisation step); infinity until one is seen.
    var step = Double.infinity
    var last: Double?
    /// Long-horizon share of readings that changed the value.
    var changeRate = 0.0
    /// Readings in a row with an unchanged value.
    var run = 0

    /// Changes smaller than this share of the value are float rounding, not a step.
    static let relativeEpsilon = 1e-6
    /// An unchanged run less likely than this, given the field's change rate, means stuck.
    static let stuckProbability = 1e-6

    mutating func update(_ raw: Float, weight a: Double, fastWeight af: Double) {
        let v = Double(raw)
        guard let prev = last else {
            center = v; fast = v; last = v
            return
        }
        let delta = abs(v - prev)
        let changed = delta > FieldBaseline.relativeEpsilon * max(abs(v), abs(prev))
        if changed { step = min(step, delta); run = 0 } else { run += 1 }
        changeRate += ((changed ? 1 : 0) - changeRate) * a
        spread += (abs(v - center) - spread) * a
        change += (abs(v - fast) - change) * a
        center += (v - center) * a
        fast += (v - fast) * af
        last = v
    }

    /// Stuck: unchanged for at least a window, and for longer than its change rate makes
    /// plausible (a 9-value sensor that changes every few minutes is not stuck after one).
    func stuck(window: Int) -> Bool {
        guard run >= window, changeRate > 0 else { return false }
        return Double(run) * log1p(-min(changeRate, 0.999999)) < Foundation.log(FieldBaseline.stuckProbability)
    }

    func floor(minScale: Double) -> Double {
        max(step.isFinite ? step : 0, minScale, 1e-6 * max(1, abs(center)))
    }
}

/// A device's baseline over all its fields, with the reading interval and warm-up.
public struct DeviceBaseline: Sendable, Equatable, Codable {
    public internal(set) var fields: [FieldBaseline]
    /// Decayed count of readings (the weight of the running means).
    var weight = 0.0
    public internal(set) var readings = 0
    public internal(set) var firstTs: Double?
    public internal(set) var lastTs: Double?
    /// Decayed mean interval between readings, seconds, and its weight.
    public internal(set) var interval = 0.0
    var intervalWeight = 0.0

    public init(fields: Int) { self.fields = Array(repeating: FieldBaseline(), count: fields) }

    /// Takes one reading (every field present); returns the decay applied to older history,
    /// which the threshold tracker applies too.
    @discardableResult
    mutating func update(ts: Double, values: [Float], horizon: Double, window: Int) -> Double {
        let dt = lastTs.map { max(0, ts - $0) } ?? 0
        let d = exp(-dt / horizon)
        weight = weight * d + 1
        if firstTs == nil {
            firstTs = ts
        } else {
            intervalWeight = intervalWeight * d + 1
            interval += (dt - interval) / intervalWeight
        }
        lastTs = ts
        let a = 1 / weight, af = 2 / (Double(window) + 1)
        for i in fields.indices { fields[i].update(values[i], weight: a, fastWeight: af) }
        readings += 1
        return d
    }

    /// The model's `baseline` rows ([rows, fields], row-major), from the readings so far.
    func rows(_ layout: [BaselineRow], minScale: [Double], window: Int) -> [Float] {
        var out = [Float](repeating: 0, count: layout.count * fields.count)
        for (r, row) in layout.enumerated() {
            for (i, f) in fields.enumerated() {
                let v: Double = switch row {
                case .center: f.center
                case .spread: f.spread
                case .change: f.change
                case .floor: f.floor(minScale: minScale[i])
                case .mask: (readings < 2 || f.stuck(window: window)) ? 0 : 1
                }
                out[r * fields.count + i] = Float(v)
            }
        }
        return out
    }

    func warm(_ s: BaselineSettings, window: Int) -> Bool {
        guard let first = firstTs, let last = lastTs else { return false }
        return readings >= (s.warmupReadings ?? 4 * window) && last - first >= s.warmupSeconds
    }

    /// Share of the warm-up done, 0...1 (for `vigilctl baseline` and /metrics).
    func warmupProgress(_ s: BaselineSettings, window: Int) -> Double {
        let n = Double(readings) / Double(max(1, s.warmupReadings ?? 4 * window))
        let t = s.warmupSeconds > 0 ? ((lastTs ?? 0) - (firstTs ?? 0)) / s.warmupSeconds : 1
        return min(1, n, t)
    }
}

/// A device's false-alarm budget: a decayed histogram of the model's surprise
/// S = 5 score / (1 - score) (the shipped model's score is S / (S + 5), S = -log10 p), whose
/// tail above its 98th percentile is taken as exponential (peaks over threshold), so the
/// quantile that `max_false_alarms_per_day` asks for (1 reading in 86,400 at 1 Hz) is
/// found from a few days of history. 128 bins: 1 KB per device, O(bins) per reading.
public struct SurpriseBudget: Sendable, Equatable, Codable {
    static let bins = 128
    static let binWidth = 0.25
    static let tailQuantile = 0.98
    static let s0 = 5.0
    /// Decayed counts, divided by `gain`: decaying every bin on every reading would cost
    /// 128 multiplications; instead a new count is added as 1 / gain, and the quantiles
    /// below only use ratios of counts, which the common factor leaves unchanged.
    var histogram = [Double](repeating: 0, count: SurpriseBudget.bins)
    var gain = 1.0

    public init() {}

    static func surprise(score: Double) -> Double { s0 * score / max(1e-9, 1 - score) }
    static func score(surprise: Double) -> Double { surprise.isFinite ? surprise / (surprise + s0) : .infinity }

    /// Adds a score after decaying the history by `decay`. A score at or over the threshold
    /// in force is counted at the threshold (censored): its share of the tail stays, but a
    /// fault's size does not fatten the tail and lift the bar for the next one. (Leaving
    /// such scores out, as SPOT does, was tried: on the test split it let a bursty NAB
    /// series reach 2.1 false alarms a day, the tail seen being cut at the bar.)
    mutating func observe(score: Double, decay: Double, threshold: Double = .infinity) {
        guard score.isFinite else { return }
        gain *= decay
        if gain < 1e-200 {
            for i in histogram.indices { histogram[i] *= gain }
            gain = 1
        }
        let s = SurpriseBudget.surprise(score: max(0, min(score, threshold)))
        histogram[min(SurpriseBudget.bins - 1, Int(s / SurpriseBudget.binWidth))] += 1 / gain
    }

    /// The surprise that is passed by `perDay` readings a day, for a device that sends a
    /// reading every `interval` seconds; infinity with no history.
    func thresholdSurprise(perDay: Double, interval: Double) -> Double {
        let w = SurpriseBudget.binWidth
        let total = histogram.reduce(0, +)
        guard total > 0 else { return .infinity }
        let tail = (1 - SurpriseBudget.tailQuantile) * total
        var acc = 0.0, u = 0.0
        for b in stride(from: SurpriseBudget.bins - 1, through: 0, by: -1) {
            if acc + histogram[b] >= tail {
                let frac = histogram[b] > 0 ? (tail - acc) / histogram[b] : 0
                u = (Double(b) + 1 - frac) * w
                break
            }
            acc += histogram[b]
        }
        var num = 0.0, den = 0.0
        for b in 0..<SurpriseBudget.bins {
            let lo = Double(b) * w, hi = lo + w
            if hi <= u { continue }
            let part = histogram[b] * (hi - max(lo, u)) / w
            num += part * ((max(lo, u) + hi) / 2 - u)
            den += part
        }
        let meanExcess = max(den > 0 ? num / den : 0, w / 2)
        let rate = perDay / (86400 / max(interval, 1e-3))
        guard rate < 1 - SurpriseBudget.tailQuantile else { return u }
        return u + meanExcess * Foundation.log((1 - SurpriseBudget.tailQuantile) / rate)
    }
}

/// Everything vigild keeps about one (pipeline, device) of a stateful anomaly model, as
/// persisted in the `baselines` table (`state` column, JSON).
public struct BaselineSnapshot: Sendable, Equatable, Codable {
    public var baseline: DeviceBaseline
    public var budget: SurpriseBudget
    /// The alert threshold in force (a score), nil while warming up.
    public var threshold: Double?
    public var warm: Bool
    public var warmupProgress: Double
    public var stuckFields: [String]

    public var json: String {
        let e = JSONEncoder()
        // A field that never changed has no step yet: infinity, which plain JSON cannot hold.
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        e.outputFormatting = .sortedKeys
        return String(decoding: (try? e.encode(self)) ?? Data(), as: UTF8.self)
    }
    public static func decode(_ text: String) -> BaselineSnapshot? {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try? d.decode(BaselineSnapshot.self, from: Data(text.utf8))
    }
}

/// What the per-device state costs (`scripts/bench-baseline`, `vigil-bench --baseline`):
/// time per reading for the daemon's side (baseline update, model rows, budget update and
/// threshold), and bytes held per field and per device. Prints nothing; the caller does.
public enum BaselineCost {
    public static func measure(fields: Int, readings: Int) -> (nsPerReading: Double, bytesPerField: Int, bytesPerDevice: Int, jsonBytes: Int) {
        var b = DeviceBaseline(fields: fields)
        var budget = SurpriseBudget()
        let minScale = [Double](repeating: 0, count: fields)
        var values = [Float](repeating: 0, count: fields)
        var x: UInt64 = 0x9E3779B97F4A7C15
        var sink: Float = 0
        let start = DispatchTime.now().uptimeNanoseconds
        for i in 0..<readings {
            for f in 0..<fields {
                x = x &* 6364136223846793005 &+ 1442695040888963407
                values[f] = 20 + Float(x >> 40) / Float(1 << 24)
            }
            let rows = b.rows(BaselineRow.allCases, minScale: minScale, window: 64)
            let d = b.update(ts: Double(i), values: values, horizon: 3 * 86400, window: 64)
            let t = budget.thresholdSurprise(perDay: 1, interval: b.interval)
            budget.observe(score: Double(rows[0] - 20) * 0.1, decay: d)
            sink += rows[rows.count - 1] + Float(t.isFinite ? 0 : 1)
        }
        let ns = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(readings)
        if sink.isNaN { print("") }   // keeps the loop from being optimised away
        let snapshot = BaselineSnapshot(baseline: b, budget: budget, threshold: nil, warm: true, warmupProgress: 1, stuckFields: [])
        return (ns, MemoryLayout<FieldBaseline>.stride,
                MemoryLayout<DeviceBaseline>.stride + MemoryLayout<SurpriseBudget>.stride + SurpriseBudget.bins * 8,
                snapshot.json.utf8.count)
    }
}
