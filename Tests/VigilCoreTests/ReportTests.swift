import Foundation
import SQLite
import TestSupport
@testable import VigilCore
@testable import VigilTools
import XCTest

/// `vigilctl report`'s page: evidence embedded within its bounds, numbers from `stats`.
final class ReportTests: XCTestCase {
    var dir: TempDir!
    override func setUp() { dir = TempDir("report") }
    override func tearDown() { dir.remove() }

    func storage() -> StorageSettings {
        var s = StorageSettings()
        s.path = dir.file("vigil.db")
        s.commitIntervalMs = 20
        s.minFreeMB = 0
        s.evidenceMB = 64
        return s
    }

    func alert(_ ts: Double, _ pipeline: String, _ device: String, _ label: String) -> AlertEvent {
        AlertEvent(uuid: RowID.make(), ts: ts, node: "n", pipeline: pipeline, device: device, state: .raised, label: label, score: 0.9, severity: "warning")
    }

    func testEvidenceIsEmbeddedSmallAndTheNumbersAreStats() throws {
        let t0 = 1_795_960_800.0
        let store = try Store(settings: storage())
        let kept = EvidenceStore(settings: storage(), store: store)
        for i in 0..<50 {
            store.append(Detection(ts: t0 + Double(i), pipeline: "camera", device: "door", model: "m", label: i == 20 ? "motion" : "still",
                                   score: i == 20 ? 0.95 : 0.1, scores: [("motion", 0.1)], latencyMs: Double(i % 10) + 1))
            store.append(Detection(ts: t0 + Double(i), pipeline: "audio", device: "mic", model: "m", label: "noise",
                                   score: 0.2, scores: [("noise", 0.2)], latencyMs: 3))
        }
        // A 640×480 camera frame (a gradient: it compresses, but not below the thumbnail budget) and 8 s of sound.
        let w = 640, h = 480
        let frame = (0..<(w * h)).map { UInt8(truncatingIfNeeded: ($0 % w) ^ ($0 / w)) }
        let cam = alert(t0 + 20, "camera", "door", "motion")
        kept.write(EvidenceCapture(alert: cam, kind: .image, fields: [],
                                   frames: [TimedFrame(frame: .image(width: w, height: h, pixels: frame), ts: t0 + 20)], beforeSeconds: 2, afterSeconds: 1))
        let mic = alert(t0 + 30, "audio", "mic", "glass")
        let samples = (0..<(8 * 16000)).map { Float(sin(Double($0) * 0.05) * 0.5) }
        kept.write(EvidenceCapture(alert: mic, kind: .audio, fields: [],
                                   frames: [TimedFrame(frame: .audio(sampleRate: 16000, samples: samples), ts: t0 + 34)], beforeSeconds: 4, afterSeconds: 4))
        for a in [cam, mic] {
            store.append(AlertRecord(uuid: a.uuid, ts: a.ts, pipeline: a.pipeline, device: a.device, state: "raised", label: a.label, score: 0.9, severity: "warning"))
        }
        kept.flush()
        store.close()

        let reader = try LogReader(path: dir.file("vigil.db"))
        var f = RowFilter()
        f.since = t0 - 10; f.until = t0 + 100
        let report = try Report(reader, filter: f, now: t0 + 100, zone: .utc, node: "gw-1")
        let image = try XCTUnwrap(report.media[cam.uuid])
        XCTAssertEqual(image.kind, .image)
        XCTAssertLessThanOrEqual(image.bytes.count, 48 * 1024)
        let thumb = try XCTUnwrap(PNGDecoder.decode(image.bytes))
        XCTAssertEqual([thumb.width, thumb.height], [213, 160], "640 px wide downscaled by 3 to fit 240")
        XCTAssertTrue(image.note.contains("downscaled 640×480 to 213×160"), image.note)
        let sound = try XCTUnwrap(report.media[mic.uuid])
        XCTAssertEqual(sound.kind, .audio)
        XCTAssertEqual(sound.bytes.count, 44 + 4 * 16000 * 2, "4 s of 16-bit sound")
        XCTAssertTrue(sound.note.contains("4.0 s of 8.0 s around the alert"), sound.note)

        let (groups, _) = try reader.stats(f)
        XCTAssertEqual(report.groups.map(\.stats.detections), groups.map(\.detections))
        let html = report.html
        XCTAssertTrue(html.contains("<img alt=\"trigger frame\" src=\"data:image/png;base64,"), "thumbnail inline")
        XCTAssertTrue(html.contains("<audio controls preload=\"none\" src=\"data:audio/wav;base64,"), "player inline")
        XCTAssertTrue(html.contains("data-stat=\"p95_ms\">\(String(format: "%.2f", groups.first { $0.pipeline == "camera" }!.p95!))<"), "p95 as stats")
        XCTAssertFalse(html.contains("<script"))
        XCTAssertLessThan(html.utf8.count, 300_000, "bounded: \(html.utf8.count) bytes")
        XCTAssertEqual(report.groups.first { $0.stats.pipeline == "camera" }?.timeline.max { $0.maxScore < $1.maxScore }?.maxScore, 0.95,
                       "the timeline keeps the peak")

        var none = Report.Limits()
        none.evidence = 0
        let bare = try Report(reader, filter: f, now: t0 + 100, zone: .utc, limits: none)
        XCTAssertTrue(bare.media.isEmpty)
        XCTAssertEqual(bare.evidenceLeftOut, 2)
        XCTAssertTrue(bare.html.contains("not embedded"))
    }

    /// `store: "events"`: a summary row is a period's counts, so the page counts its labels as
    /// `stats` does and draws only the event rows on the timeline.
    func testSummaryRowsAreCountedNotDrawn() throws {
        let t0 = 1_795_960_800.0
        let store = try Store(settings: storage())
        // 60 s of a camera: 59 frames under the threshold, one motion event at 0.8 (its own row too).
        store.append(Detection(ts: t0, pipeline: "camera", device: "door", model: "m", label: EventGate.summaryLabel, score: 0.99,
                               scores: [("still", 59), ("motion", 1), (EventGate.periodKey, 60)], latencyMs: 9))
        store.append(Detection(ts: t0 + 20, pipeline: "camera", device: "door", model: "m", label: "motion", score: 0.8,
                               scores: [("motion", 0.8)], latencyMs: 4))
        store.close()

        let reader = try LogReader(path: dir.file("vigil.db"))
        var f = RowFilter()
        f.since = t0 - 10; f.until = t0 + 100
        let report = try Report(reader, filter: f, now: t0 + 100, zone: .utc)
        let door = try XCTUnwrap(report.groups.first)
        XCTAssertEqual(door.stats.detections, 60, "the summary's counts, its event not a second time")
        XCTAssertEqual(door.stats.labels.map(\.0), ["still", "motion"])
        XCTAssertEqual(door.timeline.map(\.count).reduce(0, +), 1, "only the event row is drawn")
        XCTAssertEqual(door.timeline.map(\.maxScore).max(), 0.8, "not the summary's 0.99")
        XCTAssertFalse(report.html.contains(EventGate.summaryLabel), "no `_summary` label on the page")
    }
}
