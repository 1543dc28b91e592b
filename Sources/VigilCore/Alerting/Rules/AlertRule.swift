import Foundation

/// The alert state of one pipeline and device: a small state machine with debounce,
/// hysteresis and cooldown. Pure (time comes in with each score), so it is tested without clocks.
///
/// - raise: the score is >= `min_score` for `for_frames` consecutive frames and, when
///   `for_s` is set, for at least `for_s` seconds; and the last raise is `cooldown_s` ago.
/// - clear: the score stays below `clear_below` (default `min_score`) for `clear_frames`
///   consecutive frames and, when `clear_after_s` is set, for at least that long.
/// Scores between `clear_below` and `min_score` keep the current state (hysteresis).
public struct AlertRule: Sendable {
    public let settings: AlertSettings
    public private(set) var active = false
    private var above = 0
    private var aboveSince: Double?
    private var below = 0
    private var belowSince: Double?
    private var lastRaise: Double?
    private var lastTs = -Double.infinity
    /// Raises that cooldown held back (for logs and tests).
    public private(set) var suppressed = 0

    public init(settings: AlertSettings) { self.settings = settings }

    public enum Transition: Equatable, Sendable { case raise, clear }

    /// Feeds one score at time `ts`; returns the transition it causes, if any. `threshold`
    /// is the device's own bar from its false-alarm budget (stateful anomaly pipelines):
    /// it replaces `min_score` (a `min_score` written in the config stays a floor under
    /// it) and clears below it; infinity (warming up) never raises.
    public mutating func update(score: Double, ts rawTs: Double, threshold: Double? = nil) -> Transition? {
        // A sensor clock that steps back must not reopen cooldowns or stretch durations.
        let ts = max(rawTs, lastTs)
        lastTs = ts
        var minScore = settings.minScore, clearBelow = settings.clearBelow ?? settings.minScore
        if let threshold {
            minScore = settings.minScoreGiven ? max(threshold, settings.minScore) : threshold
            clearBelow = min(settings.clearBelow ?? minScore, minScore)
        }
        if !active {
            guard score >= minScore else {
                above = 0; aboveSince = nil
                return nil
            }
            above += 1
            if aboveSince == nil { aboveSince = ts }
            guard above >= settings.forFrames else { return nil }
            if let s = settings.forSeconds, ts - aboveSince! < s { return nil }
            if let last = lastRaise, ts - last < settings.cooldownSeconds {
                suppressed += 1
                return nil
            }
            active = true
            lastRaise = ts
            above = 0; aboveSince = nil; below = 0; belowSince = nil
            return .raise
        } else {
            guard score < clearBelow else {
                below = 0; belowSince = nil
                return nil
            }
            below += 1
            if belowSince == nil { belowSince = ts }
            guard below >= settings.clearFrames else { return nil }
            if let s = settings.clearAfterSeconds, ts - belowSince! < s { return nil }
            active = false
            above = 0; aboveSince = nil; below = 0; belowSince = nil
            return .clear
        }
    }
}

/// Which label and score of a detection a rule looks at: with `labels`, the highest
/// score among those labels (not only the winning label); without, the highest score of
/// any label but the model's first (its background: "still", "normal"). A one-label
/// model (anomaly) is its own score.
public struct ScoreSelector: Sendable {
    let labels: Set<String>
    let background: String?

    public init(settings: AlertSettings, modelLabels: [String]) {
        labels = Set(settings.labels)
        background = modelLabels.count > 1 ? modelLabels.first : nil
    }

    /// Scores from `enrolledFrom` on are enrolled sounds (Enrollment/): a household enrolled
    /// them to be told, so they count whatever `labels` lists.
    public func pick(_ scores: [(String, Double)], enrolledFrom: Int? = nil) -> (label: String, score: Double)? {
        var best: (String, Double)?
        for (i, (l, s)) in scores.enumerated() {
            let enrolled = enrolledFrom.map { i >= $0 } ?? false
            if !enrolled, labels.isEmpty ? l == background : !labels.contains(l) { continue }
            if best == nil || s > best!.1 { best = (l, s) }
        }
        return best
    }
}
