import Foundation

/// One device's running picture of how close its own everyday sound comes to one enrollment
/// (issue 18): the threshold vigilctl calibrated against the model's shipped background set is
/// not the audio of this home, so each device raises its own bar above what it hears every day.
///
/// `level` follows the similarity of the windows that did NOT reach the threshold in force (the
/// enrolled sound itself must not teach the device to ignore it); the threshold in force is
/// `max(enrolled, min(cap, level + margin))`. Kind, margin and cap were chosen on tuning draws
/// and tuning audio only (Models/training/enroll_online_eval.py, which computes the same thing:
/// see `EnrollmentCalibratorTests` for the figures checked against it); the cap keeps a device
/// from going deaf to the sound it was taught. One Double (and whether it is set) per device
/// and enrollment.
public struct DeviceCalibration: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A decaying maximum: `level = max(level - perHour x hop / 3600, s)`.
        case decayingMax(perHour: Double)
        /// A stochastic (Robbins-Monro) q-quantile: up `step x q` above it, down `step x (1 - q)` below.
        case quantile(q: Double, step: Double)
    }

    public struct Settings: Sendable, Equatable {
        public var kind: Kind
        public var margin: Double
        public var cap: Double
        /// Seconds between successive windows of a device (the pipeline's hop).
        public var hopSeconds: Double
        /// Consecutive windows that must reach the threshold in force before the enrolled
        /// label scores at the rule's bar (a `for_frames` of its own, whatever the rule's).
        public var forFrames: Int
        public init(kind: Kind, margin: Double, cap: Double, hopSeconds: Double, forFrames: Int = 1) {
            self.kind = kind; self.margin = margin; self.cap = cap; self.hopSeconds = hopSeconds; self.forFrames = forFrames
        }
    }

    /// Chosen on the tune draws and tune audio only (enroll_online_eval.py, with the enrolled
    /// floor 0.55 of `Enroller.positiveFloor`; results/enroll_online_eval.txt): of a decaying
    /// max (0.005-0.1 per hour) and a stochastic quantile (0.999, 0.9999), margins 0.02-0.15,
    /// caps 0.85-1 and 1 or 2 windows, every class within 1 false alarm/h, then the highest
    /// recall. A decaying max forgets slowly (0.1 of similarity an hour): a sound heard once
    /// this evening still counts tomorrow morning. The cap (0.85) keeps a sound that matches
    /// a prototype that closely alerting, however near the home's everyday audio comes.
    public static func chosen(hopSeconds: Double) -> Settings {
        Settings(kind: .decayingMax(perHour: 0.1), margin: 0.1, cap: 0.85, hopSeconds: hopSeconds, forFrames: 2)
    }

    public private(set) var level: Double?
    /// Consecutive windows, up to this one, that reached the threshold in force.
    public private(set) var run = 0

    public init(level: Double? = nil) { self.level = level }

    /// The threshold in force for an enrollment calibrated at `enrolled`.
    public func threshold(enrolled: Double, _ s: Settings) -> Double {
        guard let level else { return enrolled }
        return max(enrolled, min(s.cap, level + s.margin))
    }

    /// Takes one window's similarity; returns the threshold that was in force for it.
    public mutating func observe(_ similarity: Double, enrolled: Double, _ s: Settings) -> Double {
        let bar = threshold(enrolled: enrolled, s)
        // No similarity (-infinity: the prototypes do not fit this model's embedding; NaN):
        // the window reaches nothing and teaches nothing (not `below`); only time passes.
        let finite = similarity.isFinite
        let below = finite && similarity < bar
        run = finite && !below ? min(run + 1, 1 << 20) : 0
        switch s.kind {
        case .decayingMax(let perHour):
            if var l = level {
                l -= perHour * s.hopSeconds / 3600
                level = below ? max(l, similarity) : l
            } else if below {
                level = similarity
            }
        case .quantile(let q, let step):
            guard below else { break }
            if let l = level { level = similarity > l ? l + step * q : l - step * (1 - q) } else { level = similarity }
        }
        return bar
    }
}
