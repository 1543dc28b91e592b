import Foundation
import SQLite
import VigilCore

/// `vigilctl report`: what the log says about a time range, gathered for one HTML page
/// (ReportHTML.swift). The counts and latency percentiles are `LogReader.stats` itself, so
/// the page and `vigilctl stats` cannot disagree; the sync figures are `syncStatus`.
public struct Report: Sendable {
    /// One point of a device's score timeline: the highest score in a time bucket of a label
    /// other than the group's background (its most frequent label: still, normal), so events
    /// stand out as peaks; a classifier's top score alone is near 1 all the time.
    public struct Point: Sendable { public var ts: Double; public var maxScore: Double; public var count: Int }

    public struct AlertMark: Sendable {
        public var uuid: String
        public var ts: Double
        public var pipeline: String
        public var device: String
        public var state: String
        public var label: String
        public var score: Double
        public var severity: String
        public var evidenceBytes: Int?
    }

    /// What an alert kept, as the page embeds it: a thumbnail or a sound clip, already cut to size.
    public struct Media: Sendable {
        public enum Kind: Sendable { case image, audio, none }
        public var alert: String
        public var kind: Kind
        public var mime: String
        public var bytes: [UInt8]
        /// What was done to fit the budget (`downscaled 640×480 to 160×120`, `first 4.0 s of 9.5 s`), or why nothing is shown.
        public var note: String
    }

    public struct Group: Sendable {
        public var stats: GroupStats
        /// The most frequent label, left out of the timeline.
        public var background: String? { stats.labels.first?.0 }
        public var timeline: [Point]
        public var alerts: [AlertMark]
    }

    /// Bounds that keep the page small whatever the log holds (issue 19, item 11).
    public struct Limits: Sendable {
        /// Buckets per timeline (one SVG point each).
        public var buckets = 240
        /// Pipeline/device timelines drawn (the busiest first; the table lists all).
        public var groups = 40
        /// Alert markers per timeline.
        public var marks = 200
        /// Alerts whose evidence is embedded (the newest first).
        public var evidence = 20
        /// A frame larger than this (bytes or width) is downscaled for its thumbnail.
        public var thumbnailBytes = 24 * 1024
        public var thumbnailWidth = 240
        /// Seconds of sound kept per alert, centred on the alert.
        public var audioSeconds = 4.0
        public init() {}
    }

    public var since: Double
    public var until: Double
    /// The timelines' x axis: the part of the range that has data.
    public var axisFrom: Double
    public var axisTo: Double
    public var generated: Double
    public var zone: TimeSpec.Zone
    public var node: String
    public var groups: [Group]
    public var total: GroupStats
    public var sync: SyncStatus
    public var media: [String: Media]
    /// Alerts with evidence beyond `limits.evidence`, not embedded.
    public var evidenceLeftOut: Int
    public var limits: Limits

