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
        public init(kind: Kind, margin: Double, cap: Double, hopSeconds: Double) {
            self.kind = kind; self.margin = margin; self.cap = cap; self.hopSeconds = hopSeconds
        }
    }

    /// Chosen on tune (enroll_online_eval.py, results/enroll_online_eval.txt).
    public static func chosen(hopSeconds: Double) -> Settings {
        Settings(kind: .decayingMax(perHour: 0.1), margin: 0.05, cap: 0.9, hopSeconds: hopSeconds)
    }

    public private(set) var level: Double?

    public init(level: Double? = nil) { self.level = level }

    /// The threshold in force for an enrollment calibrated at `enrolled`.
    public func threshold(enrolled: Double, _ s: Settings) -> Double {
        guard let level else { return enrolled }
        return max(enrolled, min(s.cap, level + s.margin))
    }

    /// Takes one window's similarity; returns the threshold that was in force for it.
    public mutating func observe(_ similarity: Double, enrolled: Double, _ s: Settings) -> Double {
        let bar = threshold(enrolled: enrolled, s)
        let below = similarity < bar
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
