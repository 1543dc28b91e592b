/// The running service's parts, in the one order they start; they stop in reverse. Start,
/// stop (SIGTERM, `Daemon.stop`) and reload (a part whose settings changed is restarted in
/// place) all go by this list, so the order is written once.
///
/// The store, evidence, alert center and engine are live as soon as they are built (files open,
/// worker threads running; `Daemon.init` builds them in this order because each takes the one
/// before): they have no start step, and their place in the list is where they stop. The intake
/// journal is the engine's (opened and recovered while it is built, replayed as the broker
/// client starts); its one stop step, letting a frame that waits for journal room return, is
/// the broker client's, between the `offline` status and joining the MQTT thread.
public enum ServicePart: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// The log: everything after it writes to it; closed last, after everything is committed.
    case store
    /// Evidence files of raised alerts: stops by writing the captures still waiting for their after_s.
    case evidence
    /// Baseline saves and enrollment refresh (every 2 s), event-policy summaries (every 5 s): stop
    /// cancels them and writes the open summaries and the changed baselines.
    case timers
    /// Forwarding the log to the cloud: stop drains what is in flight (2 s at most).
    case sync
    /// Alert rules and actions: stop waits for running actions (each bounded by its timeout).
    case alertCenter
    /// The worker lanes: stop finishes the frames queued.
    case engine
    /// The MQTT client: starts by replaying the intake journal, then connects; stop says `offline`.
    case brokerClient
    /// systemd's watchdog and the liveness checks it runs (ServiceLifecycle).
    case watchdog
    /// The /healthz and /metrics listener (ServiceLifecycle); after the watchdog so that the
    /// first /healthz already has a liveness result.
    case http

    public var description: String {
        switch self {
        case .store: "store"
        case .evidence: "evidence"
        case .timers: "baseline and summary timers"
        case .sync: "sync"
        case .alertCenter: "alert center"
        case .engine: "engine"
        case .brokerClient: "broker client"
        case .watchdog: "watchdog"
        case .http: "HTTP listener"
        }
    }
}

/// Who starts, stops and restarts the parts: each part's owner registers its steps, and the
/// steps run in `ServicePart`'s order (stops in reverse), outside the lock.
public final class ServiceParts: Sendable {
    public struct Steps: Sendable {
        let start: @Sendable () throws -> Void
        let stop: @Sendable () -> Void
        /// Reload, when the part's settings changed (nil: the part keeps running as it is).
        let restart: (@Sendable () throws -> Void)?
    }

    private struct State {
        var steps: [ServicePart: Steps] = [:]
        /// Parts before this one have been started.
        var next = 0
    }
    private let state = Guarded(State())

    public init() {}

    /// A part live once built has nothing to start: leave `start` out.
    public func register(_ part: ServicePart, start: @escaping @Sendable () throws -> Void = {},
                         stop: @escaping @Sendable () -> Void, restart: (@Sendable () throws -> Void)? = nil) {
        state.withLock { $0.steps[part] = Steps(start: start, stop: stop, restart: restart) }
    }

    /// Starts, in order, the registered parts not started yet, up to and including `last`.
    /// A start that throws leaves the parts after it unstarted (and the error to the caller).
    public func start(through last: ServicePart = ServicePart.allCases.last!) throws {
        while let (part, steps) = state.withLock({ s -> (ServicePart, Steps?)? in
            guard s.next <= last.rawValue, let part = ServicePart(rawValue: s.next) else { return nil }
            s.next += 1
            return (part, s.steps[part])
        }) {
            guard let steps else { continue }
            log.debug("starting \(part)")
            try steps.start()
        }
    }

    /// Stops every registered part, last first, whether or not it was started (each stop step
    /// is harmless on a part that never ran: a daemon built and stopped without `start`).
    public func stopAll() {
        let steps = state.withLock { s in ServicePart.allCases.reversed().compactMap { p in s.steps[p].map { (p, $0) } } }
        for (part, s) in steps {
            log.debug("stopping \(part)")
            s.stop()
        }
    }

    /// Reload: replaces a running part with one built from the new settings; nothing when
    /// the part is not registered (a daemon without ServiceLifecycle has no HTTP listener).
    public func restart(_ part: ServicePart) throws {
        guard let restart = state.withLock({ $0.steps[part]?.restart }) else { return }
        log.debug("restarting \(part)")
        try restart()
    }
}
