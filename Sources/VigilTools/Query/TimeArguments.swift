import VigilCore

/// The options that take a time or a duration: read with `TimeSpec`, which
/// only vigilctl needs, so they live here rather than in VigilCore's `Arguments`.
extension Arguments {
    /// `--since`/`--until`: the forms of `TimeSpec.instant`; a time without an offset is
    /// read in `zone` (local unless `--utc`).
    public func instant(_ name: String, now: Double, zone: TimeSpec.Zone) throws -> Double? {
        guard let s = string(name) else { return nil }
        guard let t = TimeSpec.instant(s, now: now, zone: zone) else {
            throw UsageError("\(name): expected \(TimeSpec.instantForms), got \"\(s)\"")
        }
        return t
    }

    /// Seconds: `30`, `90s`, `15m`, `2h`.
    public func seconds(_ name: String) throws -> Double? {
        guard let s = string(name) else { return nil }
        if let v = Double(s), v.isFinite, v >= 0 { return v }
        guard let d = TimeSpec.duration(s) else {
            throw UsageError("\(name): expected seconds or a duration (30, 90s, 15m, 2h), got \"\(s)\"")
        }
        return d
    }
}
