import Foundation

/// A parsed JSON value. Objects keep their key order (config errors and output follow it).
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members.first(where: { $0.0 == key })?.1 }
        return nil
    }

    /// Follows a dotted path (`AM2301.Temperature`) through nested objects.
    public func value(atPath path: String) -> JSONValue? {
        var current: JSONValue? = self
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            current = current?[String(part)]
        }
        return current
    }

    public var double: Double? {
        switch self {
        case .number(let d): return d
        case .bool(let b): return b ? 1 : 0   // Zigbee2MQTT sends occupancy/contact as booleans
        default: return nil
        }
    }
    public var string: String? { if case .string(let s) = self { return s }; return nil }

    /// Serialises compactly. Non-finite numbers become null (JSON has no NaN).
    public var serialized: String {
        var out = ""
        write(to: &out)
        return out
    }

    func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let d): out += JSONValue.format(d)
        case .string(let s): JSONValue.quote(s, into: &out)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() { if i > 0 { out += "," }; v.write(to: &out) }
            out += "]"
        case .object(let m):
            out += "{"
            for (i, (k, v)) in m.enumerated() {
                if i > 0 { out += "," }
                JSONValue.quote(k, into: &out); out += ":"; v.write(to: &out)
            }
            out += "}"
        }
    }

    static func format(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return "\(d)"
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        // Labels, devices and uuids almost never need escaping: append them whole (this
        // per-character loop was ~5 % of vigild's CPU when it ran for every string).
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += s
            out += "\""
            return
        }
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}

/// A JSON syntax error with the line and column where it was found.
public struct JSONParseError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let line: Int
    public let column: Int
    /// True when the text is well-formed so far but over a bound (`maxMembers`, `maxDepth`).
    public var overLimit = false
    public var description: String { "line \(line), column \(column): \(message)" }
}

/// A strict-by-default JSON parser over bytes. With `relaxed`, `//` and `/* */` comments
/// and trailing commas are accepted (the config file format). Depth and members per object
/// are bounded so hostile payloads cannot exhaust the stack, and parsing is linear in the
/// input (duplicate keys are found through a set, lines are counted once): a 60,000-key
/// object once took seconds, because each key was compared with every key before it.
public struct JSONParser {
    public var relaxed = false
    public var maxDepth = 64
    /// Members one object may hold; past it the parse fails (`overLimit`). Payload decoders
    /// set `limits.max_json_keys`; the default only keeps any input bounded.
    public var maxMembers = 100_000
    /// For each object parsed, the line of each key (config errors name lines).
    public private(set) var keyLines: [String: Int] = [:]
    private var bytes: [UInt8] = []
    private var i = 0
    private var trackPath: [String] = []
    private var trackLines: Bool
    /// The last position computed: offsets only grow while keys are tracked, so each line
    /// number continues from the previous one instead of counting from the start.
    private var cursor = (offset: 0, line: 1, column: 1)

    public init(relaxed: Bool = false, trackLines: Bool = false) {
        self.relaxed = relaxed
        self.trackLines = trackLines
    }

