import Foundation
import VigilCore

/// What `vigilctl simulate` sends, where, and how fast.
public struct SimulatorSettings: Sendable {
    public var host = "127.0.0.1"
    public var port = 1883
    public var username: String?
    public var password: String?
    public var clientID = "vigilctl-sim-\(ProcessInfo.processInfo.processIdentifier)"
    public var devices = 1
    public var devicePrefix = "sim"
    public var kinds: [SensorKind] = [.camera, .audio, .env]
    /// Messages per second per device, by kind.
    public var rates: [SensorKind: Double] = [.camera: 5, .audio: 2, .env: 1, .vector: 10]
    /// Stop after this many seconds...
    public var duration: Double?
    /// ...or after this many messages per device and kind.
    public var count: Int?
    public var topicPrefix = "sensors"
    public var qos: Int32 = 1
    public var maxInflight = 1000
    public var cameraWidth = 160
    public var cameraHeight = 120
    public var audioChunkSeconds = 0.5
    public var sampleRate = 16000
    public var envTimeScale = 1.0
    public var vectorSize = 4
    public var seed: UInt64 = 1
    /// Mean simulated seconds between objects / sound events; mean readings between env faults.
    public var meanObjectGap = 8.0
    public var meanSoundGap = 20.0
    public var envAnomalyEvery = 300.0

    public init() {}

    public var address: String { "\(host):\(port)" }

    public func deviceName(_ i: Int) -> String {
        devices > 999 ? String(format: "\(devicePrefix)-%05d", i + 1) : String(format: "\(devicePrefix)-%03d", i + 1)
    }

    public func topic(device: String, kind: SensorKind) -> String { "\(topicPrefix)/\(device)/\(kind.rawValue)" }

    /// Target messages per second over every device and kind.
    public var totalRate: Double { Double(devices) * kinds.reduce(0) { $0 + (rates[$1] ?? 0) } }
}

/// Progress and the final report of a run.
public struct SimulatorReport: Sendable {
    public var elapsed = 0.0
    public var sent = 0
    public var acked = 0
    public var failed = 0
    public var bytes = 0
    public var sentByKind: [SensorKind: Int] = [:]
    public var events: [String: Int] = [:]
    /// The most a message was sent behind its schedule (seconds).
    public var maxLag = 0.0
    /// Seconds spent waiting because too many messages were unacknowledged.
    public var stalled = 0.0
    public var targetRate = 0.0

    public var rate: Double { elapsed > 0 ? Double(sent) / elapsed : 0 }
    /// `sent` counts only publishes libmosquitto took; `failed` ones were never in flight.
    public var inflight: Int { sent - acked }

    public var progressLine: String {
        String(format: "simulate: %6.1f s  sent %d  %.1f msg/s (target %.1f)  acked %d  inflight %d  lag max %.1f ms",
               elapsed, sent, rate, targetRate, acked, inflight, maxLag * 1000)
    }

    public func summary(address: String) -> String {
        let kinds = SensorKind.allCases.compactMap { k in sentByKind[k].map { "\(k.rawValue) \($0)" } }.joined(separator: ", ")
        var s = String(format: "sent %d messages (%@) to %@ in %.2f s: %.1f msg/s (target %.1f), %.2f MB/s\n",
                       sent, kinds, address, elapsed, rate, targetRate, Double(bytes) / 1_048_576 / max(elapsed, 1e-9))
        s += "acknowledged \(acked), failed \(failed), unacknowledged \(sent - acked)\n"
        s += String(format: "schedule: max lag %.1f ms, stalled on inflight %.2f s\n", maxLag * 1000, stalled)
        if !events.isEmpty {
            s += "events injected: " + events.keys.sorted().map { "\($0) \(events[$0]!)" }.joined(separator: ", ") + "\n"
        }
        s += machineLine + "\n"
        return s
    }

    /// The same figures as `key=value` words, for scripts (`sent=` is what bench.py reads).
    public var machineLine: String {
        String(format: "sent=%d acked=%d failed=%d bytes=%d elapsed=%.3f rate=%.1f target=%.1f max_lag_ms=%.1f",
               sent, acked, failed, bytes, elapsed, rate, targetRate, maxLag * 1000)
    }
}
