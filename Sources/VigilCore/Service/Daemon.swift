import Foundation
import MQTT

/// Wires the stages together: broker -> engine (decode, adapt, infer) -> store, and
/// detections -> alerts (rules, alert rows and messages, actions).
/// Its parts start in one order and stop in reverse (Service/ServiceParts.swift): those live
/// once built (store, evidence, alert center, engine) and the timers start here in `init`,
/// sync and the broker client in `start()`.
public final class Daemon: @unchecked Sendable {
    // @unchecked Sendable: `current*` and `mqtt` are guarded by `lock` (reload swaps them); the rest is immutable.
    public var config: Config { lock.withLock { currentConfig } }
    public let counters = Counters()
    public var models: [String: Model] { lock.withLock { currentModels } }
    public let store: Store
    public var engine: Engine { lock.withLock { currentEngine } }
    /// Built once: alert rules and actions apply after a restart (reload says so when they changed).
    public let alerts: AlertCenter
    let outlet = MQTTOutlet()
    private let acks = AckWaiter()
    /// The broker's answers to the subscriptions (for the log: when frames flow, what it refused).
    let subscriptionAcks = SubscriptionAcks()
    /// Forwards the log to the cloud when `sync` is configured (built once: sync changes apply after a restart).
    public let sync: SyncService?
    let lock = NSLock()
    private var mqtt: MQTTClient?
    var currentConfig: Config
    var currentModels: [String: Model]
    var currentEngine: Engine
    /// Held while a frame is handed to the engine, and by reload while it drains and swaps engines.
    let submitGate = NSLock()
    /// Where every detection goes (store, and whatever else is wired in); reload reuses it for the new engine.
    let sink: @Sendable (Detection) -> Void
    /// Which detections become rows, per pipeline's `store` policy (events and summaries, or all).
    let eventGate: EventGate
    private var summaryTimer: DispatchSourceTimer?
    /// The durable intake (journal, redelivery filter); reload hands it to the new engine.
    let intake: IntakeHooks
    /// Each raised alert's evidence (Evidence/): nil when `storage.evidence_mb` is 0 or no
    /// pipeline keeps evidence. Built once: evidence settings apply after a restart.
    public let evidence: EvidenceStore?
    let evidenceRecorder: EvidenceRecorder?
    /// Called after a successful reload with the new config (Service/Reload.swift).
    var reloadHooks: [@Sendable (Config) -> Void] = []
    /// What the alert center was built from (Service/Reload.swift); set at the first reload.
    var alertBasis: [String]?
    public let startedAt = Date()
    /// Per-device baselines of stateful anomaly models, loaded from and saved to the log.
    public let baselines = BaselineBook()
    /// Sounds households taught the pipelines (Enrollment/), from the log; refreshed every 2 s
    /// when vigilctl changed them, and on SIGHUP.
    public let enrollments = EnrollmentBook()
    private var baselineTimer: DispatchSourceTimer?
    /// The service's parts in their start order; ServiceLifecycle adds the watchdog and HTTP listener.
    public let parts = ServiceParts()

