import Foundation
import VigilCore

/// A temperature/humidity sensor indoors: a daily curve (warmest mid-afternoon, humidity
/// opposite), sensor noise, and injected faults an anomaly model should flag: spikes
/// (one or two wild readings), drifts (a slow ramp away and a snap back) and a stuck
/// sensor (the same value repeated). Emits `{"temperature":..,"humidity":..,"ts":..}`.
public final class EnvSource: SensorSource {
    var rng: SimRandom
    /// Simulated seconds per reading: 1/rate × time scale, so a demo can run a day in minutes.
    let step: Double
    let startTimeOfDay: Double
    let baseTemperature: Double
    let baseHumidity: Double
    var t = 0.0
    let anomalyChance: Double
    var anomaly: (kind: String, left: Int, total: Int, size: Double)?
    var stuck: (Double, Double)?
    public private(set) var event: String?

    /// `anomalyEvery`: mean readings between injected faults.
    public init(rate: Double, timeScale: Double = 1, startEpoch: Double, seed: UInt64, anomalyEvery: Double = 300) {
        var r = SimRandom(seed: seed)
        step = timeScale / max(rate, 0.001)
        startTimeOfDay = startEpoch.truncatingRemainder(dividingBy: 86400)
        baseTemperature = r.uniform(19.5, 23)
        baseHumidity = r.uniform(38, 55)
        anomalyChance = 1 / max(anomalyEvery, 1)
        rng = r
    }

    /// The fault-free reading at simulated time `t`.
    func normal(at t: Double) -> (temperature: Double, humidity: Double) {
        let hours = (startTimeOfDay + t).truncatingRemainder(dividingBy: 86400) / 3600
        let day = sin(2 * .pi * (hours - 9) / 24)   // peaks at 15:00
        return (baseTemperature + 2.5 * day + 0.08 * rng.gaussian(), baseHumidity - 7 * day + 0.4 * rng.gaussian())
    }

    public func next(wallTime: Double) -> [UInt8] {
        t += step
        var (temperature, humidity) = normal(at: t)
        if anomaly == nil, rng.chance(anomalyChance) {
            let pick = rng.unit()
            if pick < 0.45 {
                anomaly = ("spike", rng.int(1...2), 0, (rng.chance(0.5) ? 1 : -1) * rng.uniform(6, 14))
            } else if pick < 0.8 {
                let n = rng.int(30...90)
                anomaly = ("drift", n, n, (rng.chance(0.5) ? 1 : -1) * rng.uniform(3, 8))
            } else {
                anomaly = ("stuck", rng.int(30...90), 0, 0)
                stuck = (temperature, humidity)
            }
        }
        event = nil
        if var a = anomaly {
            switch a.kind {
            case "spike":
                temperature += a.size
                humidity = max(0, min(100, humidity - a.size))
            case "drift":
                let done = Double(a.total - a.left + 1) / Double(a.total)
                temperature += a.size * done
            default:
                if let s = stuck { (temperature, humidity) = s }
            }
            event = a.kind
            a.left -= 1
            anomaly = a.left > 0 ? a : nil
            if anomaly == nil { stuck = nil }
        }
        humidity = max(0, min(100, humidity))
        let text = String(format: "{\"temperature\":%.2f,\"humidity\":%.1f,\"ts\":%.3f}", temperature, humidity, wallTime)
        return Array(text.utf8)
    }
}

/// A generic feature vector (`f32le`): a slow random walk per component with occasional
/// outliers, for benchmarking pipelines that take raw float32 vectors.
public final class VectorSource: SensorSource {
    var rng: SimRandom
    var values: [Float]
    public private(set) var event: String?

    public init(size: Int, seed: UInt64) {
        var r = SimRandom(seed: seed)
        values = (0..<max(1, size)).map { _ in Float(r.uniform(-1, 1)) }
        rng = r
    }

    public func next(wallTime: Double) -> [UInt8] {
        for i in values.indices { values[i] = 0.98 * values[i] + Float(0.05 * rng.gaussian()) }
        var out = values
        event = nil
        if rng.chance(0.01) {
            out[rng.int(0...(out.count - 1))] += Float(rng.chance(0.5) ? 5 : -5)
            event = "outlier"
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4 * out.count)
        for v in out {
            let b = v.bitPattern.littleEndian
            bytes += [UInt8(b & 0xff), UInt8((b >> 8) & 0xff), UInt8((b >> 16) & 0xff), UInt8(b >> 24)]
        }
        return bytes
    }
}
