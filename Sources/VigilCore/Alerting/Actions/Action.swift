import Foundation

/// What one action did for one alert; stored in `alerts.actions` as JSON.
public struct ActionOutcome: Sendable, Equatable {
    public enum Status: String, Sendable { case pending, ok, error, timeout, skipped }
    public var action: String
    public var type: String
    public var status: Status
    public var durationMs: Double
    public var detail: String?
    /// Webhook: how many requests were made.
    public var attempts: Int?

    public init(action: String, type: String, status: Status, durationMs: Double = 0, detail: String? = nil, attempts: Int? = nil) {
        self.action = action; self.type = type; self.status = status; self.durationMs = durationMs
        self.detail = detail; self.attempts = attempts
    }

    public var json: JSONValue {
        var m: [(String, JSONValue)] = [("action", .string(action)), ("type", .string(type)), ("status", .string(status.rawValue))]
        if status != .pending { m.append(("duration_ms", .number((durationMs * 10).rounded() / 10))) }
        if let attempts { m.append(("attempts", .number(Double(attempts)))) }
        if let detail { m.append(("detail", .string(detail))) }
        return .object(m)
    }

    public static func json(_ outcomes: [ActionOutcome]) -> String { JSONValue.array(outcomes.map(\.json)).serialized }
}

/// A local action an alert triggers.
///
/// Lifecycle contract: `run` returns at once (it never blocks the caller, a worker lane)
/// and calls `done` exactly once, from any thread, within a bound the action's settings
/// fix (its timeout, times its attempts). Actions are shared by every alert that names them.
public protocol AlertAction: Sendable {
    var name: String { get }
    var type: String { get }
    /// Whether the action also runs when an alert clears.
    var runsOnClear: Bool { get }
    /// The longest `run` can take before `done` is called, in seconds (shutdown waits this long).
    var bound: Double { get }
    func run(_ alert: AlertEvent, done: @escaping @Sendable (ActionOutcome) -> Void)
}

/// Monotonic milliseconds since `start` (DispatchTime.uptimeNanoseconds).
func elapsedMs(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 }

/// Substitutes `{node}`, `{pipeline}`, `{device}`, `{label}`, `{score}`, `{state}`,
/// `{severity}`, `{uuid}`, `{ts}` and `{alert}` (the alert as JSON) in one pass, so a
/// value that itself contains `{...}` is never expanded again. Unknown names stay as written.
public enum AlertTemplate {
    public static let names = ["node", "pipeline", "device", "label", "score", "state", "severity", "uuid", "ts", "alert"]

    public static func values(_ a: AlertEvent) -> [String: String] {
        ["node": a.node, "pipeline": a.pipeline, "device": a.device, "label": a.label,
         "score": String(format: "%.4f", a.score), "state": a.state.rawValue, "severity": a.severity,
         "uuid": a.uuid, "ts": String(format: "%.3f", a.ts), "alert": a.json.serialized]
    }

    public static func render(_ template: String, _ values: [String: String]) -> String {
        var out = ""
        var rest = template[...]
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            if let close = rest[open...].firstIndex(of: "}"),
               let v = values[String(rest[rest.index(after: open)..<close])] {
                out += v
                rest = rest[rest.index(after: close)...]
            } else {
                out += "{"
                rest = rest[rest.index(after: open)...]
            }
        }
        return out + rest
    }

    /// Renders one argv element. Whatever a value holds, the result stays one argument
    /// (argv is an array, there is no shell); and a value is refused when it would make
    /// the argument start with '-' (a device named `--output=/etc/passwd` must not be read
    /// as an option) or holds a NUL byte (C strings would cut it).
    public static func argument(_ template: String, _ values: [String: String]) throws -> String {
        let s = render(template, values)
        if s.hasPrefix("-") && !template.hasPrefix("-") {
            throw ActionError(message: "argument \"\(template)\" would become \"\(s.prefix(80))\", which starts with '-' and could be read as an option")
        }
        if s.utf8.contains(0) { throw ActionError(message: "argument \"\(template)\" would contain a NUL byte") }
        return s
    }
}

public struct ActionError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// The configured actions, by name: builds each from its settings (the config's `type`
/// string picks the factory) and runs a list of them for one alert.
public final class ActionSet: Sendable {
    public let actions: [String: any AlertAction]

    public init(_ settings: [ActionSettings], outlet: MQTTOutlet) {
        var a: [String: any AlertAction] = [:]
        for s in settings { a[s.name] = ActionSet.make(s, outlet: outlet) }
        actions = a
    }

    public init(actions list: [any AlertAction]) {
        actions = Dictionary(list.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    static func make(_ s: ActionSettings, outlet: MQTTOutlet) -> any AlertAction {
        switch s.kind {
        case let .mqtt(topic, payload, clearPayload, qos, retain):
            return MQTTAction(name: s.name, topic: topic, payload: payload, clearPayload: clearPayload, qos: qos,
                              retain: retain, onClear: s.onClear, outlet: outlet)
        case let .exec(argv, timeout, maxConcurrent):
            return ExecAction(name: s.name, argv: argv, timeoutSeconds: timeout, maxConcurrent: maxConcurrent, onClear: s.onClear)
        case let .webhook(url, timeout, retries, headers):
            return WebhookAction(name: s.name, url: URL(string: url)!, timeoutSeconds: timeout, retries: retries,
                                 headers: headers, onClear: s.onClear)
        case let .file(path, value, clearValue):
            return FileAction(name: s.name, path: path, value: value, clearValue: clearValue, onClear: s.onClear)
        }
    }

    /// The actions of `names` that run for this transition, in the order named.
    public func selected(_ names: [String], for state: AlertEvent.State) -> [any AlertAction] {
        names.compactMap { actions[$0] }.filter { state == .raised || $0.runsOnClear }
    }

    /// The longest any of `names` can take.
    public func bound(_ names: [String]) -> Double { names.compactMap { actions[$0]?.bound }.max() ?? 0 }

    /// Starts every action at once; `done` gets their outcomes, in order, when the last finishes.
    public func run(_ list: [any AlertAction], for alert: AlertEvent, done: @escaping @Sendable ([ActionOutcome]) -> Void) {
        guard !list.isEmpty else { done([]); return }
        let collector = OutcomeCollector(count: list.count, done: done)
        for (i, a) in list.enumerated() {
            a.run(alert) { collector.set(i, $0) }
        }
    }
}

/// Gathers outcomes from actions finishing on different threads.
final class OutcomeCollector: Sendable {
    private let state: Guarded<(outcomes: [ActionOutcome?], left: Int)>
    private let done: @Sendable ([ActionOutcome]) -> Void

    init(count: Int, done: @escaping @Sendable ([ActionOutcome]) -> Void) {
        state = Guarded((Array(repeating: nil, count: count), count))
        self.done = done
    }

    func set(_ i: Int, _ o: ActionOutcome) {
        let finished = state.withLock { s -> [ActionOutcome]? in
            guard s.outcomes[i] == nil else { return nil }   // a second call is a bug in the action: ignore it
            s.outcomes[i] = o
            s.left -= 1
            return s.left == 0 ? s.outcomes.map { $0! } : nil
        }
        if let finished { done(finished) }
    }
}