    /// Everything about `filter`'s range (its since and until must be set).
    public init(_ reader: LogReader, filter: RowFilter, now: Double, zone: TimeSpec.Zone, node: String = "", limits: Limits = Limits()) throws {
        since = filter.since ?? 0
        until = filter.until ?? now
        generated = now; self.zone = zone; self.node = node; self.limits = limits
        let (all, total) = try reader.stats(filter)
        self.total = total
        sync = try reader.syncStatus(now: now)

        var alertFilter = RowFilter()
        alertFilter.since = filter.since; alertFilter.until = filter.until
        alertFilter.pipelines = filter.pipelines; alertFilter.devices = filter.devices
        let (alertTable, _) = try reader.alerts(alertFilter, limit: nil)
        func col(_ name: String) -> Int { alertTable.column(named: name)! }
        let marks = alertTable.rows.map { r in
            AlertMark(uuid: r[col("uuid")].string ?? "", ts: r[col("ts")].double ?? 0, pipeline: r[col("pipeline")].string ?? "",
                      device: r[col("device")].string ?? "", state: r[col("state")].string ?? "", label: r[col("label")].string ?? "",
                      score: r[col("score")].double ?? 0, severity: r[col("severity")].string ?? "",
                      evidenceBytes: r[col("evidence")].int.map { Int($0) })
        }
        let byGroup = Dictionary(grouping: marks) { GroupKey(pipeline: $0.pipeline, device: $0.device) }
        let drawn = Set(all.sorted { $0.detections + $0.alerts > $1.detections + $1.alerts }.prefix(limits.groups)
            .map { GroupKey(pipeline: $0.pipeline, device: $0.device) })
        // The x axis spans the range where there is data (a 24 h report of a 5 min test is not a dot).
        let first = max(since, total.first ?? since), last = min(until, max(total.last ?? until, marks.last?.ts ?? 0))
        let (lo, hi) = last > first ? (first, last) : (since, until)
        axisFrom = lo; axisTo = hi
        groups = try all.map { g in
            let key = GroupKey(pipeline: g.pipeline, device: g.device)
            let timeline = drawn.contains(key) ? try reader.timeline(key, background: g.labels.first?.0, filter: filter, from: lo, to: hi, buckets: limits.buckets) : []
            return Group(stats: g, timeline: timeline, alerts: Array((byGroup[key] ?? []).suffix(limits.marks)))
        }

        media = [:]
        let withEvidence = marks.filter { $0.state == "raised" && $0.evidenceBytes != nil }
        evidenceLeftOut = max(0, withEvidence.count - limits.evidence)
        for m in withEvidence.suffix(limits.evidence) {
            media[m.uuid] = Report.media(for: m, reader: reader, limits: limits)
        }
    }

    /// The trigger frame as a thumbnail, or the sound around the alert, within `limits`.
    static func media(for alert: AlertMark, reader: LogReader, limits: Limits) -> Media {
        var result = Media(alert: alert.uuid, kind: .none, mime: "", bytes: [], note: "")
        guard let row = try? reader.evidence(alert.uuid) else { result.note = "evidence not found"; return result }
        guard let data = FileManager.default.contents(atPath: row.file), let entries = Tar.entries(Array(data)) else {
            result.note = FileManager.default.fileExists(atPath: row.file) ? "cannot read \(row.file) (group vigil may)" : "evidence file gone (evicted)"
            return result
        }
        if let png = entries.first(where: { $0.name.hasSuffix("-trigger.png") }) ?? entries.first(where: { $0.name.hasSuffix(".png") }) {
            result.kind = .image; result.mime = "image/png"
            result.bytes = png.bytes
            result.note = png.name
            if png.bytes.count > limits.thumbnailBytes || (PNGDecoder.decode(png.bytes).map { $0.width > limits.thumbnailWidth } ?? false) {
                if let image = PNGDecoder.decode(png.bytes) {
                    let small = Thumbnail.downscale(image, maxWidth: limits.thumbnailWidth)
                    result.bytes = PNG.grey(width: small.width, height: small.height, pixels: small.pixels)
                    result.note = "\(png.name), downscaled \(image.width)×\(image.height) to \(small.width)×\(small.height)"
                } else {
                    result = Media(alert: alert.uuid, kind: .none, mime: "", bytes: [], note: "\(png.name) is not a PNG this reads")
                }
            }
            return result
        }
        if let wav = entries.first(where: { $0.name.hasSuffix(".wav") }) {
            // Where the alert falls in the clip: alert.json has the clip's start (its item ts) and
            // before_s; keep audioSeconds around the alert.
            var before = 0.0
            if let manifest = entries.first(where: { $0.name == "alert.json" }), let j = try? JSONParser.parse(manifest.bytes) {
                before = j["before_s"]?.double ?? 0
                if case .array(let items)? = j["items"], let start = items.first(where: { $0["name"]?.string == wav.name })?["ts"]?.double {
                    before = alert.ts - start
                }
            }
            guard let (clip, note) = Thumbnail.clip(wav.bytes, centre: before, seconds: limits.audioSeconds) else {
                result.note = "\(wav.name) is not a 16-bit PCM WAV this reads"
                return result
            }
            return Media(alert: alert.uuid, kind: .audio, mime: "audio/wav", bytes: clip, note: "\(wav.name), \(note)")
        }
        result.note = entries.filter { $0.name != "alert.json" }.map(\.name).joined(separator: ", ")
        return result
    }
}

