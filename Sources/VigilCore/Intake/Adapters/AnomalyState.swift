import Foundation

/// The per-device state a stateful anomaly model (`vigil.state`) gets from vigild: the
/// baseline it passes in with every window, and the false-alarm budget that sets the
/// device's alert threshold from the model's own scores. Owned by one SensorWindowAdapter,
/// so confined to the device's lane like it.
final class AnomalyState {
    let settings: BaselineSettings
    let layout: [BaselineRow]
    let fieldNames: [String]
    let minScale: [Double]
    let window: Int
    /// Readings per day the threshold lets through (`alert.max_false_alarms_per_day`).
    let falseAlarmsPerDay: Double
    /// Where snapshots go, and whether a reset was asked for (nil in tests that need no persistence).
    let book: BaselineBook?
    let key: BaselineBook.Key
    private(set) var snapshot: BaselineSnapshot
    private var lastObservedTs: Double?
    private var lastPublish = -Double.infinity
    /// How often (monotonic seconds) the state is handed to the book: its loss in a crash is
    /// at most this much of a horizon of days.
    static let publishEvery = 5.0

    init(settings: BaselineSettings, layout: [BaselineRow], fieldNames: [String], window: Int,
         falseAlarmsPerDay: Double, book: BaselineBook?, key: BaselineBook.Key) {
        self.settings = settings; self.layout = layout; self.fieldNames = fieldNames; self.window = window
        self.falseAlarmsPerDay = falseAlarmsPerDay; self.book = book; self.key = key
        minScale = fieldNames.map { settings.minScale[$0] ?? 0 }
        let fresh = BaselineSnapshot(baseline: DeviceBaseline(fields: fieldNames.count), budget: SurpriseBudget(),
                                     threshold: nil, warm: false, warmupProgress: 0, stuckFields: [])
        if let saved = book?.take(key), saved.baseline.fields.count == fieldNames.count {
            snapshot = saved
            lastObservedTs = saved.baseline.lastTs
        } else {
            snapshot = fresh
        }
    }

    /// The `baseline` rows for the window that ends with the reading about to be taken.
    func rows() -> [Float] { snapshot.baseline.rows(layout, minScale: minScale, window: window) }

    func update(ts: Double, values: [Float]) {
        // A reading at or before the newest one learned is already in the baseline: the intake
        // journal replays the frames before a restart (Intake/), and the saved baseline may hold them.
        if let last = snapshot.baseline.lastTs, ts <= last { return }
        snapshot.baseline.update(ts: ts, values: values, horizon: settings.horizonSeconds, window: window)
        publishIfDue()
    }

    /// Learns the score's place in the device's history and sets the threshold the rule
    /// will use (infinity while warming up: no alert), and labels the detection.
    func observe(_ d: inout Detection) {
        let b = snapshot.baseline
        snapshot.warm = b.warm(settings, window: window)
        snapshot.warmupProgress = b.warmupProgress(settings, window: window)
        // Threshold from the history before this score, as the evaluation does.
        let t = snapshot.warm
            ? SurpriseBudget.score(surprise: snapshot.budget.thresholdSurprise(perDay: falseAlarmsPerDay, interval: b.interval))
            : Double.infinity
        snapshot.threshold = t.isFinite ? t : nil
        // Likewise a replayed score the saved budget has already seen.
        if lastObservedTs.map({ d.ts > $0 }) ?? true {
            let decay = lastObservedTs.map { exp(-max(0, d.ts - $0) / settings.horizonSeconds) } ?? 1
            lastObservedTs = d.ts
            snapshot.budget.observe(score: d.score, decay: decay, threshold: t)
        }
        d.threshold = t
        snapshot.stuckFields = b.fields.indices.filter { b.fields[$0].stuck(window: window) }.map { fieldNames[$0] }
        if d.score >= t {
            d.label = "anomaly"
        } else {
            // A stuck sensor is said as such, not as an anomaly: `vigilctl detections --label stuck`.
            d.label = snapshot.stuckFields.isEmpty ? Pipeline.belowThresholdLabel : AnomalyState.stuckLabel
        }
    }

