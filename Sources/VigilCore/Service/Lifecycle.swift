import Foundation
import Sockets

/// vigild's life as a service: start the parts in order (Service/ServiceParts.swift: the
/// daemon's, then the watchdog and HTTP listener added here), tell systemd READY=1, then react
/// to signals on the main queue until SIGTERM stops them in reverse.
/// Signal handlers only run there (dispatch sources), never in signal context.
public final class ServiceLifecycle: @unchecked Sendable {
    // @unchecked Sendable: `stopping` is touched only on the main queue; `http` is a Guarded.
    public let configPath: String
    public let daemon: Daemon
    public let notify: SdNotify
    public let health: HealthMonitor
    public let watchdog: Watchdog
    private let http = Guarded<HTTPServer?>(nil)
    private var sources: [DispatchSourceSignal] = []
    private var stopping = false
    /// SIGTERM waits this long for in-flight frames and actions before it commits what is done
    /// and exits (the unit's TimeoutStopSec is longer, so systemd never has to SIGKILL).
    /// `VIGIL_STOP_TIMEOUT_S` overrides it (tests; a unit with a longer TimeoutStopSec).
    public var stopTimeout = ProcessInfo.processInfo.environment["VIGIL_STOP_TIMEOUT_S"].flatMap(Double.init) ?? 20

    public init(config: Config, configPath: String, notify: SdNotify = SdNotify()) throws {
        self.configPath = configPath
        self.notify = notify
        daemon = try Daemon(config: config)
        health = HealthMonitor(daemon: daemon, stallAfter: max(5, (notify.watchdogInterval ?? 20) / 2))
        watchdog = Watchdog(daemon: daemon, notify: notify, health: health)
        let watchdog = watchdog
        daemon.parts.register(.watchdog, start: { watchdog.start() }, stop: { watchdog.stop() })
        daemon.parts.register(.http, start: { [unowned self] in startHTTP() }, stop: { [unowned self] in stopHTTP() },
                              restart: { [unowned self] in
            stopHTTP()
            startHTTP()
        })
    }

    /// Starts everything and never returns: the process ends in `shutdown`.
    public func run() -> Never {
        Signals.ignore([SIGTERM, SIGINT, SIGHUP, SIGPIPE])
        // Sources first: a SIGTERM that arrives while the broker and listener start is kept
        // and handled once the main queue runs, not lost to SIG_IGN.
        for (sig, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            sources.append(source(sig) { [unowned self] in shutdown(name) })
        }
        sources.append(source(SIGHUP) { [unowned self] in reload() })
        do {
            try daemon.start()
        } catch {
            notify.send(["STATUS=cannot start: \(error)", "ERRNO=22"])
            FileHandle.standardError.write(Data("vigild: \(error)\n".utf8))
            exit(1)
        }
        let c = daemon.config
        notify.ready(status: "running: \(c.pipelines.count) pipelines, waiting for frames")
        log.notice("vigild \(VigilVersion.string) ready: node \(c.node), \(c.pipelines.count) pipelines, store \(c.storage.path)"
                   + (notify.isEnabled ? ", systemd notify on" : "")
                   + (notify.watchdogInterval.map { String(format: ", watchdog %.0f s", $0) } ?? ""))
        dispatchMain()
    }

    private func source(_ sig: Int32, _ handler: @escaping @Sendable () -> Void) -> DispatchSourceSignal {
        let s = DispatchSource.makeSignalSource(signal: sig, queue: .main)
        s.setEventHandler(handler: handler)
        s.resume()
        return s
    }

    /// The current config's listener. A failed bind is logged, not fatal: detection matters
    /// more than its dashboard.
    private func startHTTP() {
        guard let settings = daemon.config.http else { return }
        let endpoints = Endpoints(daemon: daemon, health: health)
        do {
            let server = try HTTPServer(host: settings.host, port: settings.port) { endpoints.handle($0) }
            server.start()
            http.set(server)
            log.notice("serving /healthz and /metrics on http://\(server.address)")
        } catch {
            log.error("http.listen: \(error); /healthz and /metrics are off")
        }
    }

    private func stopHTTP() {
        http.withLock { server in
            server?.stop()
            server = nil
        }
    }

    /// SIGHUP: an invalid new config or model is logged and the running one stays.
    func reload() {
        guard !stopping else { return }
        notify.reloading()
        log.notice("SIGHUP: reloading \(configPath)")
        do {
            let report = try daemon.reload(path: configPath)
            for key in report.needsRestart {
                log.warning("reload: \(key) settings changed; they apply after a restart (keeping the old ones)")
            }
            log.notice("reloaded \(configPath): \(report)")
        } catch {
            log.error("reload rejected, still running the previous config: \(error)")
        }
        notify.send(["READY=1", "STATUS=\(watchdog.currentStatus())"])
    }

    /// SIGTERM/SIGINT: stop taking frames, finish the queued ones, commit, exit 0.
    func shutdown(_ name: String) {
        guard !stopping else { return }
        stopping = true
        notify.stopping()
        log.notice("\(name): draining frames and flushing the store")
        let done = DispatchSemaphore(value: 0)
        let daemon = self.daemon
        Thread.detachNewThread {
            daemon.stop()
            done.signal()
        }
        if done.wait(timeout: .now() + stopTimeout) == .timedOut {
            let left = daemon.engine.queuedFrames
            log.error("\(name): still busy after \(stopTimeout) s (\(left) frames waiting, \(daemon.alerts.actionsInFlight) actions running); committing what is done and exiting")
            daemon.store.flush()
        }
        log.notice("stopped: \(daemon.statusLine())")
        exit(0)
    }
}
