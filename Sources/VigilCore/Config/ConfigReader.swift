import Foundation

/// A config error naming the key path and, where known, the line.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let file: String?
    public let path: String
    public let line: Int?
    public let message: String

    public init(file: String? = nil, path: String, line: Int? = nil, message: String) {
        self.file = file; self.path = path; self.line = line; self.message = message
    }

    public var description: String {
        var where_ = file ?? "config"
        if let line { where_ += ":\(line)" }
        return path.isEmpty ? "\(where_): \(message)" : "\(where_): \(path): \(message)"
    }
}

/// Reads one JSON object of the config, tracking which keys were read so that
/// `finish()` can reject unknown ones (a typo must not silently fall back to a default).
public final class ConfigObject {
    public let path: String
    let members: [(String, JSONValue)]
    let context: ConfigContext
    private var read: Set<String> = []

    init(path: String, members: [(String, JSONValue)], context: ConfigContext) {
        self.path = path; self.members = members; self.context = context
    }

    public var keys: [String] { members.map(\.0) }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public func error(_ key: String, _ message: String) -> ConfigError {
        let p = key.isEmpty ? path : keyPath(key)
        return ConfigError(file: context.file, path: p, line: context.lines[p] ?? context.lines[path], message: message)
    }

    public func has(_ key: String) -> Bool {
        guard let v = members.first(where: { $0.0 == key })?.1 else { return false }
        return v != .null
    }

    /// The raw value; null counts as absent.
    public func raw(_ key: String) -> JSONValue? {
        read.insert(key)
        guard let v = members.first(where: { $0.0 == key })?.1, v != .null else { return nil }
        return v
    }

    public func string(_ key: String) throws -> String? {
        guard let v = raw(key) else { return nil }
        guard case .string(let s) = v else { throw error(key, "must be a string") }
        return s
    }

    public func string(_ key: String, default d: String) throws -> String { try string(key) ?? d }

    public func requiredString(_ key: String) throws -> String {
        guard let s = try string(key) else { throw error(key, "is required") }
        guard !s.isEmpty else { throw error(key, "must not be empty") }
        return s
    }

    public func double(_ key: String, in range: ClosedRange<Double>? = nil) throws -> Double? {
        guard let v = raw(key) else { return nil }
        guard case .number(let d) = v else { throw error(key, "must be a number") }
        if let range, !range.contains(d) { throw error(key, "must be between \(JSONValue.format(range.lowerBound)) and \(JSONValue.format(range.upperBound)), got \(JSONValue.format(d))") }
        return d
    }

    public func double(_ key: String, default d: Double, in range: ClosedRange<Double>? = nil) throws -> Double {
        try double(key, in: range) ?? d
    }

    public func int(_ key: String, in range: ClosedRange<Int>? = nil) throws -> Int? {
        guard let v = raw(key) else { return nil }
        guard case .number(let d) = v, d == d.rounded(), abs(d) < 1e15 else { throw error(key, "must be an integer") }
        let n = Int(d)
        if let range, !range.contains(n) { throw error(key, "must be between \(range.lowerBound) and \(range.upperBound), got \(n)") }
        return n
    }

    public func int(_ key: String, default d: Int, in range: ClosedRange<Int>? = nil) throws -> Int {
        try int(key, in: range) ?? d
    }

    public func bool(_ key: String, default d: Bool) throws -> Bool { try bool(key) ?? d }

    /// nil when absent (or null): the caller's default applies later.
    public func bool(_ key: String) throws -> Bool? {
        guard let v = raw(key) else { return nil }
        guard case .bool(let b) = v else { throw error(key, "must be true or false") }
        return b
    }

    public func stringArray(_ key: String) throws -> [String]? {
        guard let v = raw(key) else { return nil }
        guard case .array(let items) = v else { throw error(key, "must be an array of strings") }
        return try items.enumerated().map { i, item in
            guard case .string(let s) = item else { throw error("\(key)[\(i)]", "must be a string") }
            return s
        }
    }

    public func intArray(_ key: String) throws -> [Int]? {
        guard let v = raw(key) else { return nil }
        guard case .array(let items) = v else { throw error(key, "must be an array of integers") }
        return try items.enumerated().map { i, item in
            guard case .number(let d) = item, d == d.rounded() else { throw error("\(key)[\(i)]", "must be an integer") }
            return Int(d)
        }
    }

    public func object(_ key: String) throws -> ConfigObject? {
        guard let v = raw(key) else { return nil }
        guard case .object(let m) = v else { throw error(key, "must be an object") }
        return ConfigObject(path: keyPath(key), members: m, context: context)
    }

    public func objectArray(_ key: String) throws -> [ConfigObject]? {
        guard let v = raw(key) else { return nil }
        guard case .array(let items) = v else { throw error(key, "must be an array of objects") }
        return try items.enumerated().map { i, item in
            guard case .object(let m) = item else { throw error("\(key)[\(i)]", "must be an object") }
            return ConfigObject(path: "\(keyPath(key))[\(i)]", members: m, context: context)
        }
    }

    /// Each member of an object-valued key, as (name, object): `models`, `actions`.
    public func namedObjects(_ key: String) throws -> [(String, ConfigObject)]? {
        guard let obj = try object(key) else { return nil }
        return try obj.members.map { name, value in
            obj.read.insert(name)
            guard case .object(let m) = value else { throw obj.error(name, "must be an object") }
            return (name, ConfigObject(path: obj.keyPath(name), members: m, context: context))
        }
    }

    /// Rejects keys that were never read.
    public func finish() throws {
        for (key, _) in members where !read.contains(key) {
            let known = read.sorted().joined(separator: ", ")
            throw error(key, "unknown key" + (known.isEmpty ? "" : " (known here: \(known))"))
        }
    }
}

final class ConfigContext {
    let file: String?
    let lines: [String: Int]
    init(file: String?, lines: [String: Int]) { self.file = file; self.lines = lines }
}

extension ConfigObject {
    /// Parses config text (JSON with comments and trailing commas) into the root object.
    static func root(text: [UInt8], file: String?) throws -> ConfigObject {
        var parser = JSONParser(relaxed: true, trackLines: true)
        let value: JSONValue
        do {
            value = try parser.parse(text)
        } catch let e as JSONParseError {
            throw ConfigError(file: file, path: "", line: e.line, message: "syntax error at column \(e.column): \(e.message)")
        }
        guard case .object(let members) = value else {
            throw ConfigError(file: file, path: "", line: 1, message: "the config must be a JSON object")
        }
        return ConfigObject(path: "", members: members, context: ConfigContext(file: file, lines: parser.keyLines))
    }
}
