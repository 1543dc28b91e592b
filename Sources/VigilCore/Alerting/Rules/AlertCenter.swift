import Foundation
import MQTT

/// detections -> rules -> alert row, alert message, actions (DESIGN.md data flow).
///
/// `handle` runs on a worker lane and never waits: publishes are queued by libmosquitto,
/// the row is queued for the store's writer, and actions run on their own threads. The
/// row is written at once with each action `pending`; when the last action finishes (or
/// times out) its `actions` column is rewritten with the outcomes (docs/alerts.md says why).
public final class AlertCenter: @unchecked Sendable {
    // @unchecked Sendable: counters and `inFlight` are guarded by `lock`; `lastScore` and `leftovers` by
    // `scoreLock`; `discovered` locks itself; the rest is immutable.
    public struct PipelineInfo: Sendable {
        public var name: String
        public var alert: AlertSettings?
        public var modelLabels: [String]
        public var task: String
        public var model: String
        /// The model's `vigil.threshold`: the rule's `min_score` when the config leaves it out.
        public var threshold: Double?
        /// A camera pipeline: it gets a Home Assistant `image` entity with `homeassistant.snapshots`.
        public var image = false
        /// Its model has an embedding output, so enrolled sounds (Enrollment/) can raise its alerts.
        public var enrolls = false
        /// Its Home Assistant alert binary_sensors.
        var alertEntities: [AlertEntity] { alert.map { AlertEntity.of(labels: $0.labels, enrolls: enrolls) } ?? [] }
        public init(name: String, alert: AlertSettings?, modelLabels: [String], task: String, model: String, threshold: Double? = nil) {
            self.name = name; self.alert = alert?.applying(modelThreshold: threshold); self.modelLabels = modelLabels
            self.task = task; self.model = model; self.threshold = threshold
        }
    }

    public let rules: RulesEngine
    public let actions: ActionSet
    public let topics: AlertTopics
    let pipelines: [String: PipelineInfo]
    /// The score the Home Assistant sensor shows: the one the pipeline's rule reads.
    let selectors: [String: ScoreSelector]
    let homeAssistant: HomeAssistantSettings?
    let outlet: MQTTOutlet
    let record: @Sendable (AlertRecord) -> Void
    let updateActions: @Sendable (_ uuid: String, _ json: String) -> Void
    private let lock = NSCondition()
    private var raised = 0
    private var cleared = 0
    private var inFlight = 0
    private let scoreLock = NSLock()
    private var lastScore: [String: Double] = [:]
    /// Pipeline+device keys whose Home Assistant alert is ON, with the label that raised it
    /// (what a returning device shows again).
    private var haOn: [String: String] = [:]
    /// The devices announced to Home Assistant (capped, forgotten after the device TTL).
    let discovered: DiscoveredDevices
    /// Retained configs of this node found on the broker at connect (left by an earlier
    /// run): removed after the device TTL unless their device is announced again meanwhile.
    private var leftovers: [String: (since: Double, clear: [String])] = [:]
    /// At most this many leftovers are tracked at once (a broker may hold hundreds of
    /// thousands from before discovery was capped); the rest are found on a later connect.
    static let maxLeftovers = 100_000
    /// What vigild subscribes to at connect to find the discovery configs an earlier run
    /// left retained (nil when discovery is off): `<prefix>/+/vigil_<node>/+/config`.
    public let leftoverFilter: String?
    /// Alert and action figures for /metrics.
    let counters: Counters?
    /// Told of every raised alert, to keep its evidence (Evidence/); returns at once.
    let evidence: (@Sendable (AlertEvent) -> Void)?

