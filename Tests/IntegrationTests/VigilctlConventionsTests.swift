import Foundation
import SQLite
import TestSupport
@testable import VigilCore
@testable import VigilTools
import XCTest

/// vigilctl by the usual conventions (issue 19 item 10) and `vigilctl report` (item 11),
/// against the class's real daemon and log (VigilctlIntegrationTests.setUp).
extension VigilctlIntegrationTests {
    func testEveryHelpFitsEightyColumnsForBothBinaries() throws {
        let names = ["detections", "alerts", "tail", "stats", "sync", "export", "report", "baseline", "evidence", "simulate", "check-config", "models"]
        var pages = [try ctl("--help").stdout, try Self.run(["--help"], in: dir, executable: Paths.executable("vigild")).stdout]
        for n in names { pages.append(try ctl(n, "--help").stdout) }
        for page in pages {
            XCTAssertTrue(page.hasPrefix("usage: "), page)
            for line in page.split(separator: "\n") { XCTAssertLessThanOrEqual(line.count, 80, "\(line)\nin:\n\(page)") }
        }
        // One parser: vigild's errors read like vigilctl's and name the option.
        let bad = try Self.run(["--confg", "x"], in: dir, executable: Paths.executable("vigild"))
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("unknown option --confg (did you mean --config?)"), bad.stderr)
        let check = try Self.run(["--check-config", configPath], in: dir, executable: Paths.executable("vigild"))
        XCTAssertEqual(check.status, 0, check.stderr)
    }

    /// The README's line, exactly as written there.
    func testTheReadmeExportExampleWorksAsWritten() throws {
        let readme = try String(contentsOfFile: Paths.repo.path + "/README.md", encoding: .utf8)
        let line = try XCTUnwrap(readme.split(separator: "\n").first { $0.hasPrefix("vigilctl export ") }, "README has an export example")
        let words = line.split(separator: "#")[0].split(separator: " ").dropFirst().map(String.init)
        let r = try Self.run(words + ["--db", db], in: dir)
        XCTAssertEqual(r.status, 0, "\(line): \(r.stderr)")
        XCTAssertEqual(r.lines.count, Self.count(db, "SELECT count(*) FROM detections WHERE ts >= ?", [.real(TimeSpec.iso8601(words[2], zone: .local)!)]), String(line))
    }

    func testJournalctlStyleOptions() throws {
        let all = Self.count(db, "SELECT count(*) FROM detections WHERE device GLOB 'sim-*'")
        let json = try ctl("detections", "--db", db, "--device", "sim-*", "-o", "json", "-n", "7", "--since", "-1h")
        XCTAssertEqual(json.status, 0, json.stderr)
        XCTAssertEqual(json.lines.count, 7, "-n 7, and -o json is JSON lines")
        XCTAssertNoThrow(try self.json(json.lines[0]))
        for since in ["today", "yesterday", "15m", "-15m", TimeSpec.format(Date().timeIntervalSince1970 - 3600)] {
            let r = try ctl("detections", "--db", db, "--device", "sim-*", "-o", "json", "-n", "0", "--since", since)
            XCTAssertEqual(r.status, 0, "\(since): \(r.stderr)")
            XCTAssertEqual(r.lines.count, all, since)
        }
        let future = try ctl("detections", "--db", db, "-o", "json", "--since", "tomorrow")
        XCTAssertEqual(future.lines.count, 0)
        // -f means --follow, in tail only; elsewhere it is an error, not a format.
        let f = try ctl("detections", "--db", db, "-f", "jsonl")
        XCTAssertEqual(f.status, 2)
        XCTAssertTrue(f.stderr.contains("unknown option -f"), f.stderr)
    }

    /// Tables: local time (TZ), --utc, 80 columns, --wide with every column.
    func testTablesShowLocalTimeFitEightyColumnsAndWideShowsAll() throws {
        func env(_ tz: String, _ args: String...) throws -> Result {
            try Self.run(["TZ=\(tz)", Paths.executable("vigilctl")] + args, in: dir, executable: "/usr/bin/env")
        }
        let row = try sql("SELECT ts FROM alerts WHERE device GLOB 'sim-*' ORDER BY id DESC LIMIT 1")
        let ts = try XCTUnwrap(row.first?[0].double)
        let local = try env("Asia/Kolkata", "alerts", "--db", db, "--device", "sim-*", "-o", "table", "-n", "1")
        XCTAssertTrue(local.stdout.contains(TimeSpec.short(ts + 5.5 * 3600, zone: .utc).dropLast()), "local time:\n\(local.stdout)")
        let utc = try env("Asia/Kolkata", "alerts", "--db", db, "--device", "sim-*", "-o", "table", "-n", "1", "--utc")
        XCTAssertTrue(utc.stdout.contains(TimeSpec.short(ts, zone: .utc)), "UTC:\n\(utc.stdout)")
        let piped = try env("Asia/Kolkata", "alerts", "--db", db, "--device", "sim-*", "-n", "1")
        XCTAssertEqual(try self.json(piped.lines[0])["time"] as? String, TimeSpec.format(ts), "a pipe gets JSON lines with UTC times")
        for cmd in ["detections", "alerts", "stats"] {
            let t = try ctl(cmd, "--db", db, "-o", "table")
            XCTAssertEqual(t.status, 0, t.stderr)
            for line in t.lines { XCTAssertLessThanOrEqual(line.count, 80, "\(cmd):\n\(t.stdout)") }
        }
        let alerts = try ctl("alerts", "--db", db, "-o", "table", "--device", "sim-*", "-n", "1", "--state", "raised")
        XCTAssertNotNil(alerts.lines[1].range(of: " mark:(ok|er)", options: .regularExpression), "ACTIONS as name:status\n\(alerts.stdout)")
        let wide = try ctl("alerts", "--db", db, "-o", "table", "--device", "sim-*", "-n", "1", "--state", "raised", "--wide")
        XCTAssertTrue(wide.lines[0].contains("SEVERITY") && wide.lines[0].contains("UUID"), wide.stdout)
        XCTAssertTrue(wide.lines[1].contains("[{\"action\":\"mark\",\"type\":\"file\",\"status\":"), "the outcomes in full\n\(wide.stdout)")
    }

    /// `enrolled` (and `baseline cameras`, not shown here) follow the table conventions as the queries do: local
    /// time, --utc, the terminal's width (COLUMNS), --wide. Before, they always rendered 80
    /// columns in UTC: the uuid that `unenroll` takes was cut to "01a24…" even on a wide terminal.
    func testEnrolledTablesFollowTheTableConventions() throws {
        let e = Enrollment(created: 1_796_400_000, pipeline: "audio", label: "kettle", kind: .positive, modelVersion: "1.3.0",
                           prototypes: [[1, 0]], threshold: 0.8, source: "kettle1.wav,kettle2.wav")
        try EnrollmentLog.insert(e, into: Database(path: db))
        func env(_ vars: [String], _ args: String...) throws -> Result {
            try Self.run(vars + [Paths.executable("vigilctl")] + args, in: dir, executable: "/usr/bin/env")
        }
        let wideTerminal = try env(["TZ=Asia/Kolkata", "COLUMNS=160"], "enrolled", "--db", db, "-o", "table")
        XCTAssertEqual(wideTerminal.status, 0, wideTerminal.stderr)
        XCTAssertTrue(wideTerminal.stdout.contains(e.uuid), "the whole uuid on a wide terminal:\n\(wideTerminal.stdout)")
        XCTAssertTrue(wideTerminal.stdout.contains(TimeSpec.short(e.created + 5.5 * 3600, zone: .utc).dropLast()), "local time:\n\(wideTerminal.stdout)")
        XCTAssertFalse(wideTerminal.stdout.contains("kettle1.wav"), "the source is for --wide")
        let utc = try env(["TZ=Asia/Kolkata", "COLUMNS=160"], "enrolled", "--db", db, "-o", "table", "--utc")
        XCTAssertTrue(utc.stdout.contains(TimeSpec.short(e.created, zone: .utc)), "UTC:\n\(utc.stdout)")
        let narrow = try env(["COLUMNS=80"], "enrolled", "--db", db, "-o", "table")
        for line in narrow.lines { XCTAssertLessThanOrEqual(line.count, 80, narrow.stdout) }
        XCTAssertTrue(narrow.stdout.contains(" positive "), "KIND is not cut to fit:\n\(narrow.stdout)")
        XCTAssertTrue(narrow.stdout.contains(String(e.uuid.prefix(11))), "enough of the uuid for unenroll (8+ characters):\n\(narrow.stdout)")
        let wide = try env(["COLUMNS=80"], "enrolled", "--db", db, "-o", "table", "--wide")
        XCTAssertTrue(wide.stdout.contains("kettle1.wav,kettle2.wav") && wide.stdout.contains("1.3.0") && wide.stdout.contains(e.uuid), wide.stdout)
        XCTAssertTrue(wide.stdout.contains("PROTOTYPES") && !narrow.stdout.contains("PROTOTYPES"), "prototypes are for --wide:\n\(narrow.stdout)\n\(wide.stdout)")
        let devices = try env(["COLUMNS=160"], "enrolled", "--devices", "--db", db, "-o", "table", "--utc")
        XCTAssertEqual(devices.status, 0, "--devices takes --utc too: \(devices.stderr)")
    }

    /// `unenroll` takes a uuid's first 8+ characters, but those are its creation time to ~65 s
    /// (UUIDv7): a prefix that two enrollments share removes neither and names both. Before, it
    /// removed every enrollment made in that minute.
    func testAnAmbiguousUuidPrefixRemovesNothing() throws {
        let ids = ["0badc0de-0000-7000-8000-00000000000a", "0badc0de-0001-7000-8000-00000000000b"]
        for (id, label) in zip(ids, ["kettle", "doorbell"]) {
            try EnrollmentLog.insert(Enrollment(uuid: id, pipeline: "audio", label: label, kind: .positive, modelVersion: "1.3.0",
                                                prototypes: [[1, 0]], threshold: 0.8, source: "t.wav"), into: Database(path: db))
        }
        func left() throws -> [String] { try EnrollmentLog.all(Database(path: db, mode: .readOnly)).enrollments.map(\.uuid).filter { $0.hasPrefix("0badc0de") } }
        let both = try ctl("unenroll", "0badc0de", "--db", db)
        XCTAssertEqual(both.status, 1, both.stdout)
        XCTAssertTrue(both.stderr.contains("uuid prefix 0badc0de matches 2 enrollments (\(ids[0]) \"kettle\", \(ids[1]) \"doorbell\"): give more of the uuid; nothing removed"), both.stderr)
        XCTAssertEqual(try left().count, 2)
        let one = try ctl("unenroll", "0BADC0DE-0001", "--db", db)
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertTrue(one.stdout.contains("removed positive \"doorbell\""), one.stdout)
        XCTAssertEqual(try left(), [ids[0]])
        let rest = try ctl("unenroll", "0badc0de", "--db", db)
        XCTAssertEqual(rest.status, 0, "now one enrollment has it: \(rest.stderr)")
        XCTAssertEqual(try left(), [])
    }

    /// /var/lib/vigil is 0750 vigil:vigil: someone outside the group is told so, not "no database".
    func testAnUnreadableLogSaysPermissionDeniedNotNoDatabase() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            throw XCTSkip("needs root and setpriv to run vigilctl as another user")
        }
        let closed = TempDir("vigilctl-closed")
        defer { closed.remove() }
        let folder = closed.file("lib-vigil")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: db, toPath: folder + "/vigil.db")
        chmod(closed.path, 0o755)
        chmod(folder, 0o750)
        for path in [folder + "/vigil.db", folder + "/vigil.db.missing"] {
            let r = try Self.run(["--reuid=65534", "--regid=65534", "--clear-groups", Paths.executable("vigilctl"), "stats", "--db", path],
                                 in: dir, executable: "/usr/bin/setpriv")
            XCTAssertEqual(r.status, 3)
            XCTAssertTrue(r.stderr.contains("permission denied: add yourself to group vigil"), r.stderr)
            XCTAssertFalse(r.stderr.contains("no database"), r.stderr)
        }
        chmod(folder, 0o755)
        chmod(folder + "/vigil.db", 0o600)
        let file = try Self.run(["--reuid=65534", "--regid=65534", "--clear-groups", Paths.executable("vigilctl"), "stats", "--db", folder + "/vigil.db"],
                                in: dir, executable: "/usr/bin/setpriv")
        XCTAssertTrue(file.stderr.contains("permission denied: add yourself to group vigil"), file.stderr)
    }

    // MARK: report

    /// The page in headless Chromium: a screenshot that is not blank, and the numbers in its
    /// DOM equal `vigilctl stats` on the same log and range.
    func testReportRendersInChromiumWithTheNumbersOfStats() throws {
        guard let chromium = Chromium.path else { throw XCTSkip("no chromium (scripts/setup installs it)") }
        let since = TimeSpec.format(Date().timeIntervalSince1970 - 3600), until = TimeSpec.format(Date().timeIntervalSince1970 + 60)
        let page = dir.file("report.html")
        let r = try ctl("report", "--db", db, "--since", since, "--until", until, "-o", page)
        XCTAssertEqual(r.status, 0, r.stderr)
        let html = try String(contentsOfFile: page, encoding: .utf8)
        XCTAssertFalse(html.contains("<script"), "no scripts")
        XCTAssertFalse(html.contains("http://") && !html.contains("http://www.w3.org/2000/svg"), "nothing fetched")
        XCTAssertTrue(html.contains("<svg"), "timelines")

        let dom = try Chromium.run(chromium, ["--dump-dom", "file://" + page], in: dir)
        let stats = try ctl("stats", "--db", db, "--since", since, "--until", until, "-o", "json")
        XCTAssertEqual(stats.status, 0, stats.stderr)
        var compared = 0
        for line in stats.lines {
            let o = try json(line)
            let pipeline = o["pipeline"] as! String, device = o["device"] as! String
            let cells = Chromium.statCells(dom, pipeline: pipeline, device: device)
            XCTAssertEqual(cells["detections"], "\(o["detections"] as! Int)", "\(pipeline)/\(device)")
            XCTAssertEqual(cells["alerts"], "\(o["alerts"] as! Int)", "\(pipeline)/\(device)")
            for p in ["p50_ms", "p95_ms", "p99_ms"] {
                XCTAssertEqual(cells[p], (o[p] as? Double).map { String(format: "%.2f", $0) } ?? "-", "\(pipeline)/\(device) \(p)")
            }
            compared += 1
        }
        XCTAssertGreaterThan(compared, 3, "every pipeline and device of stats is on the page")
        let sync = try json(try ctl("sync", "--db", db, "-o", "json").stdout)
        XCTAssertTrue(dom.contains("data-sync=\"backlog\">\(sync["backlog"] as! Int)<") || (sync["backlog"] as! Int) > 0,
                      "backlog (it may move between the two reads while vigild syncs)")

        let shot = dir.file("report.png")
        _ = try Chromium.run(chromium, ["--screenshot=" + shot, "--window-size=1000,1200", "file://" + page], in: dir)
        let png = try XCTUnwrap(FileManager.default.contents(atPath: shot), "chromium wrote a screenshot")
        let image = try XCTUnwrap(PNGDecoder.decode(Array(png)), "the screenshot is a PNG")
        XCTAssertEqual(image.width, 1000)
        let grey = image.grey
        let dark = grey.filter { $0 < 128 }.count
        XCTAssertGreaterThan(dark, grey.count / 500, "text and lines on the page, not a blank one")
        XCTAssertGreaterThan(Set(stride(from: 0, to: image.pixels.count, by: image.channels).map { image.pixels[$0] }).count, 8, "colours")
    }
}