    static let stuckLabel = "stuck"

    private func publishIfDue() {
        guard monotonicSeconds() - lastPublish >= AnomalyState.publishEvery else { return }
        publish()
    }

    /// Hands the state to the book now (and starts afresh when a reset was asked for).
    func publish() {
        guard let book else { return }
        lastPublish = monotonicSeconds()
        if book.publish(key, snapshot) {
            log.notice("pipeline \(key.pipeline), device \(key.device): baseline reset as asked; warming up again")
            snapshot = BaselineSnapshot(baseline: DeviceBaseline(fields: fieldNames.count), budget: SurpriseBudget(),
                                        threshold: nil, warm: false, warmupProgress: 0, stuckFields: [])
            lastObservedTs = nil
            _ = book.publish(key, snapshot)
        }
    }
}

/// The latest baseline of every (pipeline, device), shared by the lanes (which publish into
/// it) and the store (which persists it every `snapshot_s` and at stop), and loaded from the
/// `baselines` table at start so a restart keeps what was learned. A device's adapter takes
/// its saved state when created (first frame, or after the device TTL freed it).
public final class BaselineBook: @unchecked Sendable {
    // @unchecked Sendable: `entries` is guarded by `lock`.
    public struct Key: Hashable, Sendable { public let pipeline: String; public let device: String }
    struct Entry { var snapshot: BaselineSnapshot; var dirty: Bool; var resetAsked: Bool }
    private let lock = NSLock()
    private var entries: [Key: Entry] = [:]

    public init() {}

    /// Loads saved snapshots (rows whose reset was asked for start afresh).
    public func load(_ rows: [(key: Key, snapshot: BaselineSnapshot)]) {
        lock.withLock { for r in rows { entries[r.key] = Entry(snapshot: r.snapshot, dirty: false, resetAsked: false) } }
    }

    func take(_ key: Key) -> BaselineSnapshot? {
        lock.withLock {
            guard let e = entries[key] else { return nil }
            if e.resetAsked {
                entries[key]!.resetAsked = false
                return nil
            }
            return e.snapshot
        }
    }

    /// Stores the device's latest state; true when a reset was asked for (the caller starts afresh).
    func publish(_ key: Key, _ s: BaselineSnapshot) -> Bool {
        lock.withLock {
            let reset = entries[key]?.resetAsked ?? false
            entries[key] = Entry(snapshot: s, dirty: true, resetAsked: false)
            return reset
        }
    }

    /// Asks the device's adapter to start afresh (vigilctl baseline reset); forgets the state now.
    public func requestReset(_ key: Key) {
        lock.withLock {
            if let e = entries[key] { entries[key] = Entry(snapshot: BaselineBook.empty(like: e.snapshot), dirty: true, resetAsked: true) }
        }
    }

    static func empty(like s: BaselineSnapshot) -> BaselineSnapshot {
        BaselineSnapshot(baseline: DeviceBaseline(fields: s.baseline.fields.count), budget: SurpriseBudget(),
                         threshold: nil, warm: false, warmupProgress: 0, stuckFields: [])
    }

    /// The snapshots changed since the last call (marked clean).
    public func takeDirty() -> [(key: Key, snapshot: BaselineSnapshot)] {
        lock.withLock {
            var out: [(key: Key, snapshot: BaselineSnapshot)] = []
            for (k, e) in entries where e.dirty {
                out.append((k, e.snapshot))
                entries[k]!.dirty = false
            }
            return out
        }
    }

    /// Every snapshot (for /metrics).
    public func all() -> [(key: Key, snapshot: BaselineSnapshot)] {
        lock.withLock { entries.map { ($0.key, $0.value.snapshot) } }
    }
}
