import Foundation
import Synchronization

/// Decides which detections reach the log, per pipeline's `store` policy (docs/storage.md).
///
/// `all` passes every detection. `events` passes the detections whose label is not the
/// background and, per device, one summary row per `summary_s` of frame time: a detection
/// labelled `_summary` whose `ts` is the period's start, whose `scores` are the counts per
/// label of every detection of the period (stored or not) plus `_period_s`, whose `score` is
/// the highest score a non-background label reached in the period (how close it came to an
/// event) and whose `latency_ms` is the period's slowest. Summaries are detection rows so
/// that the log writer, the sync outbox, retention and the cap take them as they are
/// (Store/ and Sync/ unchanged); `vigilctl stats` adds their counts (VigilTools/Query/LogReader.swift).
///
/// Called from every lane (a device always on the same one); the state is one `Mutex`.
/// A period's summary is written when the device's first detection of a later period
/// arrives, when the device has been silent for a whole period (`sweep`, wall time, so a
/// device whose clock lags still gets one summary per period), and at stop or reload (`flush`).
public final class EventGate: Sendable {
    /// The label of summary rows: never a model's label (`Pipeline.build` refuses it).
    public static let summaryLabel = "_summary"
    /// The member of a summary's `scores` that holds its period in seconds.
    public static let periodKey = "_period_s"

    /// One pipeline's policy and what its background is.
    struct Rule: Sendable {
        let period: Double
        let model: String
        /// The background label (`still`, `normal`); nil for label groups, whose rows are
        /// background when no group reaches the model's threshold.
        let background: String?
        let threshold: Double

        init?(_ p: Pipeline) {
            guard case .events(let period) = p.settings.store else { return nil }
            self.period = period
            model = p.model.name
            threshold = p.model.threshold ?? 0.5
            if !p.groups.isEmpty { background = nil }
            else if p.labels.count == 1 { background = Pipeline.belowThresholdLabel }
            else { background = p.labels.first }
        }

        func isBackground(_ d: Detection) -> Bool {
            guard let background else { return d.score < threshold }
            return d.label == background
        }

        /// The highest score of a label that is not the background (a one-score model's only score).
        func eventScore(_ d: Detection) -> Double {
            let others = d.scores.filter { $0.0 != background || d.scores.count == 1 }
            return others.map(\.1).max() ?? d.score
        }
    }

    /// One device's open period.
    struct Period {
        var start: Double
        var counts: [String: Int] = [:]
        var maxScore = -Double.infinity
        var maxLatency = 0.0
        /// Wall time of its last detection (`sweep`).
        var lastSeen: Double

        func summary(_ rule: Rule, pipeline: String, device: String) -> Detection {
            var scores = counts.sorted { $0.key < $1.key }.map { ($0.key, Double($0.value)) }
            scores.append((EventGate.periodKey, rule.period))
            return Detection(ts: start, pipeline: pipeline, device: device, model: rule.model, label: EventGate.summaryLabel,
                             score: maxScore.isFinite ? maxScore : 0, scores: scores, latencyMs: maxLatency)
        }
    }

    struct Key: Hashable { let pipeline: String; let device: String }

    struct State {
        var rules: [String: Rule] = [:]
        var open: [Key: Period] = [:]
    }

    private let state: Mutex<State>

    public init(pipelines: [Pipeline]) {
        state = Mutex(State(rules: EventGate.rules(pipelines)))
    }

    static func rules(_ pipelines: [Pipeline]) -> [String: Rule] {
        var rules: [String: Rule] = [:]
        for p in pipelines { if let r = Rule(p) { rules[p.name] = r } }
        return rules
    }

    /// Whether any pipeline stores events only (vigild then sweeps summaries).
    public var summarizes: Bool { state.withLock { !$0.rules.isEmpty } }

    /// The rows to store for one detection: itself, nothing, or a finished period's summary first.
    public func admit(_ d: Detection, now: Double = Date().timeIntervalSince1970) -> [Detection] {
        state.withLock { s -> [Detection] in
            guard let rule = s.rules[d.pipeline] else { return [d] }
            var rows: [Detection] = []
            let key = Key(pipeline: d.pipeline, device: d.device)
            let start = (d.ts / rule.period).rounded(.down) * rule.period
            var period = s.open[key] ?? Period(start: start, lastSeen: now)
            if period.start != start {
                rows.append(period.summary(rule, pipeline: d.pipeline, device: d.device))
                period = Period(start: start, lastSeen: now)
            }
            period.counts[d.label, default: 0] += 1
            period.maxScore = max(period.maxScore, rule.eventScore(d))
            period.maxLatency = max(period.maxLatency, d.latencyMs)
            period.lastSeen = now
            s.open[key] = period
            if !rule.isBackground(d) { rows.append(d) }
            return rows
        }
    }

    /// Summaries of the devices silent for a whole period (wall time).
    public func sweep(now: Double = Date().timeIntervalSince1970) -> [Detection] {
        state.withLock { s -> [Detection] in
            var rows: [Detection] = []
            for (key, period) in s.open {
                guard let rule = s.rules[key.pipeline], now - period.lastSeen >= rule.period else { continue }
                rows.append(period.summary(rule, pipeline: key.pipeline, device: key.device))
                s.open[key] = nil
            }
            return rows.sorted { $0.ts < $1.ts }
        }
    }

    /// Every open period's summary (stop); `pipelines`, when given, replace the rules (reload).
    public func flush(replacing pipelines: [Pipeline]? = nil) -> [Detection] {
        state.withLock { s -> [Detection] in
            var rows: [Detection] = []
            for (key, period) in s.open {
                if let rule = s.rules[key.pipeline] { rows.append(period.summary(rule, pipeline: key.pipeline, device: key.device)) }
            }
            s.open = [:]
            if let pipelines { s.rules = EventGate.rules(pipelines) }
            return rows.sorted { $0.ts < $1.ts }
        }
    }
}