/// Headless Chromium for the report tests.
enum Chromium {
    static var path: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs headless; returns stdout. `--no-sandbox`: tests run as root in a container.
    static func run(_ chromium: String, _ args: [String], in dir: TempDir) throws -> String {
        let r = try VigilctlIntegrationTests.run(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                                  "--user-data-dir=" + dir.file("chromium-profile")] + args,
                                                 in: dir, executable: chromium)
        guard r.status == 0 else { throw XCTSkip("chromium failed (\(r.status)): \(r.stderr.suffix(400))") }
        return r.stdout
    }

    /// The `data-stat` cells of one stats row in the dumped DOM.
    static func statCells(_ dom: String, pipeline: String, device: String) -> [String: String] {
        guard let start = dom.range(of: "<tr data-pipeline=\"\(pipeline)\" data-device=\"\(device)\">"),
              let end = dom.range(of: "</tr>", range: start.upperBound..<dom.endIndex) else { return [:] }
        let row = String(dom[start.upperBound..<end.lowerBound])
        var cells: [String: String] = [:]
        var rest = row[...]
        while let r = rest.range(of: "data-stat=\"") {
            let nameEnd = rest[r.upperBound...].firstIndex(of: "\"")!
            let name = String(rest[r.upperBound..<nameEnd])
            let valueStart = rest[nameEnd...].firstIndex(of: ">")!
            let valueEnd = rest[valueStart...].firstIndex(of: "<")!
            cells[name] = String(rest[rest.index(after: valueStart)..<valueEnd])
            rest = rest[valueEnd...]
        }
        return cells
    }
}
