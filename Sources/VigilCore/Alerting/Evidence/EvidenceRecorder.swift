import Foundation

/// One device's recent input, oldest first, bounded by time (the evidence window before and
/// after a trigger) and by bytes. Frames are kept as decoded (`TimedFrame` holds the decoder's
/// array, so keeping it costs a reference, not a copy). Guarded by the recorder's lock.
final class EvidenceRing {
    private var frames: [TimedFrame?] = []
    private var head = 0
    private(set) var bytes = 0
    let keepSeconds: Double
    let maxBytes: Int
    /// Kept beyond the window: a lane decodes a batch of frames (up to 32) before their detections
    /// raise anything, so the frames after a trigger may be in the ring before its alert is.
    static let slackSeconds = 2.0
    /// Bounds the count too: readings are small, and a fast sensor must not make the ring a long list.
    static let maxFrames = 4096
    var lastPush: Double

    init(settings: EvidenceSettings, now: Double) {
        keepSeconds = settings.beforeSeconds + settings.afterSeconds + EvidenceRing.slackSeconds
        maxBytes = settings.maxKB << 10
        lastPush = now
    }

    var count: Int { frames.count - head }
    var newestTs: Double? { frames.last??.ts }

    /// The stream clock of an audio device: the time of the last sample kept.
    private var audioEnd: Double?

    /// `hold`: the start of the earliest window a capture of this device waits on. Time alone
    /// never drops a frame from there on (bytes and count still do): after a restart, the
    /// first live frame comes long after the journal's frames that a capture needs.
    func push(_ frame: TimedFrame, now: Double, hold: Double = .infinity) {
        var f = frame
        if case .audio = f.frame {
            // The audio adapter's clock (Adapters/AudioAdapter.swift): contiguous chunks advance it by
            // their duration, so a burst of chunks gets the times its windows' detections carry.
            let seconds = EvidenceRing.duration(f.frame)
            if let end = audioEnd, f.ts - seconds - end <= EvidenceRing.audioGap { f.ts = end + seconds }
            audioEnd = f.ts
        }
        frames.append(f)
        bytes += EvidenceRing.size(f.frame)
        lastPush = now
        // The newest frame always stays: it may be the trigger.
        while count > 1, let oldest = frames[head],
              bytes > maxBytes || count > EvidenceRing.maxFrames || (f.ts - oldest.ts > keepSeconds && oldest.ts < hold) {
            bytes -= EvidenceRing.size(oldest.frame)
            frames[head] = nil
            head += 1
        }
        if head >= 64 && head * 2 >= frames.count {
            frames.removeFirst(head)
            head = 0
        }
    }

    /// The frames whose time overlaps [from, to], oldest first (an audio chunk spans the
    /// time of its samples, ending at its `ts`).
    func window(from: Double, to: Double) -> [TimedFrame] {
        var out: [TimedFrame] = []
        for case let f? in frames[head...] {
            let start = f.ts - EvidenceRing.duration(f.frame)
            if f.ts >= from && start <= to { out.append(f) }
        }
        return out
    }

    /// A chunk starting later than this after the last one's end starts the clock afresh.
    static let audioGap = 0.25

    static func duration(_ f: Frame) -> Double {
        if case .audio(let rate, let samples) = f, rate > 0 { return Double(samples.count) / Double(rate) }
        return 0
    }

    static func size(_ f: Frame) -> Int {
        switch f {
        case .image(_, _, let p): return p.count + 64
        case .audio(_, let s): return s.count * 4 + 64
        case .readings(let r): return r.count * 5 + 64
        case .vector(let v): return v.count * 4 + 64
        }
    }
}

/// What a raised alert keeps: its event and the input around it, ready to be encoded.
public struct EvidenceCapture: Sendable {
    public var alert: AlertEvent
    public var kind: PipelineSettings.Kind
    /// The pipeline's `fields` (readings), for the CSV header.
    public var fields: [String]
    public var frames: [TimedFrame]
    public var beforeSeconds: Double
    public var afterSeconds: Double

