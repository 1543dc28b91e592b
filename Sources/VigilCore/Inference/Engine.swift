import Foundation
import MQTT
import Synchronization

/// Routes messages to pipelines and runs them on a fixed pool of worker lanes.
///
/// A device always maps to the same lane, so its frames are processed in order and its
/// stream state is touched by one thread only. Each lane holds at most `queueDepth`
/// frames per pipeline and `maxQueueBytes / workers` bytes of payload; when a pipeline
/// falls behind, `submit` waits for room (back-pressure: the MQTT thread stops reading
/// and the broker keeps the frames), so memory stays bounded and no acknowledged frame is
/// dropped. The MQTT thread only routes, journals (Intake/) and enqueues. Stream state of
/// a device silent for `deviceTTL` seconds is freed.
public final class Engine: @unchecked Sendable {
    // @unchecked Sendable: lanes synchronise their own queues; the rest is immutable.
    public let pipelines: [Pipeline]
    let counters: Counters
    let limits: LimitSettings
    let sink: @Sendable (Detection) -> Void
    let intake: IntakeHooks?
    /// Keeps each device's recent input for the evidence of its alerts (Evidence/); nil: none kept.
    let evidence: EvidenceRecorder?
    private let lanes: [Lane]

    public init(pipelines: [Pipeline], limits: LimitSettings, counters: Counters, intake: IntakeHooks? = nil,
                evidence: EvidenceRecorder? = nil, sink: @escaping @Sendable (Detection) -> Void) {
        self.pipelines = pipelines
        self.evidence = evidence
        self.limits = limits
        self.counters = counters
        self.intake = intake
        self.sink = sink
        let laneBytes = max(1, limits.maxQueueBytes / max(1, limits.workers))
        lanes = (0..<limits.workers).map { Lane(index: $0, pipelines: pipelines.count, depth: limits.queueDepth, maxBytes: laneBytes, ttl: limits.deviceTTL) }
        for lane in lanes { lane.start(engine: self) }
    }

    /// The pipeline that owns a topic: the first whose pattern matches.
    public func route(_ topic: String) -> Int? {
        pipelines.firstIndex { $0.settings.topic.matches(topic) }
    }

    /// Called on the MQTT thread: cheap checks, a resend of a message already taken set
    /// aside, the journal (before this returns, and so before the PUBACK), then hand off.
    public func submit(_ message: MQTTMessage) {
        guard let p = route(message.topic) else {
            counters.frameRejected("-", .unrouted)
            log.limited(.warning, key: "unrouted", "topic \(Logger.clip(message.topic)): no pipeline owns this topic; message ignored")
            return
        }
        let pipeline = pipelines[p]
        let device = pipeline.settings.topic.device(in: message.topic)
        counters.frameReceived(pipeline.name, device: device, at: message.receivedAt)
        guard message.payload.count <= limits.maxPayloadBytes else {
            reject(pipeline.name, message.topic, FrameError(.tooLarge,
                   "payload of \(message.payload.count) bytes is over limits.max_payload_bytes (\(limits.maxPayloadBytes))"))
            return
        }
        let hash = FrameHash.frame(topic: message.topic, payload: message.payload)
        if let intake, intake.redeliveries.isRedelivery(mid: message.mid, qos: message.qos, hash: hash) {
            reject(pipeline.name, message.topic, FrameError(.redelivered,
                   "the broker sent message \(message.mid) again (its first delivery was taken; vigild's acknowledgement did not reach the broker)"))
            return
        }
        var seq: UInt64?
        if let journal = intake?.journal {
            seq = try? journal.append(topic: message.topic, payload: message.payload, mid: message.mid,
                                      receivedAt: message.receivedAt, hash: hash)
        }
        enqueue(Job(pipeline: p, device: device, topic: message.topic,
                    payload: message.payload, receivedAt: message.receivedAt, hash: hash, seq: seq, mode: .live))
    }

    /// Replays what the journal held at start, oldest first, before any new frame: entries
    /// whose rows were committed as history (state only), the others as frames.
    public func replay(_ recovery: IntakeJournal.Recovery) {
        recovery.replay { e in
            intake?.redeliveries.remember(mid: e.mid, hash: e.hash)
            guard let p = route(e.topic), e.payload.count <= limits.maxPayloadBytes else {
                // The config changed since: no pipeline takes it now. Counted like a live message, and retired.
                if !e.retired {
                    counters.frameRejected("-", .unrouted)
                    intake?.retire(e.seq)
                }
                return
            }
            let pipeline = pipelines[p]
            if !e.retired { counters.frameReceived(pipeline.name) }
            enqueue(Job(pipeline: p, device: pipeline.settings.topic.device(in: e.topic), topic: e.topic, payload: e.payload,
                        receivedAt: e.receivedAt, hash: e.hash, seq: e.seq, mode: e.retired ? .history : .replay))
        }
    }

