import Foundation
import MQTT

/// Routes messages to pipelines and runs them on a fixed pool of worker lanes.
///
/// A device always maps to the same lane, so its frames are processed in order and its
/// stream state is touched by one thread only. Each lane holds at most `queueDepth`
/// frames per pipeline; when a pipeline falls behind, its oldest waiting frames are
/// dropped and counted, so memory stays bounded under any load. The MQTT thread only
/// routes and enqueues.
public final class Engine: @unchecked Sendable {
    // @unchecked Sendable: lanes synchronise their own queues; the rest is immutable.
    public let pipelines: [Pipeline]
    let counters: Counters
    let limits: LimitSettings
    let sink: @Sendable (Detection) -> Void
    private let lanes: [Lane]

    public init(pipelines: [Pipeline], limits: LimitSettings, counters: Counters,
                sink: @escaping @Sendable (Detection) -> Void) {
        self.pipelines = pipelines
        self.limits = limits
        self.counters = counters
        self.sink = sink
        lanes = (0..<limits.workers).map { Lane(index: $0, depth: limits.queueDepth) }
        for lane in lanes { lane.start(engine: self) }
    }

    /// The pipeline that owns a topic: the first whose pattern matches.
    public func route(_ topic: String) -> Int? {
        pipelines.firstIndex { $0.settings.topic.matches(topic) }
    }

    /// Called on the MQTT thread: cheap checks, then hand off.
    public func submit(_ message: MQTTMessage) {
        guard let p = route(message.topic) else {
            counters.frameRejected("-", .unrouted)
            log.limited(.warning, key: "unrouted", "topic \(message.topic): no pipeline owns this topic; message ignored")
            return
        }
        let pipeline = pipelines[p]
        counters.frameReceived(pipeline.name)
        guard message.payload.count <= limits.maxPayloadBytes else {
            reject(pipeline.name, message.topic, FrameError(.tooLarge,
                   "payload of \(message.payload.count) bytes is over limits.max_payload_bytes (\(limits.maxPayloadBytes))"))
            return
        }
        let device = pipeline.settings.topic.device(in: message.topic)
        let job = Job(pipeline: p, device: device, topic: message.topic, payload: message.payload, receivedAt: message.receivedAt)
        let lane = lanes[Engine.laneIndex(pipeline: pipeline.name, device: device, lanes: lanes.count)]
        if lane.push(job) {
            counters.framesDropped(pipeline.name)
            log.limited(.warning, key: "drop-\(pipeline.name)",
                        "pipeline \(pipeline.name): falling behind, dropped the oldest waiting frame (queue_depth \(limits.queueDepth))")
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
        log.limited(.warning, key: "reject-\(pipeline)-\(e.reason.rawValue)", "pipeline \(pipeline), topic \(topic): rejected (\(e.reason.rawValue)): \(e.message)")
    }

    /// Runs on a lane's thread.
    func process(_ job: Job, adapters: inout [String: any StreamAdapter]) {
        let pipeline = pipelines[job.pipeline]
        do throws(FrameError) {
            let frame = try pipeline.decoder.decode(job.payload, receivedAt: job.receivedAt)
            let key = pipeline.name + "\u{0}" + job.device
            let adapter: any StreamAdapter
            if let a = adapters[key] {
                adapter = a
            } else {
                adapter = pipeline.makeAdapter()
                adapters[key] = adapter
            }
            for input in try adapter.inputs(for: frame) {
                do {
                    sink(try pipeline.detect(input, device: job.device))
                } catch let e as FrameError {
                    throw e
                } catch {
                    throw FrameError(.inferenceFailed, "model \(pipeline.model.name): \(error)")
                }
            }
            counters.frameProcessed(pipeline.name)
        } catch {
            reject(pipeline.name, job.topic, error)
        }
    }

    /// Blocks until every queued frame has been processed.
    public func drain() { for lane in lanes { lane.waitIdle() } }

    /// Drains, then stops the lanes' threads.
    public func stop() {
        drain()
        for lane in lanes { lane.stop() }
    }

    public var queuedFrames: Int { lanes.reduce(0) { $0 + $1.count } }
}

struct Job: Sendable {
    let pipeline: Int
    let device: String
    let topic: String
    let payload: [UInt8]
    let receivedAt: Double
}

/// One worker thread and its bounded queue.
final class Lane: @unchecked Sendable {
    // @unchecked Sendable: `jobs`, `perPipeline`, `busy` and `stopping` are guarded by `cond`.
    let index: Int
    let depth: Int
    private let cond = NSCondition()
    private var jobs: [Job] = []
    private var head = 0
    private var perPipeline: [Int: Int] = [:]
    private var busy = false
    private var stopping = false
    private var thread: Thread?

    init(index: Int, depth: Int) { self.index = index; self.depth = depth }

    func start(engine: Engine) {
        let t = Thread { [self] in run(engine) }
        t.name = "vigil-worker-\(index)"
        t.start()
        thread = t
    }

    var count: Int { cond.withLock { jobs.count - head } }

    /// Enqueues; returns true when the pipeline's oldest waiting job was dropped to make room.
    func push(_ job: Job) -> Bool {
        cond.lock()
        defer { cond.signal(); cond.unlock() }
        var dropped = false
        if perPipeline[job.pipeline, default: 0] >= depth,
           let i = jobs[head...].firstIndex(where: { $0.pipeline == job.pipeline }) {
            jobs.remove(at: i)
            perPipeline[job.pipeline, default: 1] -= 1
            dropped = true
        }
        jobs.append(job)
        perPipeline[job.pipeline, default: 0] += 1
        return dropped
    }

    private func run(_ engine: Engine) {
        var adapters: [String: any StreamAdapter] = [:]
        while true {
            cond.lock()
            while head == jobs.count && !stopping { cond.wait() }
            if head == jobs.count && stopping { cond.unlock(); return }
            let job = jobs[head]
            head += 1
            perPipeline[job.pipeline, default: 1] -= 1
            if head > 1024 && head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            busy = true
            cond.unlock()

            engine.process(job, adapters: &adapters)

            cond.lock()
            busy = false
            cond.broadcast()
            cond.unlock()
        }
    }

    func waitIdle() {
        cond.lock()
        while head < jobs.count || busy { cond.wait() }
        cond.unlock()
    }

    func stop() {
        cond.lock()
        stopping = true
        cond.broadcast()
        cond.unlock()
    }
}