    public init(alert: AlertEvent, kind: PipelineSettings.Kind, fields: [String], frames: [TimedFrame],
                beforeSeconds: Double, afterSeconds: Double) {
        self.alert = alert; self.kind = kind; self.fields = fields; self.frames = frames
        self.beforeSeconds = beforeSeconds; self.afterSeconds = afterSeconds
    }
}

/// Keeps each device's ring of recent input and turns raised alerts into captures.
///
/// `keep` is called by the engine for every decoded frame of a pipeline with evidence (on the
/// device's lane); `alertRaised` by the alert center on that same lane. A capture waits until
/// the input `after_s` past the trigger has arrived (or, if the device goes quiet, until
/// `after_s` plus `grace` of wall time has passed), then goes to `deliver`, which writes it on
/// its own queue: nothing here encodes, writes or waits, so inference and the alert's
/// actions are never delayed by it.
///
/// After a restart (a SIGKILL while a capture waited for its `after_s`): the alerts committed
/// without evidence are named by `expectFromJournal`; the journal's frames, replayed as
/// history, fill the rings again, and the rules raise those alerts again with the same uuids
/// (`alertReplayed`), so their captures are taken from the frames that raised them.
public final class EvidenceRecorder: @unchecked Sendable {
    // @unchecked Sendable: `rings`, `pending`, `expected`, `lastPrune`, `totalBytes` and `shed` are guarded by `lock`; the rest is immutable.
    struct Pipeline { let settings: EvidenceSettings; let kind: PipelineSettings.Kind; let fields: [String] }
    struct Pending { let alert: AlertEvent; let key: String; let from: Double; let due: Double; let deadline: Double }

    let pipelines: [String: Pipeline]
    let deliver: @Sendable (EvidenceCapture) -> Void
    let ttl: Double
    /// How long past `after_s` a capture waits for a quiet device before it is written with what there is.
    let grace: Double
    private let lock = NSLock()
    private var rings: [String: EvidenceRing] = [:]
    private var pending = PendingCaptures()
    /// When the overdue timer fires next (monotonic seconds); nil when none is scheduled.
    private var timerDue: Double?
    private var lastPrune = monotonicSeconds()
    /// Bytes all rings hold, and the most they may: a flood of device names must not make the
    /// rings (full-size frames, unlike the adapters' resized state) grow with the device count.
    private var totalBytes = 0
    let maxTotalBytes: Int
    private var shed = 0
    /// Alerts committed without evidence at start, whose captures the journal's history gives.
    private var expected: Set<String> = []
    private let timerQueue = DispatchQueue(label: "vigil.evidence.timer")

    /// `pipelines`: those with evidence on; the others are never kept.
    public init(pipelines: [PipelineSettings], deviceTTL: Double, grace: Double = 2, maxTotalBytes: Int = 64 << 20,
                deliver: @escaping @Sendable (EvidenceCapture) -> Void) {
        self.maxTotalBytes = maxTotalBytes
        var p: [String: Pipeline] = [:]
        for s in pipelines where s.evidenceSettings.enabled {
            p[s.name] = Pipeline(settings: s.evidenceSettings, kind: s.kind, fields: s.fields)
        }
        self.pipelines = p
        self.deliver = deliver
        self.ttl = deviceTTL
        self.grace = grace
    }

    public func keeps(pipeline: String) -> Bool { pipelines[pipeline] != nil }

    /// A decoded frame of `pipeline` and `device` (on its lane).
    public func keep(_ frame: TimedFrame, pipeline: String, device: String) {
        guard let p = pipelines[pipeline] else { return }
        let key = pipeline + "\u{0}" + device
        let now = monotonicSeconds()
        let ready: [EvidenceCapture] = lock.withLock {
            let ring: EvidenceRing
            if let r = rings[key] {
                ring = r
            } else {
                ring = EvidenceRing(settings: p.settings, now: now)
                rings[key] = ring
                pruneLocked(now: now)
            }
            let before = ring.bytes
            ring.push(frame, now: now, hold: pending.hold(for: key))
            totalBytes += ring.bytes - before
            if totalBytes > maxTotalBytes { shedLocked(keeping: key) }
            guard !pending.isEmpty, let newest = ring.newestTs else { return [] }
            // The ring's time, not the frame's: audio runs on its stream clock.
            return takeLocked(key: key) { newest >= $0.due }
        }
        for c in ready { deliver(c) }
    }

