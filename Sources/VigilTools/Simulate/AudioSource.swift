import Foundation
import VigilCore

/// A microphone in a quiet room: low rumble, mains hum and hiss, and now and then a sound a
/// model should notice: a smoke alarm (3 kHz beeps in the T3 pattern), breaking glass (an
/// impulsive broadband crash with high ringing partials and tinkles) or a door bell
/// (two decaying tones). Emits WAV chunks: RIFF, PCM 16-bit, mono.
public final class AudioSource: SensorSource {
    public let sampleRate: Int
    public let chunkSamples: Int
    var rng: SimRandom
    let noise: [Float]
    /// The mains hum for each sample index within a second (AudioSource.humTable).
    let hum: [Float]
    /// Samples made so far: the stream's clock.
    var n = 0
    var lowpass: Float = 0
    var level: Float
    var current: (label: String, start: Int, length: Int, seed: UInt64)?
    var nextEvent: Int
    let meanEventGap: Double
    public private(set) var event: String?

    public init(sampleRate: Int = 16000, chunkSeconds: Double = 0.5, seed: UInt64, meanEventGap: Double = 20) {
        self.sampleRate = sampleRate
        chunkSamples = max(1, Int(Double(sampleRate) * chunkSeconds))
        var r = SimRandom(seed: seed)
        noise = NoiseTables.shared.gaussian(count: 65536)
        hum = AudioSource.humTable(sampleRate: sampleRate)
        level = Float(r.uniform(0.6, 1.4))
        nextEvent = Int(r.exponential(mean: meanEventGap / 2) * Double(sampleRate))
        rng = r
        self.meanEventGap = meanEventGap
    }

    public func next(wallTime: Double) -> [UInt8] {
        var samples = [Float](repeating: 0, count: chunkSamples)
        var off = rng.int(0...(noise.count - 1))
        var shown: String?
        for i in 0..<chunkSamples {
            let k = n + i
            // Brown-ish rumble plus a little hiss and 50 Hz hum.
            let w = noise[off]
            off = off + 1 == noise.count ? 0 : off + 1
            lowpass = 0.995 * lowpass + 0.05 * w
            var s = level * (0.02 * lowpass + 0.004 * w) + hum[k % sampleRate]
            if current == nil, k >= nextEvent { startEvent(at: k) }
            if let e = current {
                s += eventSample(e, k - e.start, noise: w)
                shown = shown ?? e.label
                if k - e.start >= e.length {
                    current = nil
                    nextEvent = k + Int(rng.exponential(mean: meanEventGap) * Double(sampleRate)) + sampleRate
                }
            }
            samples[i] = s
        }
        n += chunkSamples
        event = shown
        return AudioSource.wav(samples, sampleRate: sampleRate)
    }

    func startEvent(at k: Int) {
        let pick = rng.unit()
        let sr = Double(sampleRate)
        if pick < 0.4 {
            // T3: three 0.5 s beeps 0.5 s apart, then 1.5 s quiet; sounded twice.
            current = ("smoke_alarm", k, Int(9 * sr), rng.next())
        } else if pick < 0.75 {
            current = ("glass_breaking", k, Int(rng.uniform(0.6, 1.2) * sr), rng.next())
        } else {
            current = ("door_bell", k, Int(1.6 * sr), rng.next())
        }
    }

    var nyquist: Double { Double(sampleRate) / 2 }

    /// One sample of the event `i` samples after it began.
    func eventSample(_ e: (label: String, start: Int, length: Int, seed: UInt64), _ i: Int, noise w: Float) -> Float {
        let t = Double(i) / Double(sampleRate)
        switch e.label {
        case "smoke_alarm":
            let cycle = t.truncatingRemainder(dividingBy: 4.5)
            guard cycle < 3, cycle.truncatingRemainder(dividingBy: 1) < 0.5 else { return 0 }
            // A piezo horn: 3.1 kHz with a strong third harmonic, square-ish.
            let f = 3100.0
            // The harmonic only where the rate can carry it (no aliasing at 8 kHz).
            let third = 3 * f < nyquist ? 0.1 * sin(2 * .pi * 3 * f * t) : 0
            return Float(0.35 * sin(2 * .pi * f * t) + third)
        case "glass_breaking":
            // The crash: broadband noise decaying over ~60 ms, and partials ringing at fixed
            // "shard" frequencies chosen by the event's seed; smaller tinkles follow.
            let crash = Double(w) * 0.6 * exp(-t / 0.06)
            var ring = 0.0
            var r = SimRandom(seed: e.seed)
            for _ in 0..<5 {
                let f = r.uniform(min(3000, 0.5 * nyquist), min(7500, 0.9 * nyquist))
                let tau = r.uniform(0.04, 0.25)
                ring += 0.08 * sin(2 * .pi * f * t) * exp(-t / tau)
            }
            var tinkle = 0.0
            for _ in 0..<4 {
                let at = r.uniform(0.15, 0.5)
                if t > at { tinkle += 0.06 * sin(2 * .pi * r.uniform(min(4000, 0.6 * nyquist), min(8000, 0.95 * nyquist)) * t) * exp(-(t - at) / 0.03) }
                else { _ = r.unit() }
            }
            return Float(crash + ring + tinkle)
        default:
            // Ding (660 Hz) then dong (550 Hz), each with a decaying second harmonic.
            func tone(_ f: Double, _ from: Double) -> Double {
                guard t >= from else { return 0 }
                let u = t - from
                return (0.3 * sin(2 * .pi * f * u) + 0.08 * sin(2 * .pi * 2 * f * u)) * exp(-u / 0.35)
            }
            return Float(tone(660, 0) + tone(550, 0.6))
        }
    }

    /// One second of the 50 Hz hum, 0.003 * sin(2 pi 50 k / rate), computed once per rate: a
    /// sin() per sample was most of the generator's CPU at thousands of chunks a second.
    static func humTable(sampleRate: Int) -> [Float] {
        let step = 2 * Float.pi * 50 / Float(sampleRate)
        return (0..<sampleRate).map { 0.003 * sin(step * Float($0)) }
    }

    /// RIFF/WAVE, PCM 16-bit little-endian, mono.
    public static func wav(_ samples: [Float], sampleRate: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(44 + 2 * samples.count)
        func u32(_ v: Int) { out += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff), UInt8((v >> 16) & 0xff), UInt8((v >> 24) & 0xff)] }
        func u16(_ v: Int) { out += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff)] }
        let dataBytes = 2 * samples.count
        out += Array("RIFF".utf8); u32(36 + dataBytes); out += Array("WAVE".utf8)
        out += Array("fmt ".utf8); u32(16); u16(1); u16(1); u32(sampleRate); u32(sampleRate * 2); u16(2); u16(16)
        out += Array("data".utf8); u32(dataBytes)
        let header = out.count
        out += [UInt8](repeating: 0, count: dataBytes)
        out.withUnsafeMutableBufferPointer { buf in
            for (i, s) in samples.enumerated() {
                let b = UInt16(bitPattern: Int16(max(-32767, min(32767, (s * 32767).rounded()))))
                buf[header + 2 * i] = UInt8(b & 0xff)
                buf[header + 2 * i + 1] = UInt8(b >> 8)
            }
        }
        return out
    }
}
