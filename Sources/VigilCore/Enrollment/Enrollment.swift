import Foundation

/// A sound a household taught one pipeline (issue 18): a few prototype embeddings of the
/// model's `vigil.embedding` output, and the cosine similarity at which a window counts as
/// that sound. `positive` adds `label` to the pipeline's scores (it alerts like any other
/// label); `ignore` marks a recurring false alarm: a window that matches it scores 0 on
/// every label the model would alert on.
public struct Enrollment: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case positive, ignore }

    public var uuid: String
    public var created: Double
    public var pipeline: String
    public var label: String
    public var kind: Kind
    /// `vigil.version` of the model whose embeddings these are: another model's embedding
    /// space is another space, so vigild skips enrollments of a different version.
    public var modelVersion: String
    /// Unit vectors, one per enrolled clip.
    public var prototypes: [[Float]]
    public var threshold: Double
    /// Where the clips came from: file names, or `alert:UUID`.
    public var source: String

    public init(uuid: String = RowID.make(), created: Double = Date().timeIntervalSince1970, pipeline: String, label: String,
                kind: Kind, modelVersion: String, prototypes: [[Float]], threshold: Double, source: String) {
        self.uuid = uuid; self.created = created; self.pipeline = pipeline; self.label = label; self.kind = kind
        self.modelVersion = modelVersion; self.prototypes = prototypes; self.threshold = threshold; self.source = source
    }

    /// Why `label` cannot name an enrolled sound to alert on, or nil. An alert's label travels
    /// into MQTT topics (`{label}` in an action's topic: '/', '+' and '#' would change or break
    /// it), argv (a leading '-' reads as an option), log lines and tables (a newline splits
    /// them): letters, digits, '_', '-', '.' and inner spaces, at most 64 characters, not
    /// starting with '-'.
    public static func labelProblem(_ label: String) -> String? {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "_-. "))
        if label.isEmpty { return "is empty" }
        if label.count > 64 { return "is \(label.count) characters long (at most 64)" }
        if let bad = label.unicodeScalars.first(where: { !allowed.contains($0) }) {
            let shown = bad.properties.generalCategory == .control ? String(format: "U+%04X", bad.value) : "'\(bad)'"
            return "holds \(shown): use letters, digits, '_', '-', '.' and spaces (it goes into MQTT topics, commands and log lines)"
        }
        if label.hasPrefix("-") { return "starts with '-' (an action's command would read it as an option)" }
        if label != label.trimmingCharacters(in: .whitespaces) { return "starts or ends with a space" }
        return nil
    }

    /// The highest cosine similarity of a unit `embedding` to a prototype.
    public func similarity(_ embedding: [Float]) -> Double {
        var best = -Float.infinity
        for p in prototypes where p.count == embedding.count { best = max(best, Enrollment.dot(p, embedding)) }
        return Double(best)
    }

    @inline(__always) static func dot(_ a: [Float], _ b: [Float]) -> Float {
        var s: Float = 0
        a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in for i in 0..<min(x.count, y.count) { s += x[i] * y[i] } } }
        return s
    }

    /// The similarity as a score in [0, 1] whose bar is the rule's: the enrollment's
    /// threshold lands exactly on `minScore`, so the pipeline's rule (min_score, for_frames,
    /// cooldown) treats an enrolled label like a model label. Linear on each side of it.
    /// `threshold` (default: the enrollment's own) is the one in force, e.g. a device's
    /// online calibration (`DeviceCalibration`).
    public func score(similarity s: Double, minScore m: Double, threshold bar: Double? = nil) -> Double {
        let t = min(max(bar ?? threshold, 1e-6), 1 - 1e-6)
        if s >= t { return min(1, m + (1 - m) * (s - t) / (1 - t)) }
        return max(0, m * s / t)
    }

    /// Float32 little-endian rows, as the `prototypes` column holds them.
    public var prototypeBytes: [UInt8] { Enrollment.littleEndianBytes(prototypes) }

    /// Rows of floats as Float32 little-endian bytes, row after row (the `prototypes` column,
    /// a device's saved near misses); `prototypes(from:dim:)` reads them back.
    public static func littleEndianBytes(_ rows: [[Float]]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(rows.reduce(0) { $0 + $1.count } * 4)
        for row in rows {
            #if _endian(little)
            row.withUnsafeBytes { out.append(contentsOf: $0) }   // already Float32 little-endian: one copy a row
            #else
            for v in row { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            #endif
        }
        return out
    }

    /// Rows of `dim` floats from `prototypeBytes`; nil when the length does not fit.
    public static func prototypes(from bytes: [UInt8], dim: Int) -> [[Float]]? {
        guard dim > 0, bytes.count % (dim * 4) == 0, !bytes.isEmpty else { return nil }
        let floats = stride(from: 0, to: bytes.count, by: 4).map { i in
            Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
        }
        return stride(from: 0, to: floats.count, by: dim).map { Array(floats[$0..<$0 + dim]) }
    }
}