    /// A raised alert (on its device's lane): its capture is taken once the input after it is in.
    public func alertRaised(_ e: AlertEvent) { capture(e, replayed: false) }

    /// The alerts committed without evidence when vigild starts (`EvidenceStore.raisedWithoutEvidence`):
    /// those a kill caught while their capture waited. Called before the journal is replayed.
    public func expectFromJournal(_ uuids: Set<String>) { lock.withLock { expected = uuids } }

    /// An alert the rules raised again while the journal's history was replayed (on its lane):
    /// its row was committed before the restart. Captured only when it is expected (it has no
    /// evidence, and none was dropped for it), and at most once.
    public func alertReplayed(_ e: AlertEvent) { capture(e, replayed: true) }

    private func capture(_ e: AlertEvent, replayed: Bool) {
        guard e.state == .raised, let p = pipelines[e.pipeline] else { return }
        let key = e.pipeline + "\u{0}" + e.device
        let wait = p.settings.afterSeconds + grace
        let now = monotonicSeconds()
        let (ready, timer): ([EvidenceCapture], Double?) = lock.withLock {
            guard !replayed || expected.remove(e.uuid) != nil else { return ([], nil) }
            guard !pending.contains(uuid: e.uuid) else { return ([], nil) }
            pending.add(Pending(alert: e, key: key, from: e.ts - p.settings.beforeSeconds, due: e.ts + p.settings.afterSeconds,
                                deadline: now + wait))
            // Nothing to wait for (after_s 0, or the frames after it were already decoded in the same batch).
            let newest = rings[key]?.newestTs ?? -.infinity
            let ready = takeLocked(key: key) { $0.alert.uuid == e.uuid && newest >= $0.due }
            return (ready, ready.isEmpty ? scheduleLocked(at: now + wait + 0.05, now: now) : nil)
        }
        for c in ready { deliver(c) }
        if let at = timer { armTimer(at: at, now: now) }
    }

    /// One timer for all waiting captures, not one per alert: an alert storm across many
    /// devices scheduled thousands, each scanning every waiting capture under the lock. Returns
    /// when to fire if a new timer is needed (none is due by then already).
    private func scheduleLocked(at: Double, now: Double) -> Double? {
        if let due = timerDue, due <= at { return nil }
        timerDue = at
        return at
    }

    private func armTimer(at: Double, now: Double) {
        timerQueue.asyncAfter(deadline: .now() + max(0, at - now)) { [weak self] in self?.finishOverdue() }
    }

    /// Captures whose device went quiet are taken with what the ring holds.
    func finishOverdue() {
        let now = monotonicSeconds()
        let (ready, next): ([EvidenceCapture], Double?) = lock.withLock {
            defer { pruneLocked(now: now) }
            timerDue = nil
            let ready = takeLocked(key: nil) { $0.deadline <= now }
            // The next firing at the earliest deadline left, but at most 4 a second (a capture
            // a quarter second late costs nothing; a firing per alert scans them all each time).
            guard let earliest = pending.earliestDeadline else { return (ready, nil) }
            return (ready, scheduleLocked(at: max(earliest, now + 0.25), now: now))
        }
        for c in ready { deliver(c) }
        if let at = next { armTimer(at: at, now: now) }
    }

    /// Takes every capture waiting still, whatever came after it (shutdown).
    public func finishAll() {
        let ready = lock.withLock { takeLocked(key: nil) { _ in true } }
        for c in ready { deliver(c) }
    }

