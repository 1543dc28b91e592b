import Foundation

/// Per pipeline: whether raised alerts keep their evidence, and how much input around the
/// trigger (`pipelines[].evidence`: `true`, `false`, or an object with these keys).
public struct EvidenceSettings: Sendable, Equatable {
    public var enabled = true
    /// Input kept from before the detection that raised the alert...
    public var beforeSeconds: Double
    /// ...and after it (the evidence is written once this much has arrived, or a little
    /// later if the device goes quiet).
    public var afterSeconds: Double
    /// The most each device's ring of recent input may hold in memory. The ring always keeps
    /// the newest frame, so a frame larger than this is still the trigger's evidence.
    public var maxKB: Int = 1024

    /// Defaults by input kind: a few seconds of camera and audio (2 s before, 1 s after);
    /// readings come slowly, so the window that raised an anomaly needs minutes.
    public init(kind: PipelineSettings.Kind) {
        switch kind {
        case .image, .audio: beforeSeconds = 2; afterSeconds = 1
        case .readings, .vector: beforeSeconds = 120; afterSeconds = 5
        }
    }

    static func parse(_ p: ConfigObject, kind: PipelineSettings.Kind) throws -> EvidenceSettings {
        var s = EvidenceSettings(kind: kind)
        guard let raw = p.raw("evidence") else { return s }
        if case .bool(let b) = raw { s.enabled = b; return s }
        guard case .object = raw, let o = try p.object("evidence") else {
            throw p.error("evidence", "must be true, false or an object with before_s, after_s, max_kb")
        }
        s.beforeSeconds = try o.double("before_s", default: s.beforeSeconds, in: 0...3600)
        s.afterSeconds = try o.double("after_s", default: s.afterSeconds, in: 0...600)
        s.maxKB = try o.int("max_kb", default: s.maxKB, in: 16...(256 << 10))
        try o.finish()
        return s
    }
}

extension PipelineSettings {
    /// The evidence settings in force: the config's, else the defaults for this kind of input.
    public var evidenceSettings: EvidenceSettings { evidence ?? EvidenceSettings(kind: kind) }

    /// What a pipeline's decoder produces, for the evidence kept of it.
    public enum Kind: String, Sendable { case image, audio, readings, vector }

    public var kind: Kind {
        if isImage { return .image }
        if isAudio { return .audio }
        return format == .json ? .readings : .vector
    }
}