/// The enrollments vigild applies, per pipeline, swapped whole when the log's change
/// counter moves (vigilctl wrote) or on SIGHUP. Read by every worker lane on every window.
/// Also keeps each device's online calibration of each positive enrollment
/// (`DeviceCalibration`) per (pipeline, device, enrollment), at most `maxCalibrations` of
/// them (a device past that keeps the enrolled threshold) and at most `maxNearMisses`
/// remembered embeddings in all (a ring that is full still replaces its oldest): a publisher
/// inventing device names cannot grow vigild without bound.
public final class EnrollmentBook: @unchecked Sendable {
    // @unchecked Sendable: `byPipeline`, `calibrations` are guarded by `lock`.
    public struct Key: Hashable, Sendable { public let pipeline: String; public let device: String; public let uuid: String }
    private let lock = NSLock()
    private var byPipeline: [String: [Enrollment]] = [:]
    private var calibrations: [Key: DeviceCalibration] = [:]
    public static let maxCalibrations = 100_000
    /// 32768 x 64 floats = 8 MiB at the shipped model's embedding size.
    public static let maxNearMisses = 32_768
    private var remembered = 0
    /// Whether any calibration changed since `calibrationsIfChanged` last took them.
    private var changed = false
    /// The log's change counter last loaded (`EnrollmentLog.changeCounter`).
    public private(set) var version: Int64 = -1

    public init() {}

    /// Swaps the enrollments in; the calibrations of enrollments that are gone are dropped
    /// (an enrollment made again has a new uuid and learns afresh).
    public func replace(_ all: [Enrollment], version: Int64) {
        let grouped = Dictionary(grouping: all, by: \.pipeline)
        let kept = Set(all.map(\.uuid))
        lock.withLock {
            byPipeline = grouped; self.version = version
            let before = calibrations.count
            calibrations = calibrations.filter { kept.contains($0.key.uuid) }
            remembered = calibrations.values.reduce(0) { $0 + $1.nearMisses.count }
            if calibrations.count != before { changed = true }
        }
    }

    public func enrollments(pipeline: String) -> [Enrollment] { lock.withLock { byPipeline[pipeline] ?? [] } }

    public var count: Int { lock.withLock { byPipeline.values.reduce(0) { $0 + $1.count } } }

    /// One window of `device`: its similarity to `e` (and its unit embedding) updates the
    /// device's calibration; returns the threshold that was in force for this window and how
    /// many consecutive windows, up to this one, reached it.
    @discardableResult
    public func observe(_ e: Enrollment, pipeline: String, device: String, similarity: Double, embedding: [Float] = [],
                        _ s: DeviceCalibration.Settings) -> (threshold: Double, run: Int) {
        let key = Key(pipeline: pipeline, device: device, uuid: e.uuid)
        return lock.withLock {
            if calibrations[key] == nil {
                guard calibrations.count < EnrollmentBook.maxCalibrations else { return (e.threshold, similarity >= e.threshold ? s.forFrames : 0) }
                calibrations[key] = DeviceCalibration()
            }
            // In place (a copy would copy the ring of near misses on every one remembered).
            let before = calibrations[key]!.nearMisses.count, learned = calibrations[key]!.learned
            let bar = calibrations[key]!.observe(similarity, embedding: embedding, enrolled: e.threshold, s,
                                                 mayGrow: remembered < EnrollmentBook.maxNearMisses)
            remembered += calibrations[key]!.nearMisses.count - before
            // A level moves with (nearly) every window; a ring only when it remembers one.
            if case .nearMisses = s.kind { changed = changed || calibrations[key]!.learned != learned } else { changed = true }
            return (bar, calibrations[key]!.run)
        }
    }

    /// Every device's calibration (vigilctl status, metrics, saving).
    public func calibrationLevels() -> [Key: DeviceCalibration] { lock.withLock { calibrations } }

    /// Every device's calibration if any changed since the last call, else nil: vigild saves
    /// them all under one key, and a home's near misses come rarely, so most saves (every
    /// `baseline.snapshot_s`, up to 11 MB of JSON at the budget) would rewrite the same bytes.
    public func calibrationsIfChanged() -> [Key: DeviceCalibration]? {
        lock.withLock {
            guard changed else { return nil }
            changed = false
            return calibrations
        }
    }

    /// A save that failed: the next chance saves again.
    public func markChanged() { lock.withLock { changed = true } }

    /// Restores saved calibrations (at start), for enrollments in use or not yet loaded.
    public func loadCalibrations(_ saved: [Key: DeviceCalibration]) {
        lock.withLock {
            for (k, v) in saved where calibrations[k] == nil && remembered + v.nearMisses.count <= EnrollmentBook.maxNearMisses {
                calibrations[k] = v
                remembered += v.nearMisses.count
            }
        }
    }
}
