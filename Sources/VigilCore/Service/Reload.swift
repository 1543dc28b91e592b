import Foundation

/// What a reload changed, for the log line.
public struct ReloadReport: Sendable, CustomStringConvertible {
    public var pipelines: Int
    public var models: [String]
    public var subscribed: [String] = []
    public var unsubscribed: [String] = []
    public var reconnected = false
    public var httpChanged = false
    /// Settings that only a restart applies (kept at their old values).
    public var needsRestart: [String] = []

    public var description: String {
        var parts = ["\(pipelines) pipelines", "models \(models.joined(separator: ", "))"]
        if reconnected { parts.append("broker settings changed: reconnected") } else { parts.append("broker connection kept") }
        if !subscribed.isEmpty { parts.append("subscribed \(subscribed.joined(separator: ", "))") }
        if !unsubscribed.isEmpty { parts.append("unsubscribed \(unsubscribed.joined(separator: ", "))") }
        if !needsRestart.isEmpty { parts.append("restart to apply \(needsRestart.joined(separator: ", "))") }
        return parts.joined(separator: "; ")
    }
}

extension Daemon {
    /// Reloads the config file and every model (SIGHUP). Everything new is built and checked
    /// first; any error leaves the running config, models, pipelines and connection untouched.
    /// Then the old engine's lanes are drained while the broker thread waits, the new engine
    /// takes over, and the broker connection is kept when its settings did not change (only
    /// the subscriptions are updated) or replaced when they did.
    ///
    /// Per-device stream state (previous camera frame, audio ring, sensor window) starts afresh.
    @discardableResult
    public func reload(path: String? = nil) throws -> ReloadReport {
        do {
            let report = try swapIn(path: path)
            counters.metrics.add(MetricName.reloads, [.init("result", "ok")])
            return report
        } catch {
            counters.metrics.add(MetricName.reloads, [.init("result", "failed")])
            throw error
        }
    }

    private func swapIn(path: String?) throws -> ReloadReport {
        let old = config
        guard let file = path ?? old.file else {
            throw ConfigError(file: nil, path: "", message: "no config file to reload from")
        }
        var new = try Config.load(path: file)
        for w in new.warnings { log.warning("\(file): \(w)") }
        let models = try Daemon.loadModels(new)
        let pipelines = try new.pipelines.map { try Pipeline.build($0, model: models[$0.model]!, limits: new.limits, book: baselines, enrollments: enrollments) }

        var report = ReloadReport(pipelines: pipelines.count, models: models.keys.sorted())
        let engine0 = engine
        if new.storage != old.storage {
            report.needsRestart.append("storage")
            new.storage = old.storage   // the store stays open on the old settings
        }
        report.httpChanged = new.http != old.http
        func evidenceShape(_ c: Config) -> [String: EvidenceSettings] {
            Dictionary(c.pipelines.map { ($0.name, $0.evidenceSettings) }, uniquingKeysWith: { a, _ in a })
        }
        if evidenceShape(new) != evidenceShape(old) { report.needsRestart.append("evidence") }
        if new.sync != sync?.settings { report.needsRestart.append("sync") }
        // The alert center (rule state, running actions) lives across reloads; what it was built from must not change.
        let oldLabels = Dictionary(engine0.pipelines.map { ($0.name, $0.ruleLabels) }, uniquingKeysWith: { a, _ in a })
        let newLabels = Dictionary(pipelines.map { ($0.name, $0.ruleLabels) }, uniquingKeysWith: { a, _ in a })
        // Compared with what it was built from at start, not with the last reload.
        let basis = lock.withLock { alertBasis } ?? Daemon.alertShape(old, currentModels: self.models, ruleLabels: oldLabels)
        lock.withLock { alertBasis = basis }
        if basis != Daemon.alertShape(new, currentModels: models, ruleLabels: newLabels) {
            report.needsRestart.append("alert rules and actions")
        }

        let engine = Engine(pipelines: pipelines, limits: new.limits, counters: counters, intake: intake, evidence: evidenceRecorder, sink: sink)
        let retired: Engine = submitGate.withLock {
            // No frame enters while the old lanes finish theirs, so each device's frames stay in order.
            let current = lock.withLock { currentEngine }
            current.drain()
            // The open periods end with the old policies (the new config may change them).
            for row in eventGate.flush(replacing: pipelines) { store.append(row) }
            return lock.withLock {
                defer { currentConfig = new; currentModels = models; currentEngine = engine }
                return currentEngine
            }
        }
        retired.stop()
        log.setLevel(new.logLevel)

        if new.mqtt == old.mqtt {
            let before = Daemon.subscriptions(old), after = Daemon.subscriptions(new)
            report.unsubscribed = before.filter { !after.contains($0) }
            report.subscribed = after.filter { !before.contains($0) }
            // When not connected, the connect handler subscribes the new config's topics.
            if let c = client, c.isConnected {
                for t in report.unsubscribed {
                    do { try c.unsubscribe(t) } catch { log.error("reload: \(error)") }
                }
                for t in report.subscribed {
                    do { try subscribe(t, qos: new.mqtt.qos) } catch { log.error("reload: \(error)") }
                }
            }
        } else {
            report.reconnected = true
            try parts.restart(.brokerClient)
        }
        // The listener is ServiceLifecycle's: a daemon without one has nothing to restart.
        if report.httpChanged { try parts.restart(.http) }
        counters.declare(new)
        refreshEnrollments(force: true)
        for hook in lock.withLock({ reloadHooks }) { hook(new) }
        return report
    }

    /// Registers work to do after each successful reload (e.g. rebuilding alert rules from the new config).
    public func onReload(_ hook: @escaping @Sendable (Config) -> Void) {
        lock.withLock { reloadHooks.append(hook) }
    }

    /// What the alert center was built from: each alerting pipeline's alert settings, the labels
    /// its rules read (model labels, labels file, label groups), and its model's task and threshold.
    static func alertShape(_ c: Config, currentModels: [String: Model], ruleLabels: [String: [String]]) -> [String] {
        c.pipelines.filter { $0.alert != nil }.map { p in
            let m = currentModels[p.model]
            return "\(p.name)|\(p.model)|\(String(describing: p.alert))|\(ruleLabels[p.name] ?? [])|\(m?.task ?? "")|\(String(describing: m?.threshold))"
        } + ["actions: \(c.actions)", "homeassistant: \(String(describing: c.homeAssistant))", "node: \(c.node)",
           "publish_detections: \(c.mqtt.publishDetections)"]
    }

    /// Loads each model some pipeline uses, once, from disk (so a replaced file is picked up).
    static func loadModels(_ config: Config) throws -> [String: Model] {
        var models: [String: Model] = [:]
        for p in config.pipelines where models[p.model] == nil {
            guard let m = config.model(named: p.model) else { continue }
            guard FileManager.default.fileExists(atPath: m.path) else {
                throw ModelError(model: m.name, path: m.path, message: "model file not found (models.\(m.name).path)")
            }
            models[m.name] = try Model(name: m.name, path: m.path, threads: m.threads)
        }
        return models
    }
}
