import Foundation
import SQLite
import TestSupport
@testable import VigilCore
@testable import VigilTools
import XCTest

/// The shared argument parser (vigild and vigilctl), time specs as journalctl takes them,
/// tables that fit 80 columns (issue 19 item 10, issue 20 item 4).
final class CommandLineTests: XCTestCase {
    let command = Command(
        program: "demo", name: "list", summary: "A command whose summary is long enough that it must be wrapped to fit in eighty columns of a terminal.",
        options: [Option(name: "--since", value: "WHEN", help: "from this time: 15m or -15m, 2h, 7d back from now, today, yesterday, or RFC 3339 with a long explanation"),
                  Option(name: "--limit", short: "-n", value: "N", help: "newest N"),
                  Option(name: "--a-very-long-option-name-indeed", value: "PLACEHOLDER", help: "gets a line of its own"),
                  Option(name: "--utc", help: "UTC")],
        run: { _ in 0 })

    func testParsesValuesThatStartWithADashAndNamesTheOptionInErrors() throws {
        let a = try command.parse(["--since", "-1h", "-n", "5", "--utc"])
        XCTAssertEqual(a.string("--since"), "-1h")
        XCTAssertEqual(try a.int("--limit", in: 0...10), 5)
        XCTAssertTrue(a.flag("--utc"))
        XCTAssertEqual(try command.parse(["--since=2h"]).string("--since"), "2h")
        func error(_ args: [String]) -> String {
            do { _ = try command.parse(args); return "" } catch { return "\(error)" }
        }
        XCTAssertEqual(error(["--sinse", "1h"]), "unknown option --sinse (did you mean --since?)")
        XCTAssertEqual(error(["--since"]), "--since needs a value (WHEN)")
        XCTAssertEqual(error(["-n", "1", "-n", "2"]), "--limit given twice")
        XCTAssertEqual(error(["--utc=yes"]), "--utc takes no value")
        XCTAssertEqual(error(["extra"]), "unexpected argument extra")
        let bad = try command.parse(["-n", "x", "--since", "soon"])
        XCTAssertThrowsError(try bad.int("--limit", in: 0...10)) { XCTAssertEqual("\($0)", "--limit: expected a whole number from 0 to 10, got \"x\"") }
        XCTAssertThrowsError(try bad.instant("--since", now: 0, zone: .utc)) { XCTAssertTrue("\($0)".hasPrefix("--since: expected 15m, -1h"), "\($0)") }
    }

    func testHelpFitsEightyColumns() {
        let usage = command.usage
        for line in usage.split(separator: "\n") { XCTAssertLessThanOrEqual(line.count, 80, String(line)) }
        XCTAssertTrue(usage.hasPrefix("usage: demo list [options]\n"), usage)
        XCTAssertTrue(usage.contains("\n  -n, --limit N             newest N\n"), usage)
        XCTAssertTrue(usage.contains("\n      --a-very-long-option-name-indeed PLACEHOLDER\n                            gets a line of its own\n"), usage)
        XCTAssertTrue(usage.contains("  -h, --help"), usage)
    }

    /// Details are written as source paragraphs wider than a terminal: they are reflowed as
    /// paragraphs, not cut line by line (which left a word or two alone on every other line).
    func testHelpDetailsAreReflowedAsParagraphs() {
        let text = Command(
            program: "demo", name: "teach", summary: "Teach.", options: [],
            details: """
                Each clip goes through the pipeline's decoder and model as vigild would hear it; the
                prototype of a clip is the mean embedding of its loud windows. The threshold is set
                just above the best match among the model's background sounds.

                A second paragraph, short.
                examples:
                  demo teach --label kettle k1.wav k2.wav   # keeps its spacing
                  demo teach --label kettle --pipeline kitchen-microphone k1.wav k2.wav k3.wav k4.wav
                """,
            run: { _ in 0 }).usage
        let details = text.components(separatedBy: "\n\n").dropFirst(2).joined(separator: "\n\n")
        XCTAssertEqual(details, """
            Each clip goes through the pipeline's decoder and model as vigild would hear it;
            the prototype of a clip is the mean embedding of its loud windows. The threshold
            is set just above the best match among the model's background sounds.

            A second paragraph, short.
            examples:
              demo teach --label kettle k1.wav k2.wav   # keeps its spacing
              demo teach --label kettle --pipeline kitchen-microphone k1.wav k2.wav
                  k3.wav k4.wav

            """, text)
    }

