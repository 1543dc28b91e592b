import Foundation

/// A local action an alert can trigger (DESIGN.md: mqtt, exec, webhook, file).
public struct ActionSettings: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case mqtt(topic: String, payload: String, clearPayload: String?, qos: Int32, retain: Bool)
        case exec(argv: [String], timeoutSeconds: Double, maxConcurrent: Int)
        case webhook(url: String, timeoutSeconds: Double, retries: Int, headers: [String: String])
        case file(path: String, raiseValue: String, clearValue: String?)
    }
    public var name: String
    public var kind: Kind
    /// Also run when the alert clears.
    public var onClear: Bool

    static func parse(name: String, _ o: ConfigObject, resolve: (String) -> String) throws -> ActionSettings {
        let type = try o.requiredString("type")
        let onClear = try o.bool("on_clear", default: false)
        let kind: Kind
        switch type {
        case "mqtt":
            let topic = try o.requiredString("topic")
            // Placeholders are filled from topic levels and names, which hold no wildcards; a
            // '+' or '#' written in the template would make every publish fail at alert time.
            let fixed = topic.replacingOccurrences(of: #"\{[a-z_]+\}"#, with: "x", options: .regularExpression)
            if let w = fixed.first(where: { $0 == "+" || $0 == "#" }) {
                throw o.error("topic", "\"\(topic)\" contains the wildcard '\(w)'; an action publishes to one concrete topic (use {device}, {pipeline}, ... for the parts that vary)")
            }
            guard !fixed.isEmpty, !fixed.utf8.contains(0) else { throw o.error("topic", "must be a non-empty MQTT topic") }
            kind = .mqtt(topic: topic, payload: try o.string("payload", default: "{alert}"),
                         clearPayload: try o.string("clear_payload"),
                         qos: Int32(try o.int("qos", default: 1, in: 0...2)), retain: try o.bool("retain", default: false))
        case "exec":
            guard let argv = try o.stringArray("argv"), let first = argv.first, !first.isEmpty else {
                throw o.error("argv", "exec needs argv with the program first")
            }
            guard first.hasPrefix("/") else { throw o.error("argv[0]", "must be an absolute path (no shell, no PATH lookup)") }
            kind = .exec(argv: argv, timeoutSeconds: try o.double("timeout_s", default: 10, in: 0.01...3600),
                         maxConcurrent: try o.int("max_concurrent", default: 2, in: 1...64))
        case "webhook":
            let url = try o.requiredString("url")
            guard let u = URL(string: url), ["http", "https"].contains(u.scheme ?? ""), u.host != nil else {
                throw o.error("url", "must be an http:// or https:// URL")
            }
            var headers: [String: String] = [:]
            if let h = try o.object("headers") {
                for k in h.keys { headers[k] = try h.string(k) }
                try h.finish()
            }
            kind = .webhook(url: url, timeoutSeconds: try o.double("timeout_s", default: 5, in: 0.01...600),
                            retries: try o.int("retries", default: 3, in: 0...100), headers: headers)
        case "file":
            kind = .file(path: resolve(try o.requiredString("path")), raiseValue: try o.string("value", default: "1"),
                         clearValue: try o.string("clear_value"))
        default:
            throw o.error("type", "unknown action type \"\(type)\" (mqtt, exec, webhook or file)")
        }
        try o.finish()
        return ActionSettings(name: name, kind: kind, onClear: onClear)
    }
}
