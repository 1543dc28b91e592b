import Foundation
import MQTT
import VigilCore

/// A stop request from a signal handler: it only sets state, the publishing loop reads it.
public final class StopFlag: Sendable {
    private let value = Guarded(false)
    public init() {}
    public func set() { value.set(true) }
    public var isSet: Bool { value.value }
}

/// Publishes synthetic sensor traffic on a schedule. Each (device, kind) stream sends at its
/// rate with its phase spread over the interval, so the load is even rather than bursty.
/// Sends are timed against absolute deadlines (no drift); when the broker cannot keep up,
/// the loop waits once `maxInflight × 4` messages are unacknowledged rather than queueing
/// without bound, and the report shows the lag.
public final class Simulator {
    public let settings: SimulatorSettings
    /// Called about once a second on the publishing thread.
    public var progress: ((SimulatorReport) -> Void)?
    /// Called with each injected event once it ends (or the run does): the ground truth.
    public var truth: ((TruthEvent) -> Void)?

    /// Acknowledgements counted on libmosquitto's network thread.
    private let acks = Guarded(0)

    public init(settings: SimulatorSettings) { self.settings = settings }

    struct Stream {
        let device: String
        let kind: SensorKind
        let topic: String
        let source: any SensorSource
        let interval: Double
        let phase: Double
        var due: Double
        var sent = 0
        /// Seconds of sensor time one message covers: an audio chunk's length, else 1/rate.
        let secondsPerMessage: Double
        var event: (name: String, first: Int)?
    }

    func makeStreams(start: Double) -> [Stream] {
        var rng = SimRandom(seed: settings.seed)
        var streams: [Stream] = []
        let kinds = settings.kinds.filter { (settings.rates[$0] ?? 0) > 0 }
        let total = settings.devices * kinds.count
        for d in 0..<settings.devices {
            let device = settings.deviceName(d)
            for (k, kind) in kinds.enumerated() {
                let rate = settings.rates[kind]!
                let seed = rng.next()
                let source: any SensorSource
                switch kind {
                case .camera:
                    source = CameraSource(width: settings.cameraWidth, height: settings.cameraHeight, fps: rate, seed: seed,
                                          meanObjectGap: settings.meanObjectGap)
                case .audio:
                    source = AudioSource(sampleRate: settings.sampleRate, chunkSeconds: settings.audioChunkSeconds,
                                         seed: seed, meanEventGap: settings.meanSoundGap)
                case .env:
                    source = EnvSource(rate: rate, timeScale: settings.envTimeScale, startEpoch: start, seed: seed,
                                       anomalyEvery: settings.envAnomalyEvery)
                case .vector:
                    source = VectorSource(size: settings.vectorSize, seed: seed)
                }
                let interval = 1 / rate
                // Spread first sends over one interval so streams do not fire together.
                let phase = Double(d * kinds.count + k) / Double(max(total, 1)) * interval
                streams.append(Stream(device: device, kind: kind, topic: settings.topic(device: device, kind: kind),
                                      source: source, interval: interval, phase: phase, due: phase,
                                      secondsPerMessage: kind == .audio ? settings.audioChunkSeconds : interval))
            }
        }
        return streams
    }

    /// Connects, publishes until the duration or count is reached or `stop` is set, waits up
    /// to `drainTimeout` for acknowledgements, and disconnects.
    public func run(stop: StopFlag, drainTimeout: Double = 10) throws -> SimulatorReport {
        let connected = ConnectionWaiter()
        var handlers = MQTTHandlers()
        let acks = self.acks
        handlers.published = { _ in acks.withLock { $0 += 1 } }
        handlers.connected = { rc, reason in connected.report(rc == 0 ? nil : reason) }
        handlers.disconnected = { rc, reason in if rc != 0 { connected.report("lost: \(reason)") } }
        let options = MQTTOptions(host: settings.host, port: settings.port, clientID: settings.clientID,
                                  username: settings.username, password: settings.password, keepalive: 30,
                                  cleanSession: true, reconnectMinDelay: 1, reconnectMaxDelay: 5,
                                  maxInflight: settings.maxInflight)
        let client = try MQTTClient(options: options, handlers: handlers)
        // A refused first attempt fails at once: a simulator pointed at the wrong port should say so, not wait.
        let problem: String?
        if let first = try client.start() {
            problem = first.detail
        } else {
            problem = connected.wait(timeout: 10) ?? (client.isConnected ? nil : "no answer within 10 s")
        }
        if let problem {
            client.stop()
            throw SimulatorError("cannot connect to broker \(settings.address): \(problem)")
        }
        defer { client.stop() }

        let startWall = Date().timeIntervalSince1970
        var streams = makeStreams(start: startWall)
        var heap = DueHeap(streams.indices.map { ($0, streams[$0].due) })
        var report = SimulatorReport()
        report.targetRate = settings.totalRate
        let inflightCap = max(settings.maxInflight * 4, 64)
        let clock = MonotonicClock()
        var nextProgress = 1.0
        let limitCount = settings.count
        var finished = 0

        while !stop.isSet, let (index, due) = heap.peek() {
            // A small tolerance: a send due at 2.9999999 s belongs to the next run, not this one.
            if let d = settings.duration, due >= d - 1e-9 { break }
            var now = clock.elapsed
            // --duration bounds the wall time too: a sender that fell behind stops on time
            // (the summary shows the rate it reached) rather than catching up afterwards.
            if let d = settings.duration, now >= d { break }
            // Checked on every pass, so progress shows even when sending never catches up.
            if now >= nextProgress {
                report.elapsed = now
                fill(&report)
                progress?(report)
                nextProgress = now.rounded(.down) + 1
            }
            if due > now {
                clock.sleep(until: min(due, nextProgress))
                continue
            }
            // Backpressure: libmosquitto queues without bound; wait for the broker instead.
            if report.sent - acks.value >= inflightCap {
                let waitStart = clock.elapsed
                while report.sent - acks.value >= inflightCap / 2 && !stop.isSet && client.isConnected {
                    Thread.sleep(forTimeInterval: 0.000_2)
                }
                report.stalled += clock.elapsed - waitStart
                now = clock.elapsed
            }
            var s = streams[index]
            let wall = startWall + now
            let payload = s.source.next(wallTime: wall)
            do {
                try client.publish(s.topic, payload, qos: settings.qos)
                report.sent += 1
                report.bytes += payload.count
                report.sentByKind[s.kind, default: 0] += 1
            } catch {
                report.failed += 1
                log.limited(.warning, key: "sim-publish", "\(error)")
            }
            report.maxLag = max(report.maxLag, now - due)
            track(&s, event: s.source.event, report: &report)
            s.sent += 1
            // From the start, not accumulated: no drift over millions of sends.
            s.due = s.phase + Double(s.sent) * s.interval
            streams[index] = s
            if let limitCount, s.sent >= limitCount {
                heap.pop()
                finished += 1
            } else {
                heap.replaceTop(s.due)
            }
        }
        // A finished schedule spans to its last slot's end, not its last send's start.
        let scheduledEnd = streams.map { $0.phase + Double($0.sent) * $0.interval }.max() ?? 0
        report.elapsed = stop.isSet ? clock.elapsed : max(clock.elapsed, min(scheduledEnd, settings.duration ?? scheduledEnd))
        for s in streams { endEvent(s) }
        // Deliver what is queued: QoS 1 means the broker has it only once it acknowledged it.
        let deadline = clock.elapsed + drainTimeout
        while acks.value < report.sent && clock.elapsed < deadline && client.isConnected {
            Thread.sleep(forTimeInterval: 0.002)
        }
        fill(&report)
        return report
    }