    func testJournalctlTimeSpecs() {
        let now = 1_795_960_800.0 + 125   // 2026-11-29 14:02:05 UTC
        XCTAssertEqual(TimeSpec.instant("-1h", now: now), now - 3600)
        XCTAssertEqual(TimeSpec.instant("15m", now: now), now - 900)
        XCTAssertEqual(TimeSpec.instant("+15m", now: now), now + 900)
        XCTAssertEqual(TimeSpec.instant("today", now: now, zone: .utc), 1_795_910_400)
        XCTAssertEqual(TimeSpec.instant("yesterday", now: now, zone: .utc), 1_795_910_400 - 86400)
        XCTAssertEqual(TimeSpec.instant("tomorrow", now: now, zone: .utc), 1_795_910_400 + 86400)
        XCTAssertEqual(TimeSpec.instant("2026-11-29T14:00:00Z", now: now), 1_795_960_800)
        XCTAssertEqual(TimeSpec.instant("2026-11-29T14:00:00.5+00:00", now: now), 1_795_960_800.5)
        XCTAssertNil(TimeSpec.instant("--1h", now: now))
        XCTAssertNil(TimeSpec.instant("-yesterday", now: now))
        XCTAssertEqual(TimeSpec.short(1_795_960_800.7, zone: .utc), "2026-11-29 14:00:00Z")
    }

    /// Local time follows TZ: bare times, midnights and table cells are in it; offsets win.
    func testLocalTimeFollowsTZ() {
        let old = ProcessInfo.processInfo.environment["TZ"]
        setenv("TZ", "Asia/Kolkata", 1); tzset()   // +05:30, no daylight saving time
        defer {
            if let old { setenv("TZ", old, 1) } else { unsetenv("TZ") }
            tzset()
        }
        let now = 1_795_960_800.0   // 2026-11-29 14:00 UTC = 19:30 in Kolkata
        XCTAssertEqual(TimeSpec.instant("2026-11-29 19:30", now: now, zone: .local), now)
        XCTAssertEqual(TimeSpec.instant("2026-11-29 19:30", now: now, zone: .utc), now + 5.5 * 3600)
        XCTAssertEqual(TimeSpec.instant("2026-11-29T14:00:00Z", now: now, zone: .local), now, "an offset is an offset")
        XCTAssertEqual(TimeSpec.instant("today", now: now, zone: .local), now - 19.5 * 3600)
        XCTAssertEqual(TimeSpec.short(now, zone: .local), "2026-11-29 19:30:00")
        XCTAssertEqual(TimeSpec.short(now, zone: .utc), "2026-11-29 14:00:00Z")
    }

