import Foundation
import VigilCore

/// The report as one self-contained HTML page: inline CSS and SVG, evidence as data URIs,
/// no script and nothing fetched, so it opens from a file, an e-mail or a USB stick.
/// Numbers carry `data-` names (`data-stat="p95_ms"`) so tests read them from the DOM.
extension Report {
    public var html: String {
        var h = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'">
            <title>Vigil report\(node.isEmpty ? "" : " – " + Report.escape(node))</title>
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
            h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
            table{border-collapse:collapse} td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}
            td{white-space:nowrap} td.wrap{white-space:normal;max-width:420px} td.n{text-align:right;font-variant-numeric:tabular-nums}
            .muted{color:#666} .tl{margin:6px 0 14px} .alerts td{vertical-align:top}
            .ev img{max-width:240px;image-rendering:pixelated;border:1px solid #ccc} .ev audio{width:240px}
            </style></head><body>

            """
        let when = { (t: Double) in TimeSpec.short(t, zone: self.zone) }
        h += "<h1>Vigil report\(node.isEmpty ? "" : ": " + Report.escape(node))</h1>\n"
        h += "<p class=\"muted\">From <span data-range=\"since\">\(when(since))</span> to <span data-range=\"until\">\(when(until))</span>"
        h += " (\(zone == .utc ? "UTC" : "local time")); written \(when(generated)) by vigilctl \(VigilVersion.string).</p>\n"

        h += "<h2>Per pipeline and device</h2>\n<table class=\"stats\"><tr><th>pipeline</th><th>device</th><th>detections</th><th>labels</th>"
        h += "<th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>alerts raised</th></tr>\n"
        for g in groups.map(\.stats) + (groups.count > 1 ? [total] : []) { h += Report.statsRow(g) }
        h += "</table>\n"

        h += "<h2>Sync</h2>\n<table class=\"sync\">"
        h += "<tr><td>backlog</td><td class=\"n\" data-sync=\"backlog\">\(sync.unsyncedDetections + sync.unsyncedAlerts)</td>"
        h += "<td class=\"muted\">\(sync.unsyncedDetections) detections, \(sync.unsyncedAlerts) alerts</td></tr>"
        h += "<tr><td>oldest unsynced</td><td colspan=\"2\">\(sync.oldestUnsynced.map(when) ?? "none")</td></tr>"
        h += "<tr><td>last sync</td><td colspan=\"2\">\(sync.lastSyncAt.map(when) ?? "never")\(sync.lastSyncError.map { " – " + Report.escape($0) } ?? "")</td></tr>"
        h += "<tr><td>dropped by size cap</td><td class=\"n\" data-sync=\"dropped\">\(sync.droppedDetections + sync.droppedAlerts)</td><td></td></tr>"
        h += "<tr><td>database</td><td colspan=\"2\">\(String(format: "%.1f MB", Double(sync.databaseBytes) / 1_048_576))</td></tr></table>\n"

        let bucket = (axisTo - axisFrom) / Double(limits.buckets)
        h += "<h2>Scores over time</h2>\n<p class=\"muted\">Highest score of a label other than the device's most frequent one, per "
        h += (bucket < 60 ? String(format: "%.2g s", bucket) : TimeSpec.age(bucket)) + " bucket"
        h += "\(axisTo - axisFrom < 1 ? "" : ", \(when(axisFrom)) to \(when(axisTo))"); red marks: alerts raised, grey: cleared.</p>\n"
        for g in groups where !g.timeline.isEmpty || !g.alerts.isEmpty {
            h += "<div class=\"tl\"><b>\(Report.escape(g.stats.pipeline))</b> / \(Report.escape(g.stats.device))"
            h += "\(g.background.map { " <span class=\"muted\">(not \(Report.escape($0)))</span>" } ?? "")<br>\n"
            h += timelineSVG(g) + "</div>\n"
        }
        if groups.contains(where: { $0.timeline.isEmpty && $0.alerts.isEmpty }) || groups.count > limits.groups {
            h += "<p class=\"muted\">Timelines are drawn for the \(limits.groups) busiest pipelines and devices.</p>\n"
        }

        let raised = groups.flatMap(\.alerts).filter { $0.state == "raised" }.sorted { $0.ts > $1.ts }
        h += "<h2>Alerts raised (\(raised.count))</h2>\n"
        if !raised.isEmpty {
            h += "<table class=\"alerts\"><tr><th>time</th><th>pipeline / device</th><th>label</th><th>score</th><th>evidence</th></tr>\n"
            for a in raised {
                h += "<tr data-alert=\"\(a.uuid)\"><td>\(when(a.ts))</td><td>\(Report.escape(a.pipeline)) / \(Report.escape(a.device))</td>"
                h += "<td>\(Report.escape(a.label))\(a.severity.isEmpty ? "" : " <span class=\"muted\">\(Report.escape(a.severity))</span>")</td>"
                h += "<td class=\"n\">\(String(format: "%.3f", a.score))</td><td class=\"ev\">\(evidenceCell(a))</td></tr>\n"
            }
            h += "</table>\n"
            if evidenceLeftOut > 0 {
                h += "<p class=\"muted\">Evidence of \(evidenceLeftOut) older alerts is not embedded (at most \(limits.evidence) per page): vigilctl evidence UUID.</p>\n"
            }
        }
        h += "</body></html>\n"
        return h
    }

    static func statsRow(_ g: GroupStats) -> String {
        func ms(_ v: Double?, _ name: String) -> String { "<td class=\"n\" data-stat=\"\(name)\">\(v.map { String(format: "%.2f", $0) } ?? "-")</td>" }
        var r = "<tr data-pipeline=\"\(escape(g.pipeline))\" data-device=\"\(escape(g.device))\"><td>\(escape(g.pipeline))</td><td>\(escape(g.device))</td>"
        r += "<td class=\"n\" data-stat=\"detections\">\(g.detections)</td><td class=\"muted wrap\">\(escape(g.labelSummary))</td>"
        r += ms(g.p50, "p50_ms") + ms(g.p95, "p95_ms") + ms(g.p99, "p99_ms")
        r += "<td class=\"n\" data-stat=\"alerts\">\(g.alerts)</td></tr>\n"
        return r
    }

    func evidenceCell(_ a: AlertMark) -> String {
        guard a.evidenceBytes != nil else { return "<span class=\"muted\">none</span>" }
        guard let m = media[a.uuid] else { return "<span class=\"muted\">not embedded</span>" }
        let uri = "data:\(m.mime);base64," + Data(m.bytes).base64EncodedString()
        switch m.kind {
        case .image: return "<img alt=\"trigger frame\" src=\"\(uri)\"><br><span class=\"muted\">\(Report.escape(m.note))</span>"
        case .audio: return "<audio controls preload=\"none\" src=\"\(uri)\"></audio><br><span class=\"muted\">\(Report.escape(m.note))</span>"
        case .none: return "<span class=\"muted\">\(Report.escape(m.note))</span>"
        }
    }

    /// Scores 0 to 1 as a line over the axis, alerts as ticks; 720×90 px.
    func timelineSVG(_ g: Group) -> String {
        let w = 720.0, ht = 90.0, pad = 4.0
        let span = max(axisTo - axisFrom, 1e-3)
        func x(_ t: Double) -> Double { pad + (min(max(t, axisFrom), axisTo) - axisFrom) / span * (w - 2 * pad) }
        func y(_ s: Double) -> Double { pad + (1 - min(max(s, 0), 1)) * (ht - 2 * pad) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(ht))\" viewBox=\"0 0 \(Int(w)) \(Int(ht))\" role=\"img\">"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"#f7f7f7\"/>"
        s += "<line x1=\"\(pad)\" x2=\"\(w - pad)\" y1=\"\(y(0.5))\" y2=\"\(y(0.5))\" stroke=\"#ddd\"/>"
        for a in g.alerts {
            let colour = a.state == "raised" ? "#d62728" : "#999"
            s += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"0\" y2=\"%.0f\" stroke=\"%@\" stroke-width=\"2\"><title>%@</title></line>",
                        x(a.ts), x(a.ts), ht, colour, Report.escape("\(a.state) \(a.label) \(String(format: "%.3f", a.score))"))
        }
        if g.timeline.count == 1, let p = g.timeline.first {
            s += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#1f77b4\"/>", x(p.ts), y(p.maxScore))
        } else if !g.timeline.isEmpty {
            let points = g.timeline.map { String(format: "%.1f,%.1f", x($0.ts), y($0.maxScore)) }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"\(points)\"/>"
        }
        s += "<text x=\"\(w - pad - 2)\" y=\"14\" font-size=\"11\" text-anchor=\"end\" fill=\"#666\">score 0–1</text></svg>"
        return s
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
