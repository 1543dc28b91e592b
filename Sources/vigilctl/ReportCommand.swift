import Foundation
import VigilCore
import VigilTools

/// `vigilctl report`: one self-contained HTML page about a time range (VigilTools/Report).
enum ReportCommand {
    static let command = Command(
        name: "report", summary: "Write one self-contained HTML page: per pipeline and device a timeline of scores with alerts marked, counts, latency percentiles, sync backlog, and each alert's evidence (thumbnail or sound).",
        options: [Option(name: "--output", short: "-o", value: "FILE", help: "write the page here (default: stdout when it is not a terminal)"),
                  Option(name: "--since", value: "WHEN", help: "from this time (default 24h; same forms as detections --since)"),
                  Shared.until, Shared.pipeline, Shared.device,
                  Option(name: "--evidence", value: "N", help: "embed the evidence of at most N alerts, the newest (default 20; 0 for none)"),
                  Shared.utc, Shared.db, Shared.config],
        details: """
            The page has no script and fetches nothing: inline CSS and SVG, evidence as data URIs.
            Its size is bounded: 240 points per timeline, 40 timelines, at most N alerts' evidence,
            each a thumbnail of at most 240 px wide (24 KB PNG) or 4 s of sound (128 KB at 16 kHz).
            Counts and latencies are those of `vigilctl stats` over the same range.
            example:
              vigilctl report --since 24h -o report.html
            """,
        run: run)

    static func run(_ a: Arguments) throws -> Int32 {
        let now = Date().timeIntervalSince1970
        var filter = try Shared.filter(a, now: now, defaultSince: 86400)
        filter.until = filter.until ?? now
        var limits = Report.Limits()
        limits.evidence = try a.int("--evidence", in: 0...1000) ?? limits.evidence
        let output = a.string("--output")
        if output == nil, isatty(1) == 1 {
            throw UsageError("not writing HTML to a terminal: use -o FILE (or -o - to force stdout)")
        }
        let reader = try Shared.openLog(a)
        let node = (try? Shared.rawConfig(a))??.root["node"]?.string ?? ""
        let report: Report
        do { report = try Report(reader, filter: filter, now: now, zone: Shared.zone(a), node: node, limits: limits) }
        catch let e as QueryError { throw Failure(e.message, status: ExitCode.database) }
        let page = report.html
        if let output, output != "-" {
            guard FileManager.default.createFile(atPath: output, contents: Data(page.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw Failure("cannot write \(output)")
            }
            warn("wrote \(output) (\(page.utf8.count) bytes: \(report.groups.count) pipeline/device groups, \(report.media.count) alerts' evidence)")
        } else {
            out(page)
        }
        return ExitCode.ok
    }
}