    public init(config: Config) throws {
        self.currentConfig = config
        log.setLevel(config.logLevel)
        let models = try Daemon.loadModels(config)
        self.currentModels = models
        let counters = self.counters
        counters.declare(config)
        // Without sync nothing else ever deletes rows: retention then goes by age alone (issue 19).
        let store = try Store(settings: config.storage, counters: counters, keepsUnsynced: config.sync != nil)
        self.store = store
        let book = baselines
        book.load(store.loadBaselines())
        let enrolled = enrollments
        enrolled.loadCalibrations(store.loadEnrollmentCalibrations())
        let pipelines = try config.pipelines.map { try Pipeline.build($0, model: models[$0.model]!, limits: config.limits, book: book, enrollments: enrolled) }
        // Saved camera states of devices gone longer than the log keeps rows.
        for dir in Set(config.pipelines.compactMap { $0.motion?.stateDirectory }) where config.storage.retentionDays > 0 {
            let n = CameraStateFile.sweep(directory: dir, maxAge: config.storage.retentionDays * 86_400)
            if n > 0 { log.info("removed \(n) saved camera states older than \(JSONValue.format(config.storage.retentionDays)) days from \(dir)") }
        }
        for dir in Set(config.pipelines.compactMap { $0.motion?.stateDirectory }) {
            CameraStateFolder.at(dir).configure(maxBytes: Int(config.storage.motionStateMB * 1_048_576), metrics: counters.metrics)
        }
        for p in pipelines {
            log.info("pipeline \(p.name): \(p.settings.format.rawValue) into model \(p.model.name) (\(p.model.task), \(p.model.threads) threads): \(p.inputDescription)")
            Daemon.noteBudget(p)
        }
        sync = config.sync.map { SyncService(settings: $0, node: config.node, store: store, counters: counters) }
        if let sync { store.onAlertsCommitted { sync.kick() } }
        if config.storage.evidenceMB > 0, config.pipelines.contains(where: { $0.evidenceSettings.enabled }) {
            let kept = EvidenceStore(settings: config.storage, store: store, counters: counters)
            evidence = kept
            evidenceRecorder = EvidenceRecorder(pipelines: config.pipelines, deviceTTL: config.limits.deviceTTL) { kept.write($0) }
        } else {
            evidence = nil
            evidenceRecorder = nil
        }
        var onRaised: (@Sendable (AlertEvent) -> Void)?
        if let recorder = evidenceRecorder { onRaised = { recorder.alertRaised($0) } }
        let alerts = AlertCenter(config: config, models: models,
                                 scoreLabels: Dictionary(pipelines.map { ($0.name, $0.ruleLabels) }, uniquingKeysWith: { a, _ in a }),
                                 outlet: outlet, store: store, counters: counters,
                                 evidence: onRaised)
        self.alerts = alerts
        if config.homeAssistant?.snapshots == true {
            evidence?.onKept { event, entries in
                guard let png = entries.first(where: { $0.name.hasSuffix("-trigger.png") }) else { return }
                alerts.snapshotKept(pipeline: event.pipeline, device: event.device, png: png.bytes)
            }
        }
        let outlet = self.outlet
        let detectionTopics = config.mqtt.publishDetections ? AlertTopics(node: config.node) : nil
        let gate = EventGate(pipelines: pipelines)
        eventGate = gate
        sink = { detection in
            counters.inferenceFinished(model: detection.model, ms: detection.latencyMs)
            for row in gate.admit(detection) { store.append(row) }
            alerts.handle(detection)
            if let topics = detectionTopics {
                // QoS 0: a live feed for dashboards and latency probes; the log is the record.
                try? outlet.publish(topics.detections(detection.pipeline, detection.device),
                                    Array(detection.json.serialized.utf8), qos: 0, retain: false)
            }
        }
        let (intake, recovery) = try Daemon.openIntake(config, store: store, alerts: alerts, evidence: evidenceRecorder, counters: counters)
        self.intake = intake
        self.recovery = recovery
        if recovery != nil, let kept = evidence, let recorder = evidenceRecorder {
            // Alerts a kill caught while their capture waited for its after_s: the journal's history gives them their evidence.
            let missing = kept.raisedWithoutEvidence(pipelines: recorder.pipelines.keys.sorted())
            recorder.expectFromJournal(missing)
            if !missing.isEmpty {
                log.notice("evidence \(kept.directory): \(missing.count) raised alerts were committed without their evidence (vigild stopped while it waited for after_s); it is taken from the intake journal's frames")
            }
        }
        currentEngine = Engine(pipelines: pipelines, limits: config.limits, counters: counters, intake: intake,
                               evidence: evidenceRecorder, sink: sink)
        refreshEnrollments(force: true)
        registerParts()
        try parts.start(through: .timers)
    }

    /// The daemon's steps for each of its parts (their order is `ServicePart`'s).
    private func registerParts() {
        let store = store, evidence = evidence, recorder = evidenceRecorder, alerts = alerts
        parts.register(.store, stop: { store.close() })
        // Captures still waiting for their after_s are written with what came (a stop must not lose them).
        parts.register(.evidence, stop: { recorder?.finishAll(); evidence?.flush() })
        parts.register(.timers, start: { [unowned self] in
            startBaselineTimer()
            startSummaryTimer()
        }, stop: { [unowned self] in
            baselineTimer?.cancel()
            summaryTimer?.cancel()
            for row in eventGate.flush() { store.append(row) }
            store.saveBaselines(baselines.takeDirty())
            store.saveEnrollmentCalibrations(of: enrollments)
        })
        let sync = sync
        parts.register(.sync, start: { sync?.start() }, stop: { sync?.stop() })
        // Bounded by the slowest action's timeout (and retries), at most a minute.
        parts.register(.alertCenter, stop: {
            if !alerts.waitForActions(timeout: min(60, alerts.shutdownWait)) {
                log.warning("stopping with \(alerts.actionsInFlight) alert actions still running; their outcomes stay pending")
            }
        })
        parts.register(.engine, stop: { [unowned self] in engine.stop() })
        parts.register(.brokerClient, start: { [unowned self] in try startClient() }, stop: { [unowned self] in stopClientForGood() },
                       restart: { [unowned self] in
            stopClient()
            try startClient()
        })
    }