    private func enqueue(_ job: Job) {
        let lane = lanes[Engine.laneIndex(pipeline: pipelines[job.pipeline].name, device: job.device, lanes: lanes.count)]
        if lane.push(job) {
            let name = pipelines[job.pipeline].name
            counters.metrics.add(MetricName.intakeWaits)
            log.limited(.warning, key: "wait-\(name)",
                        "pipeline \(name): falling behind; reading from the broker waits until its queue has room (queue_depth \(limits.queueDepth), max_queue_bytes \(limits.maxQueueBytes)); the broker keeps the frames")
        }
    }

    static func laneIndex(pipeline: String, device: String, lanes: Int) -> Int {
        // FNV-1a: stable across runs, unlike Hasher.
        var h: UInt64 = 0xcbf29ce484222325
        for b in pipeline.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        h = (h ^ 0x2F) &* 0x100000001b3
        for b in device.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return Int(h % UInt64(lanes))
    }

    func reject(_ pipeline: String, _ topic: String, _ e: FrameError) {
        counters.frameRejected(pipeline, e.reason)
        log.limited(.warning, key: "reject-\(pipeline)-\(e.reason.rawValue)", "pipeline \(pipeline), topic \(Logger.clip(topic)): rejected (\(e.reason.rawValue)): \(e.message)")
    }

    /// Runs on a lane's thread: decodes the jobs and turns them into model inputs in order,
    /// runs each pipeline's inputs together (`Pipeline.detect(batch:)`: one model run for
    /// many when the model allows), then hands the detections on in the jobs' order, so
    /// each device's detections stay in order. A frame any of whose inputs failed is
    /// rejected; the detections of its inputs that succeeded are kept.
    ///
    /// A frame whose adapter hands its inputs out in runs (a long audio chunk:
    /// `StreamAdapter.hasMoreInputs`) ends a batch: the inputs gathered so far run, then the
    /// rest of that frame's, run by run, then the jobs after it. So one payload's inputs
    /// never sit in memory all at once, and the order still holds.
    func process(_ jobs: [Job], streams: inout StreamTable, lane: Lane? = nil) {
        var from = 0
        while from < jobs.count { from = process(jobs, from: from, streams: &streams, lane: lane) }
    }

