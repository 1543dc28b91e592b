import Foundation
import MQTT

/// What `vigilctl simulate` sends, where, and how fast.
public struct SimulatorSettings: Sendable {
    public var host = "127.0.0.1"
    public var port = 1883
    public var username: String?
    public var password: String?
    public var clientID = "vigilctl-sim-\(getpid())"
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

/// A stop request from a signal handler: it only sets state, the publishing loop reads it.
public final class StopFlag: @unchecked Sendable {
    // @unchecked Sendable: `value` is guarded by `lock`.
    private let lock = NSLock()
    private var value = false
    public init() {}
    public func set() { lock.withLock { value = true } }
    public var isSet: Bool { lock.withLock { value } }
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
    /// Called when an injected event starts or ends on a stream (ground truth).
    public var truth: ((_ device: String, _ kind: SensorKind, _ event: String, _ start: Double, _ end: Double) -> Void)?

    private let acks = AckCounter()

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
        var event: (name: String, since: Double)?
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
                                      source: source, interval: interval, phase: phase, due: phase))
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
        handlers.published = { _ in acks.ack() }
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
            if report.sent - acks.count >= inflightCap {
                let waitStart = clock.elapsed
                while report.sent - acks.count >= inflightCap / 2 && !stop.isSet && client.isConnected {
                    usleep(200)
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
            track(&s, event: s.source.event, at: Double(s.sent) * s.interval, report: &report)
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
        for s in streams { if let e = s.event { truth?(s.device, s.kind, e.name, e.since, Double(s.sent) * s.interval) } }
        // Deliver what is queued: QoS 1 means the broker has it only once it acknowledged it.
        let deadline = clock.elapsed + drainTimeout
        while acks.count < report.sent && clock.elapsed < deadline && client.isConnected {
            usleep(2000)
        }
        fill(&report)
        return report
    }

    private func fill(_ report: inout SimulatorReport) { report.acked = acks.count }

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
            track(&s, event: s.source.event, at: Double(s.sent) * s.interval, report: &report)
            s.sent += 1
            s.due = s.phase + Double(s.sent) * s.interval
            streams[index] = s
            if let c = settings.count, s.sent >= c { heap.pop() } else { heap.replaceTop(s.due) }
        }
        for s in streams { if let e = s.event { truth?(s.device, s.kind, e.name, e.since, Double(s.sent) * s.interval) } }
        report.elapsed = streams.map { $0.phase + Double($0.sent) * $0.interval }.max() ?? 0
        return report
    }

    /// Records event starts (counted) and ends (reported as ground truth) on a stream.
    private func track(_ s: inout Stream, event: String?, at t: Double, report: inout SimulatorReport) {
        if s.event?.name == event { return }
        if let e = s.event { truth?(s.device, s.kind, e.name, e.since, t) }
        s.event = event.map { (name: $0, since: t) }
        if let event { report.events[event, default: 0] += 1 }
    }
}

public struct SimulatorError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Acknowledgements counted on libmosquitto's network thread.
final class AckCounter: @unchecked Sendable {
    // @unchecked Sendable: `n` is guarded by `lock`.
    private let lock = NSLock()
    private var n = 0
    func ack() { lock.withLock { n += 1 } }
    var count: Int { lock.withLock { n } }
}

/// Waits for the first connection outcome.
final class ConnectionWaiter: @unchecked Sendable {
    // @unchecked Sendable: state is guarded by `condition`.
    private let condition = NSCondition()
    private var outcome: String??

    func report(_ problem: String?) {
        condition.lock()
        if outcome == nil { outcome = .some(problem) }
        condition.broadcast()
        condition.unlock()
    }

    /// nil when connected; the reason otherwise (nil too on timeout: the caller checks).
    func wait(timeout: Double) -> String? {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(timeout)
        while outcome == nil, condition.wait(until: deadline) {}
        return outcome ?? nil
    }
}

/// Seconds since creation on the monotonic clock, and sleeping to an absolute point on it.
struct MonotonicClock {
    let start = DispatchTime.now().uptimeNanoseconds
    var elapsed: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    /// Sleeps most of the way, then yields: nanosleep alone overshoots by ~60 µs, which
    /// at thousands of messages a second would bunch sends up.
    func sleep(until t: Double) {
        let left = t - elapsed
        if left > 0.002 {
            usleep(useconds_t((left - 0.001) * 1e6))
        } else if left > 0 {
            sched_yield()
        }
    }
}

/// A binary min-heap of (stream, due time): the next stream to send in O(log n).
struct DueHeap {
    private var items: [(index: Int, due: Double)]

    init(_ items: [(Int, Double)]) {
        self.items = []
        for i in items { push(i.0, i.1) }
    }

    func peek() -> (Int, Double)? { items.first.map { ($0.index, $0.due) } }

    mutating func push(_ index: Int, _ due: Double) {
        items.append((index, due))
        var c = items.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            guard items[c].due < items[p].due else { break }
            items.swapAt(c, p)
            c = p
        }
    }

    mutating func pop() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        siftDown(0)
    }

    mutating func replaceTop(_ due: Double) {
        items[0].due = due
        siftDown(0)
    }

    private mutating func siftDown(_ start: Int) {
        var p = start
        while true {
            let l = 2 * p + 1, r = l + 1
            var m = p
            if l < items.count, items[l].due < items[m].due { m = l }
            if r < items.count, items[r].due < items[m].due { m = r }
            if m == p { return }
            items.swapAt(p, m)
            p = m
        }
    }
}
