import Foundation
import VigilCore

/// Parses and prints the times `vigilctl` takes and shows: durations (`15m`, `2h`, `7d`,
/// `1h30m`, `-1h`), `today`/`yesterday`/`tomorrow`, RFC 3339 / ISO-8601 instants and `@EPOCH`,
/// as journalctl takes them (systemd.time(7)). A time without an offset is in the zone the
/// tables print (local unless `--utc`), so a time copied from a table means the same instant.
public enum TimeSpec {
    /// Which clock people read: the host's local time (TZ, /etc/localtime) or UTC.
    public enum Zone: Sendable, Equatable { case local, utc }

    /// What `--since`/`--until` accept, for error messages.
    public static let instantForms = "15m, -1h, 2h30m, 7d back from now, today, yesterday, tomorrow, now, "
        + "2026-11-29 14:00, 2026-11-29T14:00:00Z (RFC 3339; no offset: local time, UTC with --utc) or @EPOCH"

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

    /// An instant for `--since`/`--until`: a duration back from `now` (`15m`, or `-15m` as
    /// journalctl writes it; `+15m` is ahead), `today`/`yesterday`/`tomorrow` (midnight in
    /// `zone`), an ISO-8601 time, `@EPOCH` seconds, or `now`.
    public static func instant(_ text: String, now: Double, zone: Zone = .utc) -> Double? {
        switch text {
        case "now": return now
        case "today": return midnight(now, days: 0, zone: zone)
        case "yesterday": return midnight(now, days: -1, zone: zone)
        case "tomorrow": return midnight(now, days: 1, zone: zone)
        default: break
        }
        if text.hasPrefix("-"), let d = duration(String(text.dropFirst())) { return now - d }
        if text.hasPrefix("+"), let d = duration(String(text.dropFirst())) { return now + d }
        if let d = duration(text) { return now - d }
        if text.hasPrefix("@") { return Double(text.dropFirst()).flatMap { $0.isFinite ? $0 : nil } }
        return iso8601(text, zone: zone)
    }

    /// The start of the day `days` away from the one holding `now`, in `zone`.
    public static func midnight(_ now: Double, days: Int, zone: Zone) -> Double {
        var t = time_t(floor(now))
        var parts = tm()
        if zone == .utc { gmtime_r(&t, &parts) } else { localtime_r(&t, &parts) }
        parts.tm_hour = 0; parts.tm_min = 0; parts.tm_sec = 0
        parts.tm_mday += Int32(days)
        parts.tm_isdst = -1   // whatever daylight saving time says on that day
        return Double(zone == .utc ? timegm(&parts) : mktime(&parts))
    }

    /// `YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|±HH[:MM]]`; without an offset the time is in `zone`.
    public static func iso8601(_ text: String, zone: Zone = .utc) -> Double? {
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
        var hasOffset = false
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
                hasOffset = true
            } else if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                let sign = b[i] == UInt8(ascii: "+") ? 1 : -1
                i += 1
                guard let oh = digits(2) else { return nil }
                _ = expect(":")
                let om = i < b.count ? (digits(2) ?? -1) : 0
                guard om >= 0, oh <= 23, om <= 59 else { return nil }
                offset = sign * (oh * 3600 + om * 60)
                hasOffset = true
            }
        }
        guard i == b.count else { return nil }
        guard (1...12).contains(month), (1...31).contains(day), hour <= 23, minute <= 59, second <= 60 else { return nil }
        var t = tm()
        t.tm_year = Int32(year - 1900); t.tm_mon = Int32(month - 1); t.tm_mday = Int32(day)
        t.tm_hour = Int32(hour); t.tm_min = Int32(minute); t.tm_sec = Int32(second)
        let local = zone == .local && !hasOffset
        t.tm_isdst = -1
        let epoch = local ? mktime(&t) : timegm(&t)
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

    /// A table cell: `2026-11-29 15:02:11` in local time, `2026-11-29 14:02:11Z` in UTC
    /// (seconds are enough to read; JSON lines and CSV keep milliseconds and UTC).
    public static func short(_ ts: Double, zone: Zone) -> String {
        guard ts.isFinite else { return "-" }
        var t = time_t(floor(ts))
        var p = tm()
        if zone == .utc { gmtime_r(&t, &p) } else { localtime_r(&t, &p) }
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d", Int(p.tm_year) + 1900, Int(p.tm_mon) + 1, Int(p.tm_mday),
                      Int(p.tm_hour), Int(p.tm_min), Int(p.tm_sec)) + (zone == .utc ? "Z" : "")
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