    func testTablesFitTheWidthAndShowActionsShort() {
        let actions = #"[{"action":"siren","type":"exec","status":"ok","duration_ms":12.5},{"action":"led","type":"mqtt","status":"error","detail":"broker down"}]"#
        let table = ResultTable(columns: LogReader.alertColumns, rows: [[
            .integer(1), .real(1_795_960_800), .text("camera-pipeline-long-name"), .text("front-door-camera-number-one"), .text("raised"),
            .text("person_with_a_long_label"), .real(0.97), .text("critical"), .text(actions), .integer(123_456),
            .text("0190f3c2-0000-4000-8000-000000000001"), .null]])
        let narrow = table.render(.table, style: TableStyle(zone: .utc))
        for line in narrow.split(separator: "\n") { XCTAssertLessThanOrEqual(line.count, 80, String(line)) }
        XCTAssertTrue(narrow.contains("2026-11-29 14:00:00Z"), narrow)
        XCTAssertTrue(narrow.contains("siren:…"), narrow)
        XCTAssertTrue(table.render(.table, style: TableStyle(zone: .utc, width: 160)).contains("siren:ok led:error  "), "room enough: uncut")
        XCTAssertFalse(narrow.contains("SEVERITY"), narrow)
        XCTAssertTrue(narrow.contains("123456"), "numbers are never cut:\n\(narrow)")
        let wide = table.render(.table, style: TableStyle(zone: .utc, wide: true))
        XCTAssertTrue(wide.contains("SEVERITY") && wide.contains("UUID") && wide.contains("0190f3c2-0000-4000-8000-000000000001"), wide)
        XCTAssertTrue(wide.contains(#""detail":"broker down""#), "wide shows the outcomes in full:\n\(wide)")
        XCTAssertTrue(wide.contains("front-door-camera-number-one"), wide)
        XCTAssertEqual(TableStyle.terminalWidth(["COLUMNS": "120"]), 120)
        XCTAssertEqual(TableStyle.terminalWidth([:]), 80)
    }

    /// `make demo`'s alert table, 80 columns: both devices read "sim-0…" (cut by one character
    /// to fit), so it did not say which camera alerted. A column is never cut so far that two of
    /// its values read alike; the others give way (STATE "clear…"), and a table that cannot fit
    /// otherwise stays wider.
    func testACutNeverMakesTwoValuesOfAColumnReadAlike() {
        let actions = #"[{"action":"siren","type":"mqtt","status":"ok"},{"action":"led","type":"file","status":"ok"}]"#
        func row(_ device: String, _ state: String) -> [SQLValue] {
            [.integer(1), .real(1_795_960_800), .text("camera"), .text(device), .text(state), .text("motion"), .real(1), .text("warning"),
             .text(actions), .integer(202_240), .text("0190f3c2-0000-4000-8000-000000000001"), .null]
        }
        let table = ResultTable(columns: LogReader.alertColumns, rows: [row("sim-002", "raised"), row("sim-002", "cleared"), row("sim-001", "raised")])
        let local = table.render(.table, style: TableStyle(zone: .local))
        XCTAssertTrue(local.contains(" sim-002 ") && local.contains(" sim-001 "), local)
        XCTAssertTrue(local.contains("clear…"), "STATE gives way instead:\n\(local)")
        for line in local.split(separator: "\n") { XCTAssertLessThanOrEqual(line.count, 80, local) }
        let utc = table.render(.table, style: TableStyle(zone: .utc))   // one column wider ("Z"): no cut keeps both
        XCTAssertTrue(utc.contains(" sim-002 ") && utc.contains(" sim-001 "), utc)
        XCTAssertEqual(ResultTable.narrowest(["sim-001", "sim-002"], from: 6, full: 7), 7)
        XCTAssertEqual(ResultTable.narrowest(["kitchen-mic", "garage-cam"], from: 6, full: 11), 6, "told apart at 6")
        XCTAssertEqual(ResultTable.narrowest(["front-door-camera"], from: 6, full: 17), 6, "one value: anything goes")
    }

    // MARK: reading PNG and DEFLATE back (the report's thumbnails)

    func testInflateReadsWhatZlibWrites() throws {
        // Python's zlib at level 9 writes dynamic Huffman blocks; level 0 stored ones.
        let text = Array((0..<400).map { "line \($0 % 37) of a log with repeats\n" }.joined().utf8)
        for level in [0, 1, 9] {
            let r = python("import sys, zlib; sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read(), \(level)))", input: text)
            guard r.status == 0 else { throw XCTSkip("python3 not available") }
            XCTAssertEqual(Inflate.decompress(Array(r.output.dropFirst(2)), limit: text.count), text, "level \(level)")
            XCTAssertNil(Inflate.decompress(Array(r.output.dropFirst(2)), limit: text.count - 1), "past the limit: nil, not a bomb")
        }
        XCTAssertNil(Inflate.decompress([0xff, 0xff, 0xff], limit: 100))
    }

    func testPNGRoundTripAndThumbnails() throws {
        let w = 640, h = 480
        let pixels = (0..<(w * h)).map { UInt8(truncatingIfNeeded: ($0 % w) / 3 + ($0 / w) / 2) }
        let png = PNG.grey(width: w, height: h, pixels: pixels)
        let image = try XCTUnwrap(PNGDecoder.decode(png))
        XCTAssertEqual(image, PNGDecoder.Image(width: w, height: h, channels: 1, pixels: pixels))
        let small = Thumbnail.downscale(image, maxWidth: 240)
        XCTAssertEqual([small.width, small.height], [213, 160], "a factor of 3")
        XCTAssertEqual(small.pixels[0], 0, "box average of the top-left 3×3: (0 × 6 + 1 × 3) / 9")
        XCTAssertEqual(small.pixels[1 * 213 + 1], 2, "rows 3-5, columns 3-5: x/3 = 1, y/2 = 1, 2, 2 -> (6 + 9) / 9")
        XCTAssertNil(PNGDecoder.decode(Array(png.prefix(100))), "truncated")
        XCTAssertNil(PNGDecoder.decode(Array("not a png".utf8)))
    }

    func testAudioClipKeepsSecondsAroundTheAlert() throws {
        let rate = 8000
        let samples = (0..<(10 * rate)).map { Float($0 % 100) / 128 }
        let wav = WAV.pcm16(sampleRate: rate, samples: samples)
        let (clip, note) = try XCTUnwrap(Thumbnail.clip(wav, centre: 6, seconds: 4))
        XCTAssertEqual(clip.count, 44 + 4 * rate * 2)
        XCTAssertEqual(note, "4.0 s of 10.0 s around the alert")
        XCTAssertEqual(Array(clip[44..<48]), Array(wav[(44 + 4 * rate * 2)..<(48 + 4 * rate * 2)]), "starts 2 s before the centre")
        let (whole, n2) = try XCTUnwrap(Thumbnail.clip(Array(wav.prefix(44 + 2 * rate * 2)), centre: 1, seconds: 4))
        XCTAssertEqual(whole.count, 44 + 2 * rate * 2)
        XCTAssertEqual(n2, "2.0 s")
        XCTAssertNil(Thumbnail.clip(Array("RIFF....WAVE".utf8), centre: 0, seconds: 1))
    }
}