extension LogReader {
    /// The highest score per time bucket of one pipeline and device, between `from` and `to`.
    func timeline(_ key: GroupKey, background: String?, filter: RowFilter, from: Double, to: Double, buckets: Int) throws -> [Report.Point] {
        var f = filter
        f.pipelines = [key.pipeline]; f.devices = [key.device]
        let (clause, values) = f.sql(states: false)
        let width = max((to - from) / Double(buckets), 1e-3)
        // A summary row (`store: "events"`) is a period's counts, not an event: its score is the
        // period's highest, often a background one, and its period's events are rows of their own.
        let events = (clause.isEmpty ? " WHERE" : clause + " AND") + " label <> ?"
        let sql = "SELECT CAST((ts - ?) / ? AS INTEGER) AS b, max(CASE WHEN label = ? THEN 0 ELSE score END), count(*) "
            + "FROM detections\(events) GROUP BY b ORDER BY b"
        return try query(sql, [.real(from), .real(width), background.map { .text($0) } ?? .null] + values + [.text(EventGate.summaryLabel)]).map { r in
            Report.Point(ts: from + (Double(r[0].int ?? 0) + 0.5) * width, maxScore: r[1].double ?? 0, count: Int(r[2].int ?? 0))
        }
    }
}

/// Cutting evidence down to what a page should carry.
enum Thumbnail {
    /// Box-averaged by a whole factor until at most `maxWidth` wide; colour becomes grey.
    static func downscale(_ image: PNGDecoder.Image, maxWidth: Int) -> (width: Int, height: Int, pixels: [UInt8]) {
        let grey = image.grey
        let f = max(1, (image.width + maxWidth - 1) / maxWidth)
        let w = max(1, image.width / f), h = max(1, image.height / f)
        var out = [UInt8](repeating: 0, count: w * h)
        for y in 0..<h {
            for x in 0..<w {
                var sum = 0
                for dy in 0..<f { for dx in 0..<f { sum += Int(grey[(y * f + dy) * image.width + x * f + dx]) } }
                out[y * w + x] = UInt8(sum / (f * f))
            }
        }
        return (w, h, out)
    }

    /// At most `seconds` of a mono 16-bit WAV, centred on `centre` seconds into it.
    static func clip(_ wav: [UInt8], centre: Double, seconds: Double) -> ([UInt8], String)? {
        guard wav.count >= 44, Array(wav[0..<4]) == Array("RIFF".utf8), Array(wav[8..<12]) == Array("WAVE".utf8) else { return nil }
        func le(_ at: Int, _ n: Int) -> Int { (0..<n).reduce(0) { $0 | Int(wav[at + $1]) << (8 * $1) } }
        // vigild writes one fmt chunk then data (WAV.pcm16); find data anyway.
        var i = 12
        var rate = 0, channels = 0, bits = 0
        while i + 8 <= wav.count {
            let id = String(decoding: wav[i..<(i + 4)], as: UTF8.self), size = le(i + 4, 4)
            if id == "fmt ", i + 24 <= wav.count { channels = le(i + 10, 2); rate = le(i + 12, 4); bits = le(i + 22, 2) }
            if id == "data" {
                guard rate > 0, channels == 1, bits == 16 else { return nil }
                let samples = min(size, wav.count - i - 8) / 2
                let keep = min(samples, Int(seconds * Double(rate)))
                let start = max(0, min(samples - keep, Int(centre * Double(rate)) - keep / 2))
                let body = Array(wav[(i + 8 + start * 2)..<(i + 8 + (start + keep) * 2)])
                var floats = [Float](repeating: 0, count: keep)
                for k in 0..<keep { floats[k] = Float(Int16(bitPattern: UInt16(body[2 * k]) | UInt16(body[2 * k + 1]) << 8)) / 32768 }
                let note = keep == samples ? String(format: "%.1f s", Double(samples) / Double(rate))
                    : String(format: "%.1f s of %.1f s around the alert", Double(keep) / Double(rate), Double(samples) / Double(rate))
                return (WAV.pcm16(sampleRate: rate, samples: floats), note)
            }
            i += 8 + size + (size & 1)
        }
        return nil
    }
}