    public init(node: String, pipelines: [PipelineInfo], actions: ActionSet, homeAssistant: HomeAssistantSettings?,
                outlet: MQTTOutlet, record: @escaping @Sendable (AlertRecord) -> Void,
                updateActions: @escaping @Sendable (String, String) -> Void, counters: Counters? = nil,
                deviceTTL: Double = LimitSettings().deviceTTL, evidence: (@Sendable (AlertEvent) -> Void)? = nil) {
        self.counters = counters
        self.evidence = evidence
        discovered = DiscoveredDevices(maxDevices: homeAssistant?.maxDevices ?? HomeAssistantSettings().maxDevices, ttl: deviceTTL,
                                       forgetAfter: homeAssistant?.forgetAfterSeconds ?? HomeAssistantSettings().forgetAfterSeconds)
        topics = AlertTopics(node: node)
        rules = RulesEngine(node: node, pipelines: pipelines.compactMap { p in p.alert.map { (p.name, $0, p.modelLabels) } })
        self.pipelines = Dictionary(pipelines.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        selectors = Dictionary(pipelines.map { p in
            (p.name, ScoreSelector(settings: p.alert ?? AlertSettings(), modelLabels: p.modelLabels))
        }, uniquingKeysWith: { a, _ in a })
        self.actions = actions
        self.homeAssistant = homeAssistant?.discovery == true ? homeAssistant : nil
        leftoverFilter = self.homeAssistant.map { "\($0.prefix)/+/\(HomeAssistantDiscovery.id("vigil_" + node))/+/config" }
        self.outlet = outlet
        self.record = record
        self.updateActions = updateActions
    }

    /// `scoreLabels`: per pipeline, the names its detections carry scores for (label groups or a
    /// labels file replace the model's own labels); rules read those.
    public convenience init(config: Config, models: [String: Model], scoreLabels: [String: [String]] = [:],
                            outlet: MQTTOutlet, store: Store, counters: Counters? = nil,
                            evidence: (@Sendable (AlertEvent) -> Void)? = nil) {
        let infos = config.pipelines.map { p in
            var info = PipelineInfo(name: p.name, alert: p.alert, modelLabels: scoreLabels[p.name] ?? models[p.model]?.labels ?? [],
                                    task: models[p.model]?.task ?? "score", model: p.model, threshold: models[p.model]?.threshold)
            info.image = p.isImage && p.evidenceSettings.enabled
            info.enrolls = models[p.model]?.embedding != nil
            return info
        }
        for a in config.actions {
            // Not fatal (the script may be installed later), but said once at start, naming the key.
            if case let .exec(argv, _, _) = a.kind, !FileManager.default.isExecutableFile(atPath: argv[0]) {
                log.warning("actions.\(a.name).argv[0]: \(argv[0]) is not an executable file; its runs will fail until it is")
            }
            if case let .file(path, _, _) = a.kind, !FileManager.default.isWritableFile(atPath: path) {
                log.warning("actions.\(a.name).path: \(path) is not writable (missing, or no permission); its writes will fail until it is")
            }
        }
        self.init(node: config.node, pipelines: infos, actions: ActionSet(config.actions, outlet: outlet),
                  homeAssistant: config.homeAssistant, outlet: outlet,
                  record: { store.append($0) }, updateActions: { store.updateAlertActions(uuid: $0, json: $1) },
                  counters: counters, deviceTTL: config.limits.deviceTTL, evidence: evidence)
    }

    public var counts: (raised: Int, cleared: Int) { lock.withLock { (raised, cleared) } }

    /// Called for every detection, on its worker lane.
    public func handle(_ d: Detection) {
        if let ha = homeAssistant { homeAssistantUpdate(d, ha) }
        guard let event = rules.evaluate(d) else { return }
        raise(event)
    }

    /// A detection of replayed history (Intake/): the rule's state moves as it did before
    /// the restart (a raised alert stays raised, a debounce count goes on); nothing is raised.
    /// Returns the transition it made again (its row was committed then), for its evidence.
    @discardableResult
    public func replayHistory(_ d: Detection) -> AlertEvent? { rules.evaluate(d) }

    func raise(_ e: AlertEvent) {
        let settings = rules.settings(for: e.pipeline)
        lock.withLock { if e.state == .raised { raised += 1 } else { cleared += 1 } }
        counters?.alert(e.pipeline, state: e.state.rawValue)
        // Rate-limited per pipeline like rejections: an alert storm (50,000 alerts) once wrote
        // 50,000 lines. Every transition is still a row, an MQTT message and a metric.
        log.limited(.notice, key: "alert-\(e.pipeline)", "alert \(e.state.rawValue): pipeline \(e.pipeline), device \(Logger.clip(e.device)), label \(e.label), score \(String(format: "%.3f", e.score)) (\(e.severity))")
        publish(topics.alerts(e.pipeline, e.device), e.json.serialized, qos: 1, retain: false)
        if homeAssistant != nil {
            let key = e.pipeline + "\u{0}" + e.device
            scoreLock.withLock { haOn[key] = e.state == .raised ? e.label : nil }
            if discovered.contains(pipeline: e.pipeline, device: e.device) {
                // The binary_sensor's state (retained, so Home Assistant has it after a restart):
                // the pipeline's, and the entity of the label that raised (a clear names it too).
                let on = e.state == .raised ? "ON" : "OFF"
                publish(topics.state(e.pipeline, e.device), on, qos: 1, retain: true)
                let entities = pipelines[e.pipeline]?.alertEntities ?? []
                if let shown = AlertEntity.showing(e.label, in: entities), shown != .any {
                    publish(topics.state(e.pipeline, e.device, shown), on, qos: 1, retain: true)
                }
            }
        }
        let list = actions.selected(settings?.actions ?? [], for: e.state)
        let pending = list.map { ActionOutcome(action: $0.name, type: $0.type, status: .pending) }
        record(AlertRecord(uuid: e.uuid, ts: e.ts, pipeline: e.pipeline, device: e.device, state: e.state.rawValue,
                           label: e.label, score: e.score, severity: e.severity, actions: ActionOutcome.json(pending)))
        if e.state == .raised { evidence?(e) }
        guard !list.isEmpty else { return }
        lock.withLock { inFlight += 1 }
        actions.run(list, for: e) { [self] outcomes in
            for o in outcomes { counters?.actionRun(o.action, outcome: o.status.rawValue) }
            for o in outcomes where o.status != .ok {
                log.limited(.warning, key: "action-\(o.action)", "alert \(e.uuid): action \(o.action) \(o.status.rawValue)" + (o.detail.map { ": \($0)" } ?? ""))
            }
            updateActions(e.uuid, ActionOutcome.json(outcomes))
            lock.withLock { inFlight -= 1; lock.broadcast() }
        }
    }

    /// Waits up to `timeout` seconds for running actions to finish (shutdown); returns whether they did.
    @discardableResult
    public func waitForActions(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        lock.lock()
        defer { lock.unlock() }
        while inFlight > 0 { if !lock.wait(until: deadline) { return inFlight == 0 } }
        return true
    }

    public var actionsInFlight: Int { lock.withLock { inFlight } }

    /// How long shutdown should wait for running actions: the slowest configured action's bound.
    public var shutdownWait: Double {
        actions.bound(pipelines.values.flatMap { $0.alert?.actions ?? [] })
    }

    /// Discovery when a pipeline and device is first seen, then a throttled score. Past
    /// `max_devices` a new device is not announced (and gets no retained topics at all).
    func homeAssistantUpdate(_ d: Detection, _ ha: HomeAssistantSettings) {
        guard let p = pipelines[d.pipeline] else { return }
        switch discovered.saw(pipeline: d.pipeline, device: d.device, now: monotonicSeconds()) {
        case .new:
            publishDiscovery(pipeline: d.pipeline, device: d.device, ha)
            publishPresence(pipeline: d.pipeline, device: d.device, online: true)
        case .returned:
            publishPresence(pipeline: d.pipeline, device: d.device, online: true)
            log.info("homeassistant: pipeline \(d.pipeline), device \(Logger.clip(d.device)) is back: available again")
        case .known:
            break
        case .overCap:
            log.limited(.warning, key: "ha-cap", "homeassistant.max_devices (\(ha.maxDevices)) reached: pipeline \(d.pipeline), device \(Logger.clip(d.device)) not announced to Home Assistant (a device silent for limits.device_ttl_s frees its place)")
            return
        }
        let key = d.pipeline + "\u{0}" + d.device
        let due = scoreLock.withLock { () -> Bool in
            let nowS = monotonicSeconds()
            if let last = lastScore[key], nowS - last < ha.scoreIntervalSeconds { return false }
            lastScore[key] = nowS
            return true
        }
        if due {
            let score = selectors[p.name]?.pick(d.scores, enrolledFrom: d.enrolledFrom)?.score ?? d.score
            publish(topics.score(d.pipeline, d.device), String(format: "%.4f", score), qos: 0, retain: false)
        }
    }

    func publishDiscovery(pipeline: String, device: String, _ ha: HomeAssistantSettings) {
        guard let p = pipelines[pipeline] else { return }
        for (topic, payload) in HomeAssistantDiscovery.messages(settings: ha, topics: topics, pipeline: pipeline, device: device,
                                                                task: p.task, model: p.model, alerts: p.alert != nil,
                                                                snapshot: ha.snapshots && p.image, alertLabels: p.alert?.labels ?? [],
                                                                enrolls: p.enrolls) {
            publish(topic, payload, qos: 1, retain: true)
        }
    }

    /// The device's availability and its alert state (retained): online with the rules' state
    /// (ON while its alert is raised), or offline with OFF once it has been silent for the TTL,
    /// so Home Assistant does not show "Detected" for a device that stopped sending.
    func publishPresence(pipeline: String, device: String, online: Bool) {
        publish(topics.availability(pipeline, device), online ? "online" : "offline", qos: 1, retain: true)
        guard let entities = pipelines[pipeline]?.alertEntities, !entities.isEmpty else { return }
        let raisedBy = online ? scoreLock.withLock { haOn[pipeline + "\u{0}" + device] } : nil
        publish(topics.state(pipeline, device), raisedBy != nil ? "ON" : "OFF", qos: 1, retain: true)
        let shown = raisedBy.flatMap { AlertEntity.showing($0, in: entities) }
        for e in entities where e != .any {
            publish(topics.state(pipeline, device, e), e == shown ? "ON" : "OFF", qos: 1, retain: true)
        }
    }

    /// On every (re)connect: discovery for the devices announced and not expired, since a
    /// broker without persistence forgets retained messages when it restarts.
    public func brokerConnected() {
        guard let ha = homeAssistant else { return }
        for k in discovered.all {
            publishDiscovery(pipeline: k.pipeline, device: k.device, ha)
            publishPresence(pipeline: k.pipeline, device: k.device, online: !discovered.isStale(k))
        }
    }

    /// Takes a message on `leftoverFilter` (true; nothing else is for the engine): a retained
    /// config is remembered as a leftover, to be removed after the device TTL unless its
    /// device is announced again. Live copies of vigild's own publishes (not retained) are ignored.
    public func takeLeftover(_ m: MQTTMessage) -> Bool {
        guard let filter = leftoverFilter, MQTTClient.topic(m.topic, matches: filter) else { return false }
        guard m.retain, !m.payload.isEmpty else { return true }
        // The retained topics of vigild's own that the config names: its state and its device's availability.
        let config = try? JSONParser.parse(m.payload)
        var clear: [String] = []
        if let state = config?["state_topic"]?.string, state.hasPrefix("vigil/\(topics.node)/state/") { clear.append(state) }
        if case .array(let list)? = config?["availability"] {
            for a in list {
                if let t = a["topic"]?.string, t.hasPrefix("vigil/\(topics.node)/availability/") { clear.append(t) }
            }
        }
        scoreLock.withLock {
            if leftovers[m.topic] == nil, leftovers.count < AlertCenter.maxLeftovers { leftovers[m.topic] = (monotonicSeconds(), clear) }
        }
        return true
    }

    /// Devices silent for `limits.device_ttl_s` are shown unavailable with their alert OFF;
    /// the entities of devices silent for `homeassistant.forget_after_s` are removed: an
    /// empty retained payload deletes a retained message (their configs, alert state and
    /// availability), and Home Assistant drops an entity whose config goes empty. Called on
    /// the watchdog's tick.
    public func expireDevices(now: Double? = nil) {
        guard let ha = homeAssistant else { return }
        let now = now ?? monotonicSeconds()
        expireLeftovers(now: now, ha)
        let (stale, gone) = discovered.expire(now: now)
        for k in stale { publishPresence(pipeline: k.pipeline, device: k.device, online: false) }
        if !stale.isEmpty {
            log.info("homeassistant: \(stale.count) device(s) silent for over \(Int(discovered.ttl)) s shown unavailable, their alerts OFF")
        }
        guard !gone.isEmpty else { return }
        for k in gone {
            publish(topics.availability(k.pipeline, k.device), "", qos: 1, retain: true)
            let t = HomeAssistantDiscovery.configTopics(settings: ha, topics: topics, pipeline: k.pipeline, device: k.device)
            publish(t.alert, "", qos: 1, retain: true)
            publish(t.score, "", qos: 1, retain: true)
            publish(topics.state(k.pipeline, k.device), "", qos: 1, retain: true)
            for e in pipelines[k.pipeline]?.alertEntities ?? [] where e != .any {
                publish(HomeAssistantDiscovery.configTopic(settings: ha, topics: topics, pipeline: k.pipeline, device: k.device, entity: e), "", qos: 1, retain: true)
                publish(topics.state(k.pipeline, k.device, e), "", qos: 1, retain: true)
            }
            if ha.snapshots, pipelines[k.pipeline]?.image == true {
                publish(t.snapshot, "", qos: 1, retain: true)
                publish(topics.snapshot(k.pipeline, k.device), "", qos: 1, retain: true)
            }
        }
        scoreLock.withLock { for k in gone { lastScore[k.pipeline + "\u{0}" + k.device] = nil } }
        log.info("homeassistant: \(gone.count) device(s) silent for over \(Int(discovered.forgetAfter)) s; their discovery configs removed")
    }

    /// Removes the leftovers older than the device TTL whose device has not been announced again.
    func expireLeftovers(now: Double, _ ha: HomeAssistantSettings) {
        let due: [(String, [String])] = scoreLock.withLock {
            let old = leftovers.filter { now - $0.value.since > discovered.ttl }
            for k in old.keys { leftovers[k] = nil }
            return old.map { ($0.key, $0.value.clear) }
        }
        guard !due.isEmpty else { return }
        // What announced devices use: a leftover config of a label no longer in the rule must
        // not take its device's availability (or the pipeline's state) with it.
        var live = Set<String>()
        for k in discovered.all {
            let t = HomeAssistantDiscovery.configTopics(settings: ha, topics: topics, pipeline: k.pipeline, device: k.device)
            live.formUnion([t.alert, t.score, t.snapshot, topics.availability(k.pipeline, k.device), topics.state(k.pipeline, k.device)])
            for e in pipelines[k.pipeline]?.alertEntities ?? [] {
                live.insert(HomeAssistantDiscovery.configTopic(settings: ha, topics: topics, pipeline: k.pipeline, device: k.device, entity: e))
                live.insert(topics.state(k.pipeline, k.device, e))
            }
        }
        var removed = 0
        for (topic, clear) in due where !live.contains(topic) {
            publish(topic, "", qos: 1, retain: true)
            for t in clear where !live.contains(t) { publish(t, "", qos: 1, retain: true) }
            removed += 1
        }
        if removed > 0 {
            log.info("homeassistant: removed \(removed) discovery config(s) an earlier run left for devices not seen for \(Int(discovered.ttl)) s")
        }
    }

    /// The trigger frame of a camera alert whose evidence was just kept (on the evidence queue):
    /// retained on the snapshot topic, for the Home Assistant `image` entity. Only with
    /// `homeassistant.snapshots`, and only for a device announced to Home Assistant.
    public func snapshotKept(pipeline: String, device: String, png: [UInt8]) {
        guard let ha = homeAssistant, ha.snapshots, pipelines[pipeline]?.image == true,
              discovered.contains(pipeline: pipeline, device: device) else { return }
        do { try outlet.publish(topics.snapshot(pipeline, device), png, qos: 1, retain: true) } catch {
            log.limited(.warning, key: "alert-publish", "cannot publish the snapshot of \(pipeline)/\(Logger.clip(device)): \(error)")
        }
    }

    private func publish(_ topic: String, _ text: String, qos: Int32, retain: Bool) {
        do { try outlet.publish(topic, Array(text.utf8), qos: qos, retain: retain) } catch {
            log.limited(.warning, key: "alert-publish", "cannot publish to \(Logger.clip(topic)): \(error)")
        }
    }
}
