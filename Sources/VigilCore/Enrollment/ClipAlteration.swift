import Foundation

/// An altered copy of an enrolled clip, whose embedding becomes one more prototype of the
/// enrollment: the same sound a little faster or slower (pitch with it), or through another
/// speaker, room or wall (tone). Five clips from one kettle say little about the kettle heard
/// tomorrow through a door; copies altered the ways a recording of the same sound varies reach
/// recordings the clips alone do not.
///
/// Chosen on tune draws and tune audio at the setting vigild ships, as a device lives it
/// (Models/training/exp_enroll_augment.py; results/enroll_augment.txt): speed +-8 % and four
/// one-pole tones lifted mean recall of the class's other recordings 0.56 -> 0.65 at 0.51 ->
/// 0.57 false alarms/h. Pink noise added to the clips was dropped there (false alarms 0.5 ->
/// 3.4/h: a prototype of noise matches noise), and so were level changes (clock alarms fell to
/// 0). On test, which no choice read: 3 of 6 held-out classes at recall >= 0.8 with <= 1 false
/// alarm/h, against 2 of 6 from the clips alone (Models/sound.md, "Altered copies").
///
/// The arithmetic is exp_enroll_augment.py's: `speed` resamples by linear interpolation, the
/// tones are y[i] = (1 - a) x[i] + a y[i-1] with a = exp(-2 pi f / rate) (the high-pass is x - y).
public enum ClipAlteration: Sendable {
    /// Played `factor` times as fast (pitch up by the same factor): the clip is 1/factor as long.
    case speed(Double)
    /// Above `hz` softened (a smaller microphone, a wall between).
    case lowPass(hz: Double)
    /// Below `hz` softened (a small speaker, a far sound).
    case highPass(hz: Double)

    /// What `Enroller` adds to each clip of a positive enrollment (an ignore keeps its clips
    /// alone: an ignore silences what it resembles, and its calibration was chosen without copies).
    public static let positive: [ClipAlteration] = [
        .speed(0.92), .speed(1.08), .lowPass(hz: 2000), .highPass(hz: 500), .lowPass(hz: 4000), .highPass(hz: 250),
    ]

    public func apply(_ x: [Float], rate: Int) -> [Float] {
        switch self {
        case .speed(let r): return Self.resampled(x, by: r)
        case .lowPass(let hz): return Self.onePole(x, hz: hz, rate: rate)
        case .highPass(let hz): return zip(x, Self.onePole(x, hz: hz, rate: rate)).map { $0 - $1 }
        }
    }

    static func resampled(_ x: [Float], by r: Double) -> [Float] {
        guard let lastSample = x.last, r > 0 else { return x }
        let n = Int((Double(x.count) / r).rounded())
        return (0..<n).map { i in
            let t = Double(i) * r
            let k = Int(t)
            guard k + 1 < x.count else { return lastSample }
            let f = Float(t - Double(k))
            return x[k] + (x[k + 1] - x[k]) * f
        }
    }

    static func onePole(_ x: [Float], hz: Double, rate: Int) -> [Float] {
        let a = exp(-2 * Double.pi * hz / Double(rate))
        var y = 0.0
        return x.map { v in
            y = (1 - a) * Double(v) + a * y
            return Float(y)
        }
    }
}