    /// Processes `jobs[from...]` up to the first one with more inputs to give, and all of
    /// that one's inputs; returns the index of the next job to process.
    private func process(_ jobs: [Job], from: Int, streams: inout StreamTable, lane: Lane?) -> Int {
        var inputs: [[(input: ModelInput, device: String)]] = Array(repeating: [], count: pipelines.count)
        var firstInput = [Int](repeating: 0, count: jobs.count)
        var inputCount = [Int](repeating: 0, count: jobs.count)
        var failed = [FrameError?](repeating: nil, count: jobs.count)
        var end = jobs.count
        var long: (any StreamAdapter)?
        var adapters = [(any StreamAdapter)?](repeating: nil, count: jobs.count)
        // Devices in this batch whose next frame must wait for this one's verdict (a camera's
        // state reads it): their next job ends the batch and starts the next one.
        var awaitingVerdict = Set<StreamTable.Key>()
        for j in from..<jobs.count {
            let job = jobs[j]
            let pipeline = pipelines[job.pipeline]
            let key = StreamTable.Key(pipeline: job.pipeline, device: job.device)
            if awaitingVerdict.contains(key) {
                end = j
                break
            }
            do throws(FrameError) {
                let frame = try pipeline.decoder.decode(job.payload, receivedAt: job.receivedAt)
                evidence?.keep(frame, pipeline: pipeline.name, device: job.device)
                let adapter = streams.adapter(pipeline: job.pipeline, device: job.device) { pipeline.makeAdapter(device: job.device) }
                adapters[j] = adapter
                if adapter.verdictShapesNextInput { awaitingVerdict.insert(key) }
                var made = try adapter.inputs(for: frame)
                Engine.identify(&made, of: job, from: 0)
                firstInput[j] = inputs[job.pipeline].count
                inputCount[j] = made.count
                inputs[job.pipeline] += made.map { ($0, job.device) }
                if adapter.hasMoreInputs {
                    long = adapter
                    end = j + 1
                    break
                }
            } catch {
                failed[j] = error
            }
        }
        let results = inputs.enumerated().map { p, items in items.isEmpty ? [] : pipelines[p].detect(batch: items) }
        func hand(_ result: Result<Detection, FrameError>, _ j: Int, _ error: inout FrameError?) {
            let job = jobs[j]
            switch result {
            case .success(var detection):
                adapters[j]?.observe(&detection)   // per-device state that learns from scores (anomaly budget)
                // History: its rows were committed before the restart; only the rules' state is rebuilt.
                if job.mode == .history { intake?.history(detection); return }
                sink(detection)
                counters.detectionMade(pipeline: pipelines[job.pipeline].name, seconds: Date().timeIntervalSince1970 - job.receivedAt)
            case .failure(let e):
                error = error ?? e
            }
        }
        func finish(_ job: Job, _ error: FrameError?) {
            guard job.mode != .history else { return }
            let name = pipelines[job.pipeline].name
            if let error { reject(name, job.topic, error) } else { counters.frameProcessed(name) }
            // After its rows went to the store: the mark commits with them (or after them).
            if let seq = job.seq { intake?.retire(seq) }
            lane?.frameBegins()   // the next frame's turn: liveness measures each frame from here
        }
        for j in from..<end {
            let job = jobs[j]
            var error = failed[j]
            for result in results[job.pipeline][firstInput[j]..<firstInput[j] + inputCount[j]] { hand(result, j, &error) }
            if let long, j == end - 1 {
                // The rest of this frame's inputs, one bounded run at a time.
                var index = inputCount[j]
                while long.hasMoreInputs {
                    var more = long.moreInputs()
                    if more.isEmpty { break }
                    Engine.identify(&more, of: job, from: index)
                    index += more.count
                    for result in pipelines[job.pipeline].detect(batch: more.map { ($0, job.device) }) { hand(result, j, &error) }
                }
            }
            finish(job, error)
        }
        return end
    }

    /// Row identity (docs/storage.md, "Row identity"): the frame, its arrival, and each
    /// window's place in the frame, so processing the frame again gives the same uuids.
    static func identify(_ inputs: inout [ModelInput], of job: Job, from first: Int) {
        let base = FrameHash.combine(job.hash, job.receivedAt.bitPattern)
        for i in inputs.indices { inputs[i].identity = FrameHash.combine(base, UInt64(first + i)) | 1 }
    }

    /// Blocks until every queued frame has been processed.
    public func drain() { for lane in lanes { lane.waitIdle() } }

    /// Drains, then stops the lanes' threads.
    public func stop() {
        drain()
        for lane in lanes { lane.stop() }
    }

    public var queuedFrames: Int { lanes.reduce(0) { $0 + $1.count } }
    /// When each busy lane began the frame it works on (monotonic seconds): liveness counts a
    /// lane on a frame younger than `limits.frameAllowance` as progress (Service/Health.swift).
    public var busySince: [Double] { lanes.compactMap(\.workingSince) }
    public var queuedBytes: Int { lanes.reduce(0) { $0 + $1.bytes } }
    /// Devices whose stream state is held (previous frame, audio buffer, sensor window).
    public var liveStreams: Int { lanes.reduce(0) { $0 + $1.streams } }
}

struct Job: Sendable {
    enum Mode: Sendable {
        /// A frame from the broker.
        case live
        /// A journaled frame whose rows were not committed before the restart.
        case replay
        /// A journaled frame whose rows were committed: rebuilds stream and rule state only.
        case history
    }
    let pipeline: Int
    let device: String
    let topic: String
    let payload: [UInt8]
    let receivedAt: Double
    /// `FrameHash.frame(topic:payload:)`: the frame's identity in row uuids.
    var hash: UInt64 = 0
    /// The journal's sequence number (nil without a journal, or when it could not be written).
    var seq: UInt64? = nil
    var mode: Mode = .live
}

/// What the engine needs of the durable intake (Intake/). Without it (tests, `durability:
/// "none"`) frames are not journaled and nothing is retired.
public struct IntakeHooks: Sendable {
    public var journal: IntakeJournal?
    public var redeliveries: RedeliveryFilter
    /// A journaled frame's rows (or its rejection) were handed to the store: commit its mark with them.
    public var retire: @Sendable (UInt64) -> Void
    /// Detections of replayed history: they rebuild the rules' state; nothing is stored or raised.
    public var history: @Sendable (Detection) -> Void

