import Foundation

/// Turns a capture into the files kept for its alert: `alert.json` (the alert, and what
/// each item is), then the input itself: camera frames as PNG (`frame-NN.png`, the one that
/// raised the alert marked `-trigger`, the frame before it `-reference`), audio as one
/// 16-bit WAV (`audio.wav`), readings or vectors as CSV (`readings.csv`, `vectors.csv`).
public enum EvidenceBundle {
    public struct Item: Sendable, Equatable {
        public var name: String
        public var ts: Double
        public var role: String?
    }

    /// The archive's entries (`alert.json` first) and the items' names.
    public static func make(_ c: EvidenceCapture) -> (entries: [Tar.Entry], items: [Item]) {
        var entries: [Tar.Entry] = []
        var items: [Item] = []
        switch c.kind {
        case .image:
            let images = c.frames.compactMap { f -> (TimedFrame, Int, Int, [UInt8])? in
                if case .image(let w, let h, let p) = f.frame { return (f, w, h, p) }
                return nil
            }
            // The trigger: the newest frame at or before the alert's time (the detection's ts is its frame's).
            let trigger = images.lastIndex { $0.0.ts <= c.alert.ts + 1e-6 } ?? (images.isEmpty ? nil : 0)
            for (i, (f, w, h, p)) in images.enumerated() {
                let role: String? = i == trigger ? "trigger" : (trigger.map { i == $0 - 1 } ?? false) ? "reference" : nil
                let name = String(format: "frame-%02d", i) + (role.map { "-" + $0 } ?? "") + ".png"
                entries.append(Tar.Entry(name: name, bytes: PNG.grey(width: w, height: h, pixels: p)))
                items.append(Item(name: name, ts: f.ts, role: role))
            }
        case .audio:
            if let (rate, samples, start) = audio(c) {
                entries.append(Tar.Entry(name: "audio.wav", bytes: WAV.pcm16(sampleRate: rate, samples: samples)))
                items.append(Item(name: "audio.wav", ts: start, role: nil))
            }
        case .readings, .vector:
            var csv = ""
            var width = 0
            for f in c.frames {
                switch f.frame {
                case .readings(let r):
                    width = max(width, r.count)
                    csv += number(f.ts) + r.map { "," + ($0.map { "\($0)" } ?? "") }.joined() + "\n"
                case .vector(let v):
                    width = max(width, v.count)
                    csv += number(f.ts) + v.map { ",\($0)" }.joined() + "\n"
                default:
                    continue
                }
            }
            let names = c.kind == .readings && c.fields.count == width ? c.fields : (0..<width).map { "v\($0)" }
            let header = (["ts"] + names.map(csvField)).joined(separator: ",") + "\n"
            let name = c.kind == .readings ? "readings.csv" : "vectors.csv"
            entries.append(Tar.Entry(name: name, bytes: Array((header + csv).utf8)))
            items.append(Item(name: name, ts: c.frames.first?.ts ?? c.alert.ts, role: nil))
        }
        var manifest: [(String, JSONValue)] = [("alert", c.alert.json), ("kind", .string(c.kind.rawValue)),
                                               ("before_s", .number(c.beforeSeconds)), ("after_s", .number(c.afterSeconds))]
        manifest.append(("items", .array(items.map { i in
            .object([("name", .string(i.name)), ("ts", .number(i.ts))] + (i.role.map { [("role", JSONValue.string($0))] } ?? []))
        })))
        entries.insert(Tar.Entry(name: "alert.json", bytes: Array((JSONValue.object(manifest).serialized + "\n").utf8)), at: 0)
        return (entries, items)
    }

    /// The samples of the frames at the trigger's rate, cut to [ts - before, ts + after].
    /// Chunks are laid end to end as they came (a lost chunk shortens the clip; it does not stretch time).
    static func audio(_ c: EvidenceCapture) -> (rate: Int, samples: [Float], start: Double)? {
        let chunks = c.frames.compactMap { f -> (ts: Double, rate: Int, samples: [Float])? in
            if case .audio(let r, let s) = f.frame, r > 0 { return (f.ts, r, s) }
            return nil
        }
        guard let rate = (chunks.first { $0.ts >= c.alert.ts } ?? chunks.last)?.rate else { return nil }
        let from = c.alert.ts - c.beforeSeconds, to = c.alert.ts + c.afterSeconds
        var out: [Float] = []
        var start: Double?
        for ch in chunks where ch.rate == rate {
            let begin = ch.ts - Double(ch.samples.count) / Double(rate)
            let first = max(0, min(ch.samples.count, Int(((from - begin) * Double(rate)).rounded(.up))))
            let last = max(first, min(ch.samples.count, Int(((to - begin) * Double(rate)).rounded(.down))))
            guard last > first else { continue }
            if start == nil { start = begin + Double(first) / Double(rate) }
            out += ch.samples[first..<last]
        }
        return out.isEmpty ? nil : (rate, out, start ?? from)
    }

    static func number(_ v: Double) -> String { String(format: "%.3f", v) }

    static func csvField(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    /// `items` as stored in the `evidence` row (names and roles).
    static func itemsJSON(_ entries: [Tar.Entry], _ items: [Item]) -> String {
        JSONValue.array(entries.map { e in
            var o: [(String, JSONValue)] = [("name", .string(e.name)), ("bytes", .number(Double(e.bytes.count)))]
            if let role = items.first(where: { $0.name == e.name })?.role { o.append(("role", .string(role))) }
            return .object(o)
        }).serialized
    }
}