    public var pendingCount: Int { lock.withLock { pending.count } }
    /// Devices whose ring is held, and the bytes the rings hold (/metrics).
    public var ringStats: (devices: Int, bytes: Int) { lock.withLock { (rings.count, totalBytes) } }

    /// Takes the waiting captures `which` picks, of the device `key` only (lanes) or of every
    /// device (nil: the timer, shutdown).
    private func takeLocked(key: String?, _ which: (Pending) -> Bool) -> [EvidenceCapture] {
        pending.take(key: key, which).compactMap { w in
            guard let p = pipelines[w.alert.pipeline] else { return nil }
            let frames = rings[w.key]?.window(from: w.from, to: w.due) ?? []
            return EvidenceCapture(alert: w.alert, kind: p.kind, fields: p.fields, frames: frames,
                                   beforeSeconds: p.settings.beforeSeconds, afterSeconds: p.settings.afterSeconds)
        }
    }

    /// Over the total budget: the rings of the devices heard from least recently go (not the one
    /// just pushed, nor one an alert waits on); their devices' next alerts have less before them.
    private func shedLocked(keeping key: String) {
        let waiting = pending.keys
        var dropped = 0
        while totalBytes > maxTotalBytes,
              let victim = rings.filter({ $0.key != key && !waiting.contains($0.key) }).min(by: { $0.value.lastPush < $1.value.lastPush }) {
            totalBytes -= victim.value.bytes
            rings[victim.key] = nil
            dropped += 1
        }
        shed += dropped
        if dropped > 0 {
            log.limited(.warning, key: "evidence-rings", "evidence: the rings of recent input reached \(maxTotalBytes >> 20) MB across \(rings.count + dropped) devices; freed those of the \(dropped) heard from least recently (\(shed) so far)")
        }
    }

    /// Rings of devices silent for the device TTL are freed (checked at most once a minute, when a ring is made).
    private func pruneLocked(now: Double) {
        guard now - lastPrune >= min(60, ttl / 2) else { return }
        lastPrune = now
        let waiting = pending.keys
        for (k, r) in rings where now - r.lastPush > ttl && !waiting.contains(k) {
            totalBytes -= r.bytes
            rings[k] = nil
        }
    }
}

/// The captures waiting for their `after_s`, by device, with their uuids. A lane's frame and a
/// raised alert touch only their own device's list: with one list for all devices, an alert on
/// every frame of many devices (the five-SIGKILL resilience test: 1,000 alerts/s, some 3,000
/// waiting) made every frame scan them all, and vigild fell behind its 1,000 frames/s.
struct PendingCaptures {
    private var byKey: [String: [EvidenceRecorder.Pending]] = [:]
    private var uuids: Set<String> = []

    var count: Int { uuids.count }
    var isEmpty: Bool { uuids.isEmpty }
    var keys: Set<String> { Set(byKey.keys) }
    var earliestDeadline: Double? { byKey.values.lazy.flatMap { $0 }.map(\.deadline).min() }

    func contains(uuid: String) -> Bool { uuids.contains(uuid) }

    /// The start of the earliest window a capture of `key` waits on (the ring keeps frames from there).
    func hold(for key: String) -> Double { byKey[key]?.lazy.map(\.from).min() ?? .infinity }

    mutating func add(_ p: EvidenceRecorder.Pending) {
        byKey[p.key, default: []].append(p)
        uuids.insert(p.alert.uuid)
    }

    /// Removes and returns, oldest first, the captures of `key` (nil: of every device) that `which` picks.
    mutating func take(key: String?, _ which: (EvidenceRecorder.Pending) -> Bool) -> [EvidenceRecorder.Pending] {
        guard !uuids.isEmpty else { return [] }
        var out: [EvidenceRecorder.Pending] = []
        for k in key.map({ [$0] }) ?? Array(byKey.keys) {
            guard var list = byKey[k] else { continue }
            list.removeAll { w in
                guard which(w) else { return false }
                out.append(w)
                return true
            }
            byKey[k] = list.isEmpty ? nil : list
        }
        for w in out { uuids.remove(w.alert.uuid) }
        return out
    }
}