    public init(journal: IntakeJournal?, redeliveries: RedeliveryFilter, retire: @escaping @Sendable (UInt64) -> Void,
                history: @escaping @Sendable (Detection) -> Void) {
        self.journal = journal; self.redeliveries = redeliveries; self.retire = retire; self.history = history
    }
}

/// Monotonic seconds, immune to wall-clock steps.
@inline(__always) public func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// The stream state of the devices one lane serves; entries silent for `ttl` are freed.
/// Owned by the lane's thread.
struct StreamTable {
    struct Key: Hashable { let pipeline: Int; let device: String }
    struct Entry { let adapter: any StreamAdapter; var lastSeen: Double }
    private(set) var entries: [Key: Entry] = [:]
    let ttl: Double

    init(ttl: Double) { self.ttl = ttl }

    mutating func adapter(pipeline: Int, device: String, now: Double = monotonicSeconds(),
                          make: () -> any StreamAdapter) -> any StreamAdapter {
        let key = Key(pipeline: pipeline, device: device)
        if let e = entries[key] {
            entries[key]!.lastSeen = now
            return e.adapter
        }
        let a = make()
        entries[key] = Entry(adapter: a, lastSeen: now)
        return a
    }

    /// Frees the state of devices silent for longer than `ttl` (each adapter retired first);
    /// returns their keys.
    @discardableResult
    mutating func sweep(now: Double = monotonicSeconds()) -> [Key] {
        let expired = entries.filter { now - $0.value.lastSeen > ttl }.map(\.key)
        for k in expired { entries[k]?.adapter.retire(); entries[k] = nil }
        return expired
    }

    /// Retires every adapter (the lane stops).
    func retireAll() { for e in entries.values { e.adapter.retire() } }

    var count: Int { entries.count }
}

/// One pipeline's waiting jobs on one lane, oldest first; both ends are O(1), so dropping
/// the oldest under overload costs no more than taking the next.
struct JobQueue {
    // Taken slots are set to nil at once, so a dropped or finished payload is freed now,
    // not when the array is next compacted.
    private var slots: [Job?] = []
    private var head = 0

    var count: Int { slots.count - head }

    mutating func append(_ job: Job) { slots.append(job) }

    mutating func popFirst() -> Job? {
        guard head < slots.count else { return nil }
        let job = slots[head]
        slots[head] = nil
        head += 1
        if head == slots.count {
            slots.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= slots.count {
            slots.removeFirst(head)
            head = 0
        }
        return job
    }
}

/// One worker thread and its bounded queues, one per pipeline.
///
/// The worker takes up to `batchSize` jobs per lock, round-robin over the pipelines (and
/// each pipeline's share of them goes through its model together: `Engine.process`), and
/// the MQTT thread signals it only when it sleeps: under load a frame costs no futex call
/// or context switch of its own (`perf` put those at about a quarter of vigild's CPU at
/// 4,000 readings/s; at that rate the worker sleeps between frames anyway, so the saving
/// shows only under heavier load).
/// Round-robin also means a flooding pipeline cannot delay another's frames behind its
/// whole queue; each pipeline's own jobs, and so each device's, stay in order.
final class Lane: @unchecked Sendable {
    // @unchecked Sendable: `queues`, `waitingJobs`, `queuedBytes`, `busy`, `asleep`,
    // `idleWaiters`, `pushWaiters`, `stopping` and `liveStreams` are guarded by `cond`.
    static let batchSize = 32
    let index: Int
    let depth: Int
    let maxBytes: Int
    let ttl: Double
    private let cond = NSCondition()
    private var queues: [JobQueue]
    private var nextQueue = 0
    private var waitingJobs = 0
    private var queuedBytes = 0
    private var busy = false
    private var asleep = false
    private var idleWaiters = 0
    private var pushWaiters = 0
    private var stopping = false
    private var liveStreams = 0
    private var exited = false
    private var thread: Thread?
    /// Uptime nanoseconds at which the frame being worked on began; 0 while idle. An atomic, not
    /// `cond`: it is set once per frame, and the MQTT thread pushes under `cond`.
    private let frameStarted = Atomic<UInt64>(0)

    init(index: Int, pipelines: Int, depth: Int, maxBytes: Int, ttl: Double) {
        self.index = index; self.depth = depth; self.maxBytes = maxBytes; self.ttl = ttl
        queues = Array(repeating: JobQueue(), count: max(1, pipelines))
    }