    private func fill(_ report: inout SimulatorReport) { report.acked = acks.value }

    /// Writes the payloads a run would publish into `dir` instead, one file each, named
    /// `NNNNNNN-DEVICE-KIND.EXT` in send order (probes and fixtures for benchmarks and
    /// tests). Needs `count` or `duration` to know when to stop; no broker is involved.
    public func dump(to dir: String) throws -> SimulatorReport {
        guard settings.count != nil || settings.duration != nil else {
            throw SimulatorError("dumping needs --count or --duration")
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let start = Date().timeIntervalSince1970
        var streams = makeStreams(start: start)
        var heap = DueHeap(streams.indices.map { ($0, streams[$0].due) })
        var report = SimulatorReport()
        report.targetRate = settings.totalRate
        var n = 0
        while let (index, due) = heap.peek() {
            if let d = settings.duration, due >= d - 1e-9 { break }
            var s = streams[index]
            let payload = s.source.next(wallTime: start + due)
            let ext = ["camera": "pgm", "audio": "wav", "env": "json", "vector": "f32"][s.kind.rawValue]!
            let name = String(format: "%07d-%@-%@.%@", n, s.device, s.kind.rawValue, ext)
            guard FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(payload)) else {
                throw SimulatorError("cannot write \(dir)/\(name)")
            }
            n += 1
            report.sent += 1
            report.bytes += payload.count
            report.sentByKind[s.kind, default: 0] += 1
            track(&s, event: s.source.event, report: &report)
            s.sent += 1
            s.due = s.phase + Double(s.sent) * s.interval
            streams[index] = s
            if let c = settings.count, s.sent >= c { heap.pop() } else { heap.replaceTop(s.due) }
        }
        for s in streams { endEvent(s) }
        report.elapsed = streams.map { $0.phase + Double($0.sent) * $0.interval }.max() ?? 0
        return report
    }

    /// Records event starts (counted) and ends (reported as ground truth) on a stream;
    /// call before `s.sent` counts the message just made.
    private func track(_ s: inout Stream, event: String?, report: inout SimulatorReport) {
        if s.event?.name == event { return }
        endEvent(s)
        s.event = event.map { (name: $0, first: s.sent) }
        if let event { report.events[event, default: 0] += 1 }
    }

    /// Reports the stream's current event as ending before message `s.sent`.
    private func endEvent(_ s: Stream) {
        guard let e = s.event, s.sent > e.first else { return }
        truth?(TruthEvent(device: s.device, kind: s.kind, event: e.name, first: e.first, last: s.sent - 1,
                          start: Double(e.first) * s.secondsPerMessage, end: Double(s.sent) * s.secondsPerMessage))
    }
}

/// One injected event on one stream: which messages show it (0-based, inclusive) and when,
/// in the sensor's own time from the start (frames at the rate, audio by chunk length).
public struct TruthEvent: Sendable, Equatable {
    public let device: String
    public let kind: SensorKind
    public let event: String
    public let first: Int
    public let last: Int
    public let start: Double
    public let end: Double

    public var json: JSONValue {
        func r(_ x: Double) -> JSONValue { .number((x * 1000).rounded() / 1000) }
        return .object([("device", .string(device)), ("kind", .string(kind.rawValue)), ("event", .string(event)),
                        ("first", .number(Double(first))), ("last", .number(Double(last))), ("start", r(start)), ("end", r(end))])
    }
}

public struct SimulatorError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