    /// Writes the summaries of devices silent for a whole period (`store: "events"`): every
    /// 5 s, a lock and a look at each open period, nothing when every pipeline stores all.
    private func startSummaryTimer() {
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "vigil.summaries"))
        let gate = eventGate, store = store
        t.schedule(deadline: .now() + 5, repeating: 5, leeway: .seconds(1))
        t.setEventHandler { for row in gate.sweep() { store.append(row) } }
        t.resume()
        summaryTimer = t
    }

    /// What the journal held at start, replayed by `start()` before the broker is reached.
    private var recovery: IntakeJournal.Recovery?

    /// Opens the intake journal and reads what it holds, and ties it to the store: commits
    /// retire entries, deleted segments prune the store's marks. At `durability: "none"` a
    /// journal left by an earlier run is still replayed (it holds acknowledged frames), and
    /// nothing new is written to it.
    static func openIntake(_ config: Config, store: Store, alerts: AlertCenter, evidence: EvidenceRecorder?,
                           counters: Counters) throws -> (IntakeHooks, IntakeJournal.Recovery?) {
        let redeliveries = RedeliveryFilter()
        let history: @Sendable (Detection) -> Void = { d in
            if let e = alerts.replayHistory(d) { evidence?.alertReplayed(e) }
        }
        let directory = config.storage.intakeDirectory
        let durability = config.storage.durability
        let leftover = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).contains { $0.hasSuffix(".seg") }
        guard durability != .none || leftover else {
            return (IntakeHooks(journal: nil, redeliveries: redeliveries, retire: { _ in }, history: history), nil)
        }
        let journal = try IntakeJournal(directory: directory, durability: durability == .none ? .process : durability,
                                        maxBytes: config.limits.intakeMaxMB << 20)
        // A log that cannot be read now (Store/StoreHealth.swift) retires nothing: every entry is
        // processed again, and its rows, derived from the frame, are stored once.
        let recovery = journal.recover(retired: (try? store.retiredIntakeSeqs(from: 0)) ?? [])
        store.onRetired { seqs in
            journal.retire(seqs)
            let p = journal.pending
            counters.metrics.set(MetricName.intakePending, [], Double(p.entries))
            counters.metrics.set(MetricName.intakeBytes, [], Double(p.bytes))
        }
        journal.onPrune { store.pruneRetired(below: $0) }
        let hooks = IntakeHooks(journal: durability == .none ? nil : journal, redeliveries: redeliveries,
                                retire: { store.appendRetired($0) }, history: history)
        return (hooks, recovery.segments > 0 ? recovery : nil)
    }

    /// Says at start how a pipeline's alert threshold is set when the model takes a baseline,
    /// and when a config written for the old anomaly model carries a `min_score` that now
    /// only floors the budget (the migration path: remove it to let the budget decide).
    static func noteBudget(_ p: Pipeline) {
        guard let alert = p.settings.alert else { return }
        if p.model.stateInput == nil {
            if alert.maxFalseAlarmsPerDay != nil {
                log.warning("pipeline \(p.name): alert.max_false_alarms_per_day is ignored: model \(p.model.name) takes no baseline (vigil.state), so min_score decides")
            }
            return
        }
        let budget = alert.maxFalseAlarmsPerDay ?? AlertSettings.defaultFalseAlarmsPerDay
        if alert.minScoreGiven {
            log.notice("pipeline \(p.name): each device alerts at its own threshold for \(budget) false alarms a day; min_score \(alert.minScore) stays a floor under it (remove it to let the budget alone decide)")
        } else {
            log.info("pipeline \(p.name): each device alerts at its own threshold for \(budget) false alarms a day (alert.max_false_alarms_per_day), after its warm-up")
        }
    }

    /// Saves changed baselines every `snapshot_s` (the shortest of the pipelines') and picks
    /// up `vigilctl baseline reset` requests every 2 s.
    private func startBaselineTimer() {
        let every = config.pipelines.compactMap { $0.baseline?.snapshotSeconds }.min() ?? BaselineSettings().snapshotSeconds
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "vigil.baselines"))
        var sinceSave = 0.0
        let store = store, book = baselines, counters = counters, enrolled = enrollments
        t.schedule(deadline: .now() + 2, repeating: 2, leeway: .milliseconds(200))
        t.setEventHandler { [weak self] in
            self?.refreshEnrollments()
            store.takeBaselineResets(into: book)
            counters.setBaselines(book.all())
            sinceSave += 2
            if sinceSave >= every {
                sinceSave = 0
                store.saveBaselines(book.takeDirty())
                store.saveEnrollmentCalibrations(of: enrolled)
            }
        }
        t.resume()
        baselineTimer = t
    }

    /// Starts the parts not started yet (sync, the broker client, and ServiceLifecycle's), in order.
    public func start() throws {
        try parts.start()
    }

    /// Connects to the broker and subscribes, after replaying the intake journal. A broker that
    /// is not up is logged once and retried in the background with capped exponential backoff.
    private func startClient() throws {
        let b = config.mqtt
        let statusTopic = alerts.topics.status
        // The broker says `offline` for us when the connection dies without a goodbye.
        let options = MQTTOptions(host: b.host, port: b.port, clientID: b.clientID, username: b.username,
                                  password: b.password, tls: b.tls, keepalive: b.keepalive,
                                  cleanSession: b.cleanSession, will: MQTTWill(topic: statusTopic, payload: "offline"),
                                  reconnectMinDelay: 1, reconnectMaxDelay: Daemon.brokerRetryMax)
        var handlers = MQTTHandlers()
        let qos = b.qos
        let address = b.address
        let wasConnected = Guarded(false)
        handlers.connected = { [weak self] rc, reason in
            guard let self else { return }
            guard rc == 0 else {
                log.limited(.error, key: "broker-refused", "broker \(address) refused the connection: \(reason)")
                return
            }
            // Messages the broker resends now are ones already taken (and journaled) if their id and bytes match.
            self.intake.redeliveries.connected()
            log.notice("connected to broker \(address)" + (wasConnected.withLock { was in defer { was = true }; return was } ? " again" : ""))
            self.counters.metrics.add(MetricName.brokerConnects)
            // The current config's topics: a reload may have changed them since start().
            // Discovery configs an earlier run left retained: removed after the device TTL
            // unless their device comes back (AlertCenter.takeLeftover).
            let filters = Daemon.subscriptions(self.config).map { ($0, qos) } + (self.alerts.leftoverFilter.map { [($0, Int32(1))] } ?? [])
            Daemon.report(self.subscriptionAcks.connectionStarts(expecting: filters.count), broker: address)
            for (filter, q) in filters {
                do { try self.subscribe(filter, qos: q) } catch { log.error("\(error)") }
            }
            do { try self.client?.publish(statusTopic, "online", qos: 1, retain: true) } catch { log.error("\(error)") }
            self.alerts.brokerConnected()
        }
        handlers.disconnected = { rc, reason in
            if rc != 0 {
                log.limited(.warning, key: "broker-lost", "lost broker \(address): \(reason); reconnecting with backoff up to \(Daemon.brokerRetryMax) s")
            }
        }
        let acks = self.acks
        handlers.published = { acks.acked($0) }
        let subscriptionAcks = self.subscriptionAcks
        handlers.subscribed = { mid, granted in Daemon.report(subscriptionAcks.answered(mid, granted: granted), broker: address) }
        handlers.message = { [weak self] in self?.submit($0) }
        let client = try MQTTClient(options: options, handlers: handlers)
        lock.withLock { mqtt = client }
        outlet.set(client)
        guard let recovery = lock.withLock({ () -> IntakeJournal.Recovery? in defer { self.recovery = nil }; return self.recovery }) else {
            try connect(client, address)
            return
        }
        // The journal's frames go first, then the broker's: on a thread of its own, so READY and
        // the watchdog are not held back by a long journal (the queues bound what it reads ahead).
        let engine = self.engine
        log.notice("intake journal \(config.storage.intakeDirectory): replaying \(recovery.pending) frames whose rows were not committed, after \(recovery.history) committed ones that rebuild stream and alert state")
        let t = Thread { [self] in
            let t0 = monotonicSeconds()
            engine.replay(recovery)
            log.info(String(format: "intake journal: %d frames queued for replay in %.2f s; connecting to the broker", recovery.pending + recovery.history, monotonicSeconds() - t0))
            do { try connect(client, address) } catch { log.error("\(error)") }
        }
        t.name = "vigil-replay"
        t.start()
    }

    private func connect(_ client: MQTTClient, _ address: String) throws {
        if let first = try client.start() {
            log.error("cannot reach broker \(address): \(first.detail); retrying with backoff up to \(Daemon.brokerRetryMax) s")
        }
    }

    /// The longest wait between attempts to reach the broker. libmosquitto's backoff grows
    /// 1, 4, 9, 16... s; capped at 4 s, vigild is back within 5 s of a restarted broker
    /// however long it was down (capped at 30 s, a broker down for 6 s was rejoined 8 s
    /// after its return, and a longer outage up to 30 s after). The broker is the
    /// gateway's own or on its LAN: an attempt every 4 s is cheap.
    static let brokerRetryMax = 4

    var client: MQTTClient? { lock.withLock { mqtt } }

    /// Hands a frame to the current engine (on the MQTT thread; waits only while a reload swaps engines).
    func submit(_ message: MQTTMessage) {
        if alerts.takeLeftover(message) { return }
        submitGate.withLock { engine.submit(message) }
    }

    /// Stops the broker client and forgets it (reload, when the broker settings changed: the
    /// journal keeps waiting for room and no `offline` is said, a new client follows at once).
    private func stopClient() {
        let c = lock.withLock { () -> MQTTClient? in defer { mqtt = nil }; return mqtt }
        c?.stop()
    }

    /// Subscribes to `filter`, the broker's answer to be logged when it comes (SubscriptionAcks).
    func subscribe(_ filter: String, qos: Int32) throws {
        guard let c = client else { return }
        Daemon.report(subscriptionAcks.sent(try c.subscribe(filter, qos: qos), filter), broker: config.mqtt.address)
    }

    static func report(_ answers: [SubscriptionAcks.Answer], broker address: String) {
        for a in answers {
            switch a {
            case .refused(let topic):
                log.error("broker \(address) refused the subscription to \(topic): no frames will arrive on it (check the broker's ACL for this client)")
            case .connectionReady(let granted, let of):
                log.notice("subscribed on broker \(address): \(granted) of \(of) topic filters granted" + (granted == of ? "" : " (see the errors above)"))
            }
        }
    }

    /// Each pipeline's subscription once, in config order.
    static func subscriptions(_ config: Config) -> [String] {
        var seen = Set<String>()
        return config.pipelines.map(\.topic.subscription).filter { seen.insert($0).inserted }
    }

    public var isConnected: Bool { client?.isConnected ?? false }

    /// Stops every part in reverse order: takes no more frames, finishes the ones in flight,
    /// lets running actions finish (each bounded by its timeout), and commits everything.
    public func stop() {
        parts.stopAll()
    }

    /// The broker client's stop at the service's end: says `offline`, then stops the client.
    private func stopClientForGood() {
        let c = lock.withLock { () -> MQTTClient? in defer { mqtt = nil }; return mqtt }
        // A clean disconnect sends no will: say `offline` ourselves and wait (briefly) for the broker's ack.
        if let c, c.isConnected, let mid = try? c.publish(alerts.topics.status, "offline", qos: 1, retain: true) {
            acks.wait(for: mid, timeout: 2)
        }
        // A message callback waiting for journal room must return before the MQTT thread can be joined.
        intake.journal?.stopWaiting()
        c?.stop()
        outlet.set(nil)
    }

    /// One line for logs and systemd's STATUS=.
    public func statusLine() -> String {
        let s = counters.snapshot()
        let a = alerts.counts
        return "frames \(s.totalReceived), detections \(s.storedDetections), rejected \(s.totalRejected), dropped \(s.totalDropped), rows not stored \(s.notStored), alerts raised \(a.raised), cleared \(a.cleared)"
    }
}

/// Remembers the last acknowledged message ids so a publish can be waited for (the
/// `offline` status at stop). A ring: every publish is acked, and memory must stay flat.
final class AckWaiter: @unchecked Sendable {
    // @unchecked Sendable: `recent` and `next` are guarded by `cond`.
    private let cond = NSCondition()
    private var recent = [Int32](repeating: 0, count: 256)   // libmosquitto's mids start at 1
    private var next = 0

    func acked(_ mid: Int32) {
        cond.withLock {
            recent[next] = mid
            next = (next + 1) % recent.count
            cond.broadcast()
        }
    }

    func wait(for mid: Int32, timeout: Double) {
        let deadline = Date().addingTimeInterval(timeout)
        cond.lock()
        defer { cond.unlock() }
        while !recent.contains(mid) && cond.wait(until: deadline) {}
    }
}