    func start(engine: Engine) {
        let name = "vigil-worker-\(index)"
        let t = Thread { [self] in
            // Named from inside: on Linux a name set before start() does not reach the OS
            // thread, and `top -H` / crash reports should show which lane is busy.
            Thread.current.name = name
            run(engine)
        }
        t.name = name
        t.start()
        thread = t
    }

    var count: Int { cond.withLock { waitingJobs } }
    var bytes: Int { cond.withLock { queuedBytes } }
    var streams: Int { cond.withLock { liveStreams } }

    var workingSince: Double? {
        let n = frameStarted.load(ordering: .relaxed)
        return n == 0 ? nil : Double(n) / 1e9
    }

    func frameBegins() { frameStarted.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed) }

    /// Enqueues, first waiting while the pipeline's queue is full (by count, or by bytes
    /// while anything is queued, so one payload larger than the budget still goes through).
    /// Returns whether it had to wait. Only the MQTT thread (and replay, before it starts)
    /// pushes, so a wait holds back reading from the broker, never a worker.
    func push(_ job: Job) -> Bool {
        cond.lock()
        defer { cond.unlock() }
        var waited = false
        while !stopping && (queues[job.pipeline].count >= depth || (waitingJobs > 0 && queuedBytes + job.payload.count > maxBytes)) {
            waited = true
            pushWaiters += 1
            if asleep { cond.broadcast() }
            cond.wait()
            pushWaiters -= 1
        }
        queues[job.pipeline].append(job)
        queuedBytes += job.payload.count
        waitingJobs += 1
        if asleep { cond.broadcast() }
        return waited
    }

    /// Up to `batchSize` jobs, one pipeline after another. Called with `cond` held.
    private func takeBatch() -> [Job] {
        var batch: [Job] = []
        batch.reserveCapacity(min(Lane.batchSize, waitingJobs))
        var emptyInARow = 0
        while batch.count < Lane.batchSize && waitingJobs > 0 && emptyInARow < queues.count {
            if let job = queues[nextQueue].popFirst() {
                batch.append(job)
                queuedBytes -= job.payload.count
                waitingJobs -= 1
                emptyInARow = 0
            } else {
                emptyInARow += 1
            }
            nextQueue = (nextQueue + 1) % queues.count
        }
        return batch
    }

    private func run(_ engine: Engine) {
        var streams = StreamTable(ttl: ttl)
        // Sweep often enough that state outlives its ttl by at most half of it.
        let sweepEvery = max(0.05, min(ttl / 2, 60))
        var lastSweep = monotonicSeconds()
        cond.lock()
        while true {
            busy = false
            liveStreams = streams.count
            if idleWaiters > 0 && waitingJobs == 0 { cond.broadcast() }
            asleep = true
            while waitingJobs == 0 && !stopping {
                if streams.count == 0 {
                    cond.wait()
                } else if !cond.wait(until: Date(timeIntervalSinceNow: sweepEvery)) {
                    break  // timed out: sweep below
                }
            }
            asleep = false
            if waitingJobs == 0 && stopping {
                cond.unlock()
                streams.retireAll()   // adapters hand over state that must outlive them (anomaly baselines)
                cond.withLock { exited = true; cond.broadcast() }
                return
            }
            let batch = takeBatch()
            busy = !batch.isEmpty
            if pushWaiters > 0 && !batch.isEmpty { cond.broadcast() }   // room again for a waiting submit
            cond.unlock()

            if !batch.isEmpty { frameBegins() }
            engine.process(batch, streams: &streams, lane: self)
            frameStarted.store(0, ordering: .relaxed)
            let now = monotonicSeconds()
            if now - lastSweep >= sweepEvery {
                lastSweep = now
                for k in streams.sweep(now: now) {
                    log.debug("pipeline \(engine.pipelines[k.pipeline].name), device \(Logger.clip(k.device)): silent for over \(ttl) s; stream state freed")
                }
            }
            cond.lock()
        }
    }

    func waitIdle() {
        cond.lock()
        idleWaiters += 1
        while waitingJobs > 0 || busy { cond.wait() }
        idleWaiters -= 1
        cond.unlock()
    }

    /// Stops the thread and waits until it has retired its adapters.
    func stop() {
        cond.lock()
        stopping = true
        cond.broadcast()
        while thread != nil && !exited { cond.wait() }
        cond.unlock()
    }
}
