import Foundation

/// Parses and prints the times `vigilctl` takes and shows: durations (`15m`, `2h`, `7d`,
/// `1h30m`), ISO-8601 instants (UTC unless they carry an offset) and `@EPOCH`.
public enum TimeSpec {
    static let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800]

    /// Seconds in a duration such as `15m`, `2h`, `7d`, `1h30m`, `1.5h`, `90s`; nil when malformed.
    public static func duration(_ text: String) -> Double? {
        var total = 0.0
        var number = ""
        var sawUnit = false
        for c in text {
            if c.isNumber || c == "." {
                number.append(c)
            } else if let unit = units[c] {
                guard let v = Double(number), v.isFinite, v >= 0 else { return nil }
                total += v * unit
                number = ""
                sawUnit = true
            } else {
                return nil
            }
        }
        // Every number needs its unit: "15" alone is ambiguous (minutes? seconds?).
        guard number.isEmpty, sawUnit else { return nil }
        return total
    }

    /// An instant for `--since`/`--until`: a duration back from `now`, an ISO-8601 time,
    /// `@EPOCH` seconds, or `now`.
    public static func instant(_ text: String, now: Double) -> Double? {
        if text == "now" { return now }
        if let d = duration(text) { return now - d }
        if text.hasPrefix("@") { return Double(text.dropFirst()).flatMap { $0.isFinite ? $0 : nil } }
        return iso8601(text)
    }

    /// `YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|±HH[:MM]]`; without an offset the time is UTC
    /// (the log stores UTC and gateways run on UTC).
    public static func iso8601(_ text: String) -> Double? {
        let b = Array(text.utf8)
        var i = 0
        func digits(_ n: Int) -> Int? {
            guard i + n <= b.count else { return nil }
            var v = 0
            for k in i..<(i + n) {
                guard (48...57).contains(b[k]) else { return nil }
                v = v * 10 + Int(b[k] - 48)
            }
            i += n
            return v
        }
        func expect(_ c: Character) -> Bool {
            guard i < b.count, b[i] == c.asciiValue! else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), expect("-"), let month = digits(2), expect("-"), let day = digits(2) else { return nil }
        var hour = 0, minute = 0, second = 0
        var fraction = 0.0
        var offset = 0
        if i < b.count, b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: "t") || b[i] == UInt8(ascii: " ") {
            i += 1
            guard let h = digits(2), expect(":"), let m = digits(2) else { return nil }
            hour = h; minute = m
            if expect(":") {
                guard let s = digits(2) else { return nil }
                second = s
                if expect(".") || expect(",") {
                    let start = i
                    while i < b.count, (48...57).contains(b[i]) { i += 1 }
                    guard i > start, let f = Double("0." + String(decoding: b[start..<i], as: UTF8.self)) else { return nil }
                    fraction = f
                }
            }
            if expect("Z") || expect("z") {
            } else if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                let sign = b[i] == UInt8(ascii: "+") ? 1 : -1
                i += 1
                guard let oh = digits(2) else { return nil }
                _ = expect(":")
                let om = i < b.count ? (digits(2) ?? -1) : 0
                guard om >= 0, oh <= 23, om <= 59 else { return nil }
                offset = sign * (oh * 3600 + om * 60)
            }
        }
        guard i == b.count else { return nil }
        guard (1...12).contains(month), (1...31).contains(day), hour <= 23, minute <= 59, second <= 60 else { return nil }
        var t = tm()
        t.tm_year = Int32(year - 1900); t.tm_mon = Int32(month - 1); t.tm_mday = Int32(day)
        t.tm_hour = Int32(hour); t.tm_min = Int32(minute); t.tm_sec = Int32(second)
        let epoch = timegm(&t)
        // timegm normalises 2026-02-31 to March 3rd: refuse dates that do not exist.
        guard t.tm_mday == Int32(day), t.tm_mon == Int32(month - 1) else { return nil }
        return Double(epoch) + fraction - Double(offset)
    }

    /// `2026-11-29T14:02:11.123Z` (UTC, milliseconds).
    public static func format(_ ts: Double) -> String {
        guard ts.isFinite else { return "-" }
        var whole = floor(ts)
        var ms = Int(((ts - whole) * 1000).rounded())
        if ms == 1000 { whole += 1; ms = 0 }
        var t = time_t(whole)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), ms)
    }

    /// A short age: `45s`, `12m`, `3h05m`, `2d04h`.
    public static func age(_ seconds: Double) -> String {
        let s = max(0, Int(seconds.rounded()))
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" }
        if s < 86400 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
        return String(format: "%dd%02dh", s / 86400, (s % 86400) / 3600)
    }
}
