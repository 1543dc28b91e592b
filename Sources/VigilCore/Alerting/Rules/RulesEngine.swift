import Foundation

/// Turns detections into alert transitions: one `AlertRule` per pipeline and device.
/// Called on the worker lanes; a device always stays on one lane, so the lock only guards
/// the table of states, never waits on work.
public final class RulesEngine: @unchecked Sendable {
    // @unchecked Sendable: `states` is guarded by `lock`; the rest is immutable.
    struct PipelineRules: Sendable {
        let settings: AlertSettings
        let selector: ScoreSelector
    }
    struct DeviceState {
        var rule: AlertRule
        var raisedLabel = ""
        /// Consecutive detections at or above each label rule's own min_score.
        var labelRuns: [String: Int] = [:]
    }

    public let node: String
    private let pipelines: [String: PipelineRules]
    private let lock = NSLock()
    private var states: [String: DeviceState] = [:]

    /// `pipelines`: name -> (alert settings, the model's labels); pipelines without alert settings are left out.
    public init(node: String, pipelines: [(name: String, alert: AlertSettings, modelLabels: [String])]) {
        self.node = node
        var p: [String: PipelineRules] = [:]
        for e in pipelines {
            p[e.name] = PipelineRules(settings: e.alert, selector: ScoreSelector(settings: e.alert, modelLabels: e.modelLabels))
        }
        self.pipelines = p
    }

    public func settings(for pipeline: String) -> AlertSettings? { pipelines[pipeline]?.settings }

    /// The transition this detection causes, if any.
    public func evaluate(_ d: Detection) -> AlertEvent? {
        guard let p = pipelines[d.pipeline] else { return nil }
        let key = d.pipeline + "\u{0}" + d.device
        return lock.withLock { () -> AlertEvent? in
            var s = states[key] ?? DeviceState(rule: AlertRule(settings: p.settings))
            defer { states[key] = s }
            let scores = RulesEngine.gated(d.scores, settings: p.settings, runs: &s.labelRuns, raising: !s.rule.active)
            guard let (label, score) = p.selector.pick(scores, enrolledFrom: d.enrolledFrom) else { return nil }
            switch s.rule.update(score: score, ts: d.ts, threshold: d.threshold) {
            case nil:
                return nil
            case .raise:
                s.raisedLabel = label
                return AlertEvent(uuid: RulesEngine.uuid(d, .raised), ts: d.ts, node: node, pipeline: d.pipeline, device: d.device, state: .raised,
                                  label: label, score: score, severity: p.settings.severity)
            case .clear:
                // A clear names the label that raised, with the score that cleared it.
                return AlertEvent(uuid: RulesEngine.uuid(d, .cleared), ts: d.ts, node: node, pipeline: d.pipeline, device: d.device, state: .cleared,
                                  label: s.raisedLabel, score: score, severity: p.settings.severity)
            }
        }
    }

    /// An alert's uuid follows from the detection that caused it: a replayed or redelivered
    /// frame raises the same alert row, which the store then keeps once.
    static func uuid(_ d: Detection, _ state: AlertEvent.State) -> String {
        RowID.derived(ts: d.ts, identity: FrameHash.combine(RowID.identity(of: d.uuid), state == .raised ? 1 : 2))
    }

    /// The scores the rule sees: while no alert is raised, a label with its own rule counts
    /// as 0 until it has met that rule; once raised, the real scores decide the clear.
    static func gated(_ scores: [(String, Double)], settings: AlertSettings,
                      runs: inout [String: Int], raising: Bool) -> [(String, Double)] {
        guard !settings.labelRules.isEmpty else { return scores }
        return scores.map { label, score in
            guard let r = settings.labelRules[label] else { return (label, score) }
            let run = score >= (r.minScore ?? settings.minScore) ? runs[label, default: 0] + 1 : 0
            runs[label] = run
            return (label, raising && run < r.forFrames ? 0 : score)
        }
    }
}
