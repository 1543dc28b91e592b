import Foundation
import MQTT

/// The daemon's broker connection as seen by alerts and actions: set once the client
/// exists; publishing before that (or while the broker is away) is an error the caller records.
public final class MQTTOutlet: Sendable {
    /// MQTTClient is itself thread-safe; the box only guards which client it is.
    private let client = Guarded<MQTTClient?>(nil)

    public init() {}

    public func set(_ c: MQTTClient?) { client.set(c) }

    /// Queues a publish (libmosquitto sends it from its network thread); never blocks.
    public func publish(_ topic: String, _ payload: [UInt8], qos: Int32, retain: Bool) throws {
        guard let c = client.value else {
            throw ActionError(message: "cannot publish to \(topic): not connected to the broker")
        }
        try c.publish(topic, payload, qos: qos, retain: retain)
    }
}

/// Publishes a templated payload to a templated topic (a siren, a light, another system).
public struct MQTTAction: AlertAction {
    public let name: String
    public var type: String { "mqtt" }
    let topic: String
    let payload: String
    let clearPayload: String?
    let qos: Int32
    let retain: Bool
    let onClear: Bool
    let outlet: MQTTOutlet

    public init(name: String, topic: String, payload: String, clearPayload: String?, qos: Int32, retain: Bool,
                onClear: Bool, outlet: MQTTOutlet) {
        self.name = name; self.topic = topic; self.payload = payload; self.clearPayload = clearPayload
        self.qos = qos; self.retain = retain; self.onClear = onClear; self.outlet = outlet
    }

    /// A `clear_payload` implies running on clear (an "OFF" for the "ON").
    public var runsOnClear: Bool { onClear || clearPayload != nil }
    public var bound: Double { 0 }

    public func run(_ alert: AlertEvent, done: @escaping @Sendable (ActionOutcome) -> Void) {
        let start = DispatchTime.now().uptimeNanoseconds
        let values = AlertTemplate.values(alert)
        let t = AlertTemplate.render(topic, values)
        let body = AlertTemplate.render(alert.state == .cleared ? (clearPayload ?? payload) : payload, values)
        var outcome = ActionOutcome(action: name, type: type, status: .ok)
        if !MQTTClient.isValidTopic(t) {
            outcome.status = .error
            outcome.detail = "topic \"\(t)\" is not a valid MQTT topic"
        } else {
            do { try outlet.publish(t, Array(body.utf8), qos: qos, retain: retain) } catch {
                outcome.status = .error
                outcome.detail = "\(error)"
            }
        }
        outcome.durationMs = elapsedMs(since: start)
        done(outcome)
    }
}
