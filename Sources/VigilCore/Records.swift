import Foundation

// The three records that travel the flow: a model's result (`Detection`), a rule's decision
// (`AlertEvent`, before any action ran) and the stored alert row (`AlertRecord`, with the
// actions' outcomes). One file so the shapes that reach the log, the broker and the cloud
// can be read side by side.

/// One result of running a pipeline's model on one input.
public struct Detection: Sendable, Equatable {
    public var uuid: String
    public var ts: Double
    public var pipeline: String
    public var device: String
    public var model: String
    public var label: String
    public var score: Double
    public var scores: [(String, Double)]
    public var latencyMs: Double
    /// The device's own alert threshold, when its pipeline has a false-alarm budget (a
    /// stateful anomaly model): the rule raises at it instead of `min_score`. Infinity while
    /// the device's baseline warms up (no alert); nil for every other pipeline.
    public var threshold: Double?
    /// Where the scores of enrolled sounds start in `scores` (Enrollment/): they are appended
    /// after the model's, and alert through the pipeline's rule whatever its `labels` say.
    /// Not stored; nil when none was scored.
    public var enrolledFrom: Int?

    public init(uuid: String = Detection.newUUID(), ts: Double, pipeline: String, device: String, model: String,
                label: String, score: Double, scores: [(String, Double)], latencyMs: Double, threshold: Double? = nil) {
        self.uuid = uuid; self.ts = ts; self.pipeline = pipeline; self.device = device; self.model = model
        self.label = label; self.score = score; self.scores = scores; self.latencyMs = latencyMs; self.threshold = threshold
    }

    public static func == (a: Detection, b: Detection) -> Bool {
        a.uuid == b.uuid && a.ts == b.ts && a.label == b.label && a.score == b.score
    }

    /// The detection as one JSON object (the `detections` message and sync record body).
    public var json: JSONValue {
        .object([("uuid", .string(uuid)), ("ts", .number(ts)), ("pipeline", .string(pipeline)),
                 ("device", .string(device)), ("model", .string(model)), ("label", .string(label)),
                 ("score", .number(score)), ("scores", .object(scores.map { ($0.0, .number($0.1)) })),
                 ("latency_ms", .number(latencyMs))])
    }

    public static func newUUID() -> String { RowID.make() }

    /// `{"label": score, ...}` as stored in `detections.scores`.
    public var scoresJSON: String {
        JSONValue.object(scores.map { ($0.0, .number($0.1)) }).serialized
    }
}

/// A raised or cleared alert: what the rules decided, before any action ran.
public struct AlertEvent: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable { case raised, cleared }
    public var uuid: String
    public var ts: Double
    public var node: String
    public var pipeline: String
    public var device: String
    public var state: State
    public var label: String
    public var score: Double
    public var severity: String

    public init(uuid: String = Detection.newUUID(), ts: Double, node: String, pipeline: String, device: String,
                state: State, label: String, score: Double, severity: String) {
        self.uuid = uuid; self.ts = ts; self.node = node; self.pipeline = pipeline; self.device = device
        self.state = state; self.label = label; self.score = score; self.severity = severity
    }

    /// The alert message published on `vigil/{node}/alerts/{pipeline}/{device}` and POSTed by webhooks.
    public var json: JSONValue {
        .object([("uuid", .string(uuid)), ("ts", .number(ts)), ("node", .string(node)), ("pipeline", .string(pipeline)),
                 ("device", .string(device)), ("state", .string(state.rawValue)), ("label", .string(label)),
                 ("score", .number(score)), ("severity", .string(severity))])
    }
}

/// An alert transition as stored in `alerts`.
public struct AlertRecord: Sendable, Equatable {
    public var uuid: String
    public var ts: Double
    public var pipeline: String
    public var device: String
    public var state: String          // raised | cleared
    public var label: String
    public var score: Double
    public var severity: String
    /// JSON: each action and its outcome.
    public var actions: String

    public init(uuid: String = Detection.newUUID(), ts: Double, pipeline: String, device: String, state: String,
                label: String, score: Double, severity: String, actions: String = "[]") {
        self.uuid = uuid; self.ts = ts; self.pipeline = pipeline; self.device = device; self.state = state
        self.label = label; self.score = score; self.severity = severity; self.actions = actions
    }
}
