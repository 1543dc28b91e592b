import Foundation

/// What vigild would make of one recording heard on a device: each enrollment's similarity to
/// the recording's windows, run through a copy of that device's calibration exactly as
/// `Pipeline.applyEnrollments` runs it (`vigilctl enrolled --try`). After enrolling a kettle a
/// user wants to know whether the next boil will alert, and if not, why: too unlike the clips,
/// or held back by what the device learnt of its own everyday sound.
public struct EnrollmentTrial: Sendable {
    public struct Outcome: Sendable {
        public var enrollment: Enrollment
        /// The highest similarity of a window, and the threshold in force at that window.
        public var best: Double
        public var barAtBest: Double
        /// Windows at the threshold in force (an ignore: windows it silences), of `windows`.
        public var windowsAtBar: Int
        public var windows: Int
        /// A sound to alert on: whether the enrolled label would score at the rule's bar on
        /// `ruleFrames` windows in a row (each after `forFrames` at the threshold, none ignored).
        /// An ignore: whether it silences a window.
        public var fires: Bool
        /// Windows silenced by an ignore among those that reached the bar (a positive only).
        public var ignoredAtBar: Int
    }

    public var settings: DeviceCalibration.Settings
    /// The alert rule's own `for_frames` (1 unless the config says otherwise).
    public var ruleFrames: Int

    public init(settings: DeviceCalibration.Settings, ruleFrames: Int = 1) {
        self.settings = settings; self.ruleFrames = max(1, ruleFrames)
    }

    /// As `pipeline` scores its windows and its alert rule counts them.
    public init(pipeline: Pipeline) {
        self.init(settings: pipeline.calibration, ruleFrames: pipeline.settings.alert?.forFrames ?? 1)
    }

    /// `windows`: the recording's unit embeddings in order; `calibrations`: the device's saved
    /// state by enrollment uuid (none: a device that has heard nothing yet). Nothing is changed.
    public func run(_ enrollments: [Enrollment], windows: [[Float]], calibrations: [String: DeviceCalibration] = [:]) -> [Outcome] {
        let ignored = windows.map { w in enrollments.contains { $0.kind == .ignore && $0.similarity(w) >= $0.threshold } }
        return enrollments.map { e in
            var outcome = Outcome(enrollment: e, best: -.infinity, barAtBest: e.threshold, windowsAtBar: 0, windows: windows.count,
                                  fires: false, ignoredAtBar: 0)
            if e.kind == .ignore {
                for w in windows {
                    let sim = e.similarity(w)
                    if sim > outcome.best { outcome.best = sim }
                    if sim >= e.threshold { outcome.windowsAtBar += 1 }
                }
                outcome.fires = outcome.windowsAtBar > 0
                return outcome
            }
            var c = calibrations[e.uuid] ?? DeviceCalibration()
            var scoredRun = 0
            for (i, w) in windows.enumerated() {
                let sim = e.similarity(w)
                let bar = c.observe(sim, embedding: w, enrolled: e.threshold, settings)
                if sim > outcome.best { outcome.best = sim; outcome.barAtBest = bar }
                if sim >= bar {
                    outcome.windowsAtBar += 1
                    if ignored[i] { outcome.ignoredAtBar += 1 }
                }
                let scored = c.run >= settings.forFrames && !ignored[i]
                scoredRun = scored ? scoredRun + 1 : 0
                if scoredRun >= ruleFrames { outcome.fires = true }
            }
            return outcome
        }
    }
}