    public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        var p = JSONParser()
        return try p.parse(bytes)
    }

    public static func parse(_ text: String) throws -> JSONValue {
        try parse(Array(text.utf8))
    }

    public mutating func parse(_ input: [UInt8]) throws -> JSONValue {
        bytes = input
        i = 0
        keyLines = [:]
        trackPath = []
        cursor = (0, 1, 1)
        // Skip a UTF-8 byte-order mark.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
        try skipSpace()
        let v = try value(depth: 0)
        try skipSpace()
        if i < bytes.count { throw error("unexpected \(describe(bytes[i])) after the value") }
        return v
    }

    private func position(_ at: Int) -> (Int, Int) {
        var (from, line, col) = cursor.offset <= at ? cursor : (0, 1, 1)
        let end = min(at, bytes.count)
        while from < end {
            if bytes[from] == 0x0A { line += 1; col = 1 } else { col += 1 }
            from += 1
        }
        return (line, col)
    }

    /// `position`, remembering where it got to (key lines are asked for in increasing order).
    private mutating func advancePosition(_ at: Int) -> Int {
        let (line, col) = position(at)
        cursor = (min(at, bytes.count), line, col)
        return line
    }

    private func error(_ message: String, at: Int? = nil, overLimit: Bool = false) -> JSONParseError {
        let (l, c) = position(at ?? i)
        return JSONParseError(message: message, line: l, column: c, overLimit: overLimit)
    }

    private func describe(_ b: UInt8) -> String {
        (0x21...0x7E).contains(b) ? "'\(Character(UnicodeScalar(b)))'" : String(format: "byte 0x%02x", b)
    }

    private mutating func skipSpace() throws {
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { i += 1; continue }
            if relaxed, b == UInt8(ascii: "/"), i + 1 < bytes.count {
                if bytes[i + 1] == UInt8(ascii: "/") {
                    while i < bytes.count, bytes[i] != 0x0A { i += 1 }
                    continue
                }
                if bytes[i + 1] == UInt8(ascii: "*") {
                    // An unclosed comment would silently swallow the rest of the file.
                    let start = i
                    i += 2
                    while i + 1 < bytes.count, !(bytes[i] == UInt8(ascii: "*") && bytes[i + 1] == UInt8(ascii: "/")) { i += 1 }
                    guard i + 1 < bytes.count else { throw error("unterminated /* comment", at: start) }
                    i += 2
                    continue
                }
            }
            return
        }
    }

    private mutating func value(depth: Int) throws -> JSONValue {
        guard depth < maxDepth else { throw error("nesting deeper than \(maxDepth)", overLimit: true) }
        guard i < bytes.count else { throw error("unexpected end of input") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        case let b: throw error("unexpected \(describe(b))")
        }
    }

    private mutating func literal(_ word: String) throws {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, Array(bytes[i..<i + w.count]) == w else {
            throw error("invalid literal (expected \(word))")
        }
        i += w.count
    }

    private mutating func number() throws -> Double {
        let start = i
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        func digits() -> Int {
            let s = i
            while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
            return i - s
        }
        if digits() == 0 { throw error("invalid number", at: start) }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            if digits() == 0 { throw error("invalid number: digits must follow '.'", at: start) }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            if digits() == 0 { throw error("invalid number exponent", at: start) }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        guard let d = Double(text) else { throw error("invalid number \(text)", at: start) }
        return d
    }

    private mutating func string() throws -> String {
        let start = i
        i += 1
        var out = [UInt8]()
        while true {
            guard i < bytes.count else { throw error("unterminated string", at: start) }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") { i += 1; break }
            if b < 0x20 { throw error("control character in string") }
            if b == UInt8(ascii: "\\") {
                i += 1
                guard i < bytes.count else { throw error("unterminated string", at: start) }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    // A high surrogate combines only with a following low one; anything else
                    // (lone or mismatched surrogates) decodes as U+FFFD, never as arithmetic on junk.
                    if (0xD800..<0xDC00).contains(scalar), i + 5 < bytes.count,
                       bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                        let save = i
                        i += 2
                        let low = try hex4()
                        if (0xDC00..<0xE000).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            i = save
                        }
                    }
                    let u = UnicodeScalar(scalar) ?? "\u{FFFD}"
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw error("invalid escape \\\(describe(e))")
                }
                continue
            }
            out.append(b)
            i += 1
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw error("string is not valid UTF-8", at: start) }
        return s
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let d: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw error("invalid \\u escape")
            }
            v = v * 16 + d
            i += 1
        }
        return v
    }

    private mutating func array(depth: Int) throws -> JSONValue {
        i += 1
        var items: [JSONValue] = []
        try skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
        while true {
            if trackLines { trackPath.append("[\(items.count)]") }
            items.append(try value(depth: depth + 1))
            if trackLines { trackPath.removeLast() }
            try skipSpace()
            guard i < bytes.count else { throw error("unterminated array") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                try skipSpace()
                if relaxed, i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                continue
            }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw error("expected ',' or ']' in array, found \(describe(bytes[i]))")
        }
    }

    private mutating func object(depth: Int) throws -> JSONValue {
        i += 1
        let objectStart = i
        var members: [(String, JSONValue)] = []
        // Small objects (nearly all) are checked for duplicates by a scan, larger ones by a set.
        var keys = Set<String>()
        try skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
        while true {
            guard i < bytes.count else { throw error("unterminated object") }
            guard bytes[i] == UInt8(ascii: "\"") else { throw error("expected a quoted key, found \(describe(bytes[i]))") }
            guard members.count < maxMembers else {
                throw error("object has more than \(maxMembers) keys", at: objectStart, overLimit: true)
            }
            let keyStart = i
            let key = try string()
            let duplicate: Bool
            if members.count < 16 {
                duplicate = members.contains(where: { $0.0 == key })
                if members.count == 15 { keys = Set(members.map(\.0)); keys.insert(key) }
            } else {
                duplicate = !keys.insert(key).inserted
            }
            if duplicate { throw error("duplicate key \"\(key)\"", at: keyStart) }
            try skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw error("expected ':' after key \"\(key)\"") }
            i += 1
            try skipSpace()
            if trackLines {
                trackPath.append(key)
                keyLines[JSONParser.joinPath(trackPath)] = advancePosition(keyStart)
            }
            members.append((key, try value(depth: depth + 1)))
            if trackLines { trackPath.removeLast() }
            try skipSpace()
            guard i < bytes.count else { throw error("unterminated object") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                try skipSpace()
                if relaxed, i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                continue
            }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            throw error("expected ',' or '}' in object, found \(describe(bytes[i]))")
        }
    }

    /// Joins path parts as a key path: `pipelines[0].alert.min_score`.
    static func joinPath(_ parts: [String]) -> String {
        var s = ""
        for p in parts {
            if p.hasPrefix("[") { s += p } else { s += s.isEmpty ? p : "." + p }
        }
        return s
    }
}
