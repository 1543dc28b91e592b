import Foundation

/// Writes a value into a file on raise and another on clear: a sysfs LED
/// (`/sys/class/leds/NAME/brightness`) or GPIO (`/sys/class/gpio/gpioN/value`).
/// Writes of one action go through one serial queue, so a clear never overtakes its raise.
public final class FileAction: AlertAction {
    public let name: String
    public var type: String { "file" }
    let path: String
    let value: String
    let clearValue: String?
    let onClear: Bool
    private let queue: DispatchQueue

    public init(name: String, path: String, value: String, clearValue: String?, onClear: Bool) {
        self.name = name; self.path = path; self.value = value; self.clearValue = clearValue; self.onClear = onClear
        queue = DispatchQueue(label: "vigil.action.\(name)")
    }

    /// A `clear_value` implies running on clear.
    public var runsOnClear: Bool { onClear || clearValue != nil }
    public var bound: Double { 1 }

    public func run(_ alert: AlertEvent, done: @escaping @Sendable (ActionOutcome) -> Void) {
        let text = AlertTemplate.render(alert.state == .cleared ? (clearValue ?? value) : value, AlertTemplate.values(alert))
        let (path, name, type) = (self.path, self.name, self.type)
        queue.async {
            let start = DispatchTime.now().uptimeNanoseconds
            var outcome = ActionOutcome(action: name, type: type, status: .ok)
            do {
                // No create, no rename: sysfs attributes exist already and take a plain write.
                guard let h = FileHandle(forWritingAtPath: path) else {
                    throw ActionError(message: "cannot open \(path) for writing (missing, or no permission)")
                }
                defer { try? h.close() }
                // A regular file (tests, a flag file) is replaced; sysfs ignores the size.
                try? h.truncate(atOffset: 0)
                try h.write(contentsOf: Data(text.utf8))
            } catch {
                outcome.status = .error
                outcome.detail = "\(path): \(error)"
            }
            outcome.durationMs = elapsedMs(since: start)
            done(outcome)
        }
    }
}
