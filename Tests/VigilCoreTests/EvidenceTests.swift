import Foundation
import SQLite
import TestSupport
@testable import VigilCore
@testable import VigilTools
import XCTest

/// Evidence (Evidence/): the formats read by independent decoders, the ring's bounds, captures
/// around the trigger, the cap under an alert storm, idempotence and what a crash leaves behind.
final class EvidenceTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir("vigil-evidence") }
    override func tearDown() { dir.remove() }

    func storage(evidenceMB: Double = 64) -> StorageSettings {
        var s = StorageSettings()
        s.path = dir.file("vigil.db")
        s.commitIntervalMs = 20
        s.maintenanceIntervalSeconds = 3600
        s.minFreeMB = 0
        s.evidenceMB = evidenceMB
        return s
    }

    func event(_ uuid: String = RowID.make(), ts: Double, pipeline: String = "camera", device: String = "cam1") -> AlertEvent {
        AlertEvent(uuid: uuid, ts: ts, node: "n", pipeline: pipeline, device: device, state: .raised, label: "motion", score: 0.9, severity: "warning")
    }

    func image(_ seed: Int, w: Int = 32, h: Int = 24) -> [UInt8] {
        (0..<(w * h)).map { UInt8(truncatingIfNeeded: ($0 % w) * 3 + ($0 / w) * seed + seed * 7) }
    }

    func camera(_ name: String = "camera", evidence: EvidenceSettings? = nil) -> PipelineSettings {
        var p = PipelineSettings(name: name, topic: TopicPattern("sensors/{device}/camera")!, format: .pgm, model: "m")
        p.evidence = evidence
        return p
    }

    // MARK: formats

    func testPNGIsReadByAnIndependentDecoderPixelForPixel() throws {
        for (w, h) in [(32, 24), (1, 1), (160, 120), (7, 300)] {
            let pixels = (0..<(w * h)).map { i -> UInt8 in UInt8(truncatingIfNeeded: i &* 2654435761 >> 13) }
            let png = PNG.grey(width: w, height: h, pixels: pixels)
            let decoded = try XCTUnwrap(decodeGreyPNG(png), "python3 could not read the PNG")
            XCTAssertEqual(decoded.width, w)
            XCTAssertEqual(decoded.height, h)
            XCTAssertEqual(decoded.pixels, pixels, "\(w)x\(h)")
        }
        // A smooth frame compresses: the Sub filter and DEFLATE do their job.
        let smooth = image(2, w: 160, h: 120)
        XCTAssertLessThan(PNG.grey(width: 160, height: 120, pixels: smooth).count, smooth.count / 3)
    }

    func testWAVCarriesTheDecodedSamplesBackToTheSameInt16() throws {
        let ints: [Int16] = [0, 1, -1, 32767, -32768, 12345, -23456]
        let payload = ints.flatMap { v -> [UInt8] in let u = UInt16(bitPattern: v); return [UInt8(u & 0xff), UInt8(u >> 8)] }
        let frame = try PCMS16LEDecoder(sampleRate: 16000).decode(payload, receivedAt: 1)
        guard case .audio(_, let samples) = frame.frame else { return XCTFail() }
        let wav = WAV.pcm16(sampleRate: 16000, samples: samples)
        XCTAssertEqual(Array(wav[44...]), payload, "the data chunk is the sent bytes")
        let back = try WAVDecoder().decode(wav, receivedAt: 1)
        guard case .audio(let rate, let again) = back.frame else { return XCTFail() }
        XCTAssertEqual(rate, 16000)
        XCTAssertEqual(again, samples)
    }

    func testTarIsReadByPythonAndByItself() throws {
        let entries = [Tar.Entry(name: "alert.json", bytes: Array("{}\n".utf8)),
                       Tar.Entry(name: "frame-00.png", bytes: (0..<1500).map { UInt8($0 % 251) }),
                       Tar.Entry(name: "empty.csv", bytes: [])]
        let tar = Tar.archive(entries, mtime: 1_700_000_000)
        XCTAssertEqual(tar.count % 512, 0)
        XCTAssertEqual(Tar.entries(tar), entries)
        let py = try XCTUnwrap(pythonTarEntries(tar), "python3 tarfile could not read it")
        for e in entries { XCTAssertEqual(py[e.name], e.bytes, e.name) }
        XCTAssertNil(Tar.entries(Array(tar.prefix(700))), "a cut archive is not read as a shorter one")
    }

    // MARK: ring and captures

    func testTheRingIsBoundedByBytesAndTimeAndKeepsTheNewestFrame() {
        var s = EvidenceSettings(kind: .image)
        s.maxKB = 16
        let ring = EvidenceRing(settings: s, now: 0)
        for i in 0..<100 { ring.push(TimedFrame(frame: .image(width: 32, height: 24, pixels: image(i)), ts: Double(i) * 0.01), now: 0) }
        XCTAssertLessThanOrEqual(ring.bytes, 16 << 10)
        XCTAssertEqual(ring.count, (16 << 10) / (32 * 24 + 64))
        // Time: 3 s (2 before + 1 after) and 2 s of slack at 10 frames/s.
        let timed = EvidenceRing(settings: EvidenceSettings(kind: .image), now: 0)
        for i in 0..<100 { timed.push(TimedFrame(frame: .image(width: 4, height: 4, pixels: [UInt8](repeating: 1, count: 16)), ts: Double(i) / 10), now: 0) }
        XCTAssertEqual(timed.count, 51)
        // One huge frame is still kept: it may be the trigger.
        let big = EvidenceRing(settings: s, now: 0)
        big.push(TimedFrame(frame: .image(width: 200, height: 200, pixels: [UInt8](repeating: 0, count: 40000)), ts: 1), now: 0)
        XCTAssertEqual(big.count, 1)
    }

    func testACameraCaptureHoldsTheTriggerItsReferenceAndTheFramesAfter() throws {
        let got = Locked<[EvidenceCapture]>([])
        let r = EvidenceRecorder(pipelines: [camera()], deviceTTL: 3600) { c in got.with { $0.append(c) } }
        let frames = (0..<40).map { i in TimedFrame(frame: .image(width: 32, height: 24, pixels: image(i)), ts: 100 + Double(i) * 0.2) }
        for f in frames[0...20] { r.keep(f, pipeline: "camera", device: "cam1") }
        r.keep(frames[0], pipeline: "other", device: "cam1")   // no evidence for pipelines not configured
        let e = event(ts: frames[20].ts)
        r.alertRaised(e)
        XCTAssertEqual(got.with { $0.count }, 0, "waits for the second after the trigger")
        for f in frames[21...24] { r.keep(f, pipeline: "camera", device: "cam1") }
        XCTAssertEqual(got.with { $0.count }, 0)
        r.keep(frames[25], pipeline: "camera", device: "cam1")   // 1.0 s after the trigger
        let c = try XCTUnwrap(got.with { $0.first })
        XCTAssertEqual(c.frames.map(\.ts), frames[10...25].map(\.ts), "2 s before to 1 s after")
        let (entries, items) = EvidenceBundle.make(c)
        XCTAssertEqual(entries.first?.name, "alert.json")
        let trigger = try XCTUnwrap(items.first { $0.role == "trigger" })
        let reference = try XCTUnwrap(items.first { $0.role == "reference" })
        XCTAssertEqual(trigger.ts, frames[20].ts)
        XCTAssertEqual(reference.ts, frames[19].ts)
        let png = try XCTUnwrap(entries.first { $0.name == trigger.name }).bytes
        XCTAssertEqual(decodeGreyPNG(png)?.pixels, image(20), "the trigger frame, byte-exact")
        XCTAssertEqual(r.pendingCount, 0)
    }

    func testACaptureOfADeviceThatGoesQuietIsWrittenAfterItsWait() throws {
        let got = Locked<[EvidenceCapture]>([])
        let r = EvidenceRecorder(pipelines: [camera()], deviceTTL: 3600, grace: 0.1) { c in got.with { $0.append(c) } }
        r.keep(TimedFrame(frame: .image(width: 32, height: 24, pixels: image(1)), ts: 10), pipeline: "camera", device: "cam1")
        r.alertRaised(event(ts: 10))
        XCTAssertTrue(waitUntil(timeout: 5) { got.with { $0.count } == 1 })
        XCTAssertEqual(got.with { $0.first?.frames.count }, 1)
    }

    /// After a restart the journal's history raises committed alerts again: only those
    /// expected (committed without evidence) are captured, each once.
    func testAReplayedAlertIsCapturedOnlyWhenExpectedAndOnce() throws {
        let got = Locked<[EvidenceCapture]>([])
        let r = EvidenceRecorder(pipelines: [camera()], deviceTTL: 3600) { c in got.with { $0.append(c) } }
        let expected = event(ts: 101), other = event(ts: 101.2)
        r.expectFromJournal([expected.uuid])
        for i in 0..<10 { r.keep(TimedFrame(frame: .image(width: 32, height: 24, pixels: image(i)), ts: 100 + Double(i) * 0.2), pipeline: "camera", device: "cam1") }
        r.alertReplayed(expected)
        r.alertReplayed(expected)
        r.alertReplayed(other)   // its evidence was kept (or dropped) before the restart
        XCTAssertEqual(r.pendingCount, 1)
        for i in 10..<20 { r.keep(TimedFrame(frame: .image(width: 32, height: 24, pixels: image(i)), ts: 100 + Double(i) * 0.2), pipeline: "camera", device: "cam1") }
        XCTAssertEqual(got.with { $0.map(\.alert.uuid) }, [expected.uuid])
        r.alertReplayed(expected)   // a second pass over the same history
        XCTAssertEqual(r.pendingCount, 0)
    }

    /// A capture of the journal's last frames (vigild was killed within its after_s) is taken
    /// when the first live frame comes, long after them: that frame must not push them out.
    func testALiveFrameLongAfterTheJournalsKeepsTheFramesAWaitingCaptureNeeds() throws {
        let got = Locked<[EvidenceCapture]>([])
        let r = EvidenceRecorder(pipelines: [camera()], deviceTTL: 3600, grace: 60) { c in got.with { $0.append(c) } }
        let e = event(ts: 100.6)
        r.expectFromJournal([e.uuid])
        let journal = (0..<5).map { TimedFrame(frame: .image(width: 32, height: 24, pixels: image($0)), ts: 100 + Double($0) * 0.2) }
        for f in journal { r.keep(f, pipeline: "camera", device: "cam1") }
        r.alertReplayed(e)
        XCTAssertEqual(got.with { $0.count }, 0, "waits for the second after the trigger")
        r.keep(TimedFrame(frame: .image(width: 32, height: 24, pixels: image(99)), ts: 5000), pipeline: "camera", device: "cam1")
        let c = try XCTUnwrap(got.with { $0.first })
        XCTAssertEqual(c.frames.map(\.ts), journal.map(\.ts))
        // Once the capture is taken, time bounds the ring again.
        r.keep(TimedFrame(frame: .image(width: 32, height: 24, pixels: image(98)), ts: 5000.1), pipeline: "camera", device: "cam1")
        XCTAssertEqual(r.ringStats.bytes, 2 * (32 * 24 + 64))
    }

    func testAudioIsCutToTheWindowAroundTheTriggerOnTheStreamClock() throws {
        let got = Locked<[EvidenceCapture]>([])
        var p = PipelineSettings(name: "audio", topic: TopicPattern("a/{device}")!, format: .pcm_s16le, model: "m", sampleRate: 8000)
        p.evidence = nil
        let r = EvidenceRecorder(pipelines: [p], deviceTTL: 3600) { c in got.with { $0.append(c) } }
        // Ten 0.5 s chunks arriving in one burst (the same arrival time): the ring's clock, like
        // the adapter's, lays them end to end from the first one's arrival.
        var all: [Float] = []
        for k in 0..<10 {
            let chunk = (0..<4000).map { i in Float(Int16(truncatingIfNeeded: k * 4000 + i)) / 32768 }
            all += chunk
            r.keep(TimedFrame(frame: .audio(sampleRate: 8000, samples: chunk), ts: 50), pipeline: "audio", device: "mic")
            if k == 5 { r.alertRaised(event(ts: 50 + 2.5, pipeline: "audio", device: "mic")) }   // the end of the 6th chunk
        }
        let c = try XCTUnwrap(got.with { $0.first })
        let (entries, _) = EvidenceBundle.make(c)
        let wav = try XCTUnwrap(entries.first { $0.name == "audio.wav" }).bytes
        let back = try WAVDecoder().decode(wav, receivedAt: 0)
        guard case .audio(_, let samples) = back.frame else { return XCTFail() }
        // The stream starts at 49.5 (the first chunk ends at its arrival); the trigger is 3 s in:
        // 2 s before (1 s into the stream) to 1 s after (4 s): 24000 samples.
        XCTAssertEqual(samples.count, 24000)
        XCTAssertEqual(samples, Array(all[8000..<32000]))
    }

    func testReadingsGoToCSVWithTheFieldNames() throws {
        var p = PipelineSettings(name: "env", topic: TopicPattern("e/{device}")!, format: .json, model: "m", fields: ["t", "h"])
        p.evidence = nil
        let got = Locked<[EvidenceCapture]>([])
        let r = EvidenceRecorder(pipelines: [p], deviceTTL: 3600) { c in got.with { $0.append(c) } }
        for i in 0...150 { r.keep(TimedFrame(frame: .readings([Float(i) / 4, i == 150 ? nil : 50]), ts: Double(i)), pipeline: "env", device: "s") }
        r.alertRaised(event(ts: 150, pipeline: "env", device: "s"))
        for i in 151..<210 { r.keep(TimedFrame(frame: .readings([1, 2]), ts: Double(i)), pipeline: "env", device: "s") }
        let c = try XCTUnwrap(got.with { $0.first })
        let csv = String(decoding: try XCTUnwrap(EvidenceBundle.make(c).entries.first { $0.name == "readings.csv" }).bytes, as: UTF8.self)
        let lines = csv.split(separator: "\n")
        XCTAssertEqual(lines.first, "ts,t,h")
        XCTAssertEqual(lines.count, 1 + 126, "120 s before, 5 s after")
        XCTAssertTrue(lines.contains("150.000,37.5,"), "a missing reading is an empty cell")
    }

    // MARK: the store

    func capture(_ uuid: String = RowID.make(), ts: Double, frames n: Int = 4, seed: Int = 1) -> EvidenceCapture {
        // Noise: it does not compress, so the archive size is predictable.
        var g = SimRandom(seed: UInt64(seed))
        let frames = (0..<n).map { i in
            TimedFrame(frame: .image(width: 64, height: 48, pixels: (0..<(64 * 48)).map { _ in UInt8(truncatingIfNeeded: g.next()) }), ts: ts - 0.1 * Double(n - 1 - i))
        }
        return EvidenceCapture(alert: event(uuid, ts: ts), kind: .image, fields: [], frames: frames, beforeSeconds: 2, afterSeconds: 1)
    }

    func files() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir.file("evidence"))) ?? []).sorted() }

    func testEvidenceIsKeptOncePerAlertPrivateAndIndexed() throws {
        let store = try Store(settings: storage())
        let kept = EvidenceStore(settings: storage(), store: store)
        let c = capture(ts: 1000)
        kept.write(c)
        kept.write(c)   // a replayed frame raises the same alert uuid
        kept.flush()
        XCTAssertEqual(files(), [c.alert.uuid + ".tar"])
        let path = dir.file("evidence/\(c.alert.uuid).tar")
        let mode = { (p: String) in ((try? FileManager.default.attributesOfItem(atPath: p))?[.posixPermissions] as? NSNumber)?.intValue ?? -1 }
        XCTAssertEqual(mode(path) & 0o777, 0o640, "readable by the vigil group, not by others")
        XCTAssertEqual(mode(dir.file("evidence")) & 0o777, 0o750)
        let row = try store.withDatabase { try $0.query("SELECT file, bytes, kind, items FROM evidence WHERE alert_uuid = ?", [.text(c.alert.uuid)]) }
        XCTAssertEqual(row.count, 1)
        XCTAssertEqual(row.first?[0].string, path)
        let archive = try XCTUnwrap(kept.archive(c.alert.uuid))
        XCTAssertEqual(Int(row.first?[1].int ?? 0), archive.count)
        XCTAssertEqual(row.first?[2].string, "image")
        XCTAssertTrue(row.first?[3].string?.contains("\"role\":\"trigger\"") ?? false, row.first?[3].string ?? "")
        let entries = try XCTUnwrap(Tar.entries(archive))
        XCTAssertEqual(entries.map(\.name), ["alert.json", "frame-00.png", "frame-01.png", "frame-02-reference.png", "frame-03-trigger.png"])
        guard case .image(_, _, let px) = c.frames[3].frame else { return XCTFail() }
        XCTAssertEqual(decodeGreyPNG(entries[4].bytes)?.pixels, px)
        // The log reader (vigilctl) finds it, and alerts show it.
        store.flush()
        let reader = try LogReader(path: dir.file("vigil.db"))
        XCTAssertEqual(try reader.evidence(c.alert.uuid)?.bytes, archive.count)
        XCTAssertEqual(try reader.evidence(c.alert.uuid)?.items.count, 5)
        XCTAssertNil(try reader.evidence(RowID.make()))
    }

    func testTheCapHoldsUnderAnAlertStormOldestFirstAndEveryDropIsCounted() throws {
        let settings = storage(evidenceMB: 0.5)
        let store = try Store(settings: settings)
        let counters = Counters()
        let kept = EvidenceStore(settings: settings, store: store, counters: counters)
        let storm = (0..<120).map { i in capture(ts: 2000 + Double(i), seed: i) }
        // A disk that keeps up (at most 16 waiting): only the cap drops anything.
        for (i, c) in storm.enumerated() {
            kept.write(c)
            if i % 16 == 15 { kept.flush() }
        }
        kept.flush()
        let cap = 512 * 1024
        let onDisk = files().reduce(0) { $0 + (((try? FileManager.default.attributesOfItem(atPath: dir.file("evidence/" + $1)))?[.size] as? Int) ?? 0) }
        XCTAssertLessThanOrEqual(onDisk, cap)
        let usage = kept.usage
        XCTAssertEqual(usage.bytes, onDisk)
        XCTAssertEqual(files().count, usage.alerts)
        XCTAssertGreaterThan(usage.alerts, 10)
        XCTAssertEqual(usage.alerts + usage.dropped, storm.count, "every alert's evidence is kept or counted as dropped")
        // The newest are the ones kept.
        XCTAssertEqual(Set(files()), Set(storm.suffix(usage.alerts).map { $0.alert.uuid + ".tar" }))
        let rows = store.withDatabase { Int($0.scalarInt("SELECT count(*) FROM evidence") ?? -1) }
        XCTAssertEqual(rows, usage.alerts)
        let meta = store.withDatabase { (try? $0.scalar("SELECT value FROM meta WHERE key = 'dropped_evidence'"))?.string }
        XCTAssertEqual(meta, String(usage.dropped))
        XCTAssertEqual(counters.metrics.total(MetricName.evidenceDropped), Double(usage.dropped))
        XCTAssertEqual(counters.metrics.value(MetricName.evidenceBytes), Double(onDisk))
        // Reopened (a restart): the same figures, nothing more dropped.
        let again = EvidenceStore(settings: settings, store: store)
        XCTAssertEqual(again.usage.alerts, usage.alerts)
        XCTAssertEqual(again.usage.dropped, usage.dropped)
    }

    /// What a restart captures again from the journal: raised alerts committed without
    /// evidence. Never one whose evidence was written, evicted, dropped or found gone, so no
    /// alert's evidence is ever written twice; eviction goes oldest first, so one time tells.
    func testOnlyAlertsWhoseEvidenceWasNeverDecidedAreCapturedAgainAfterARestart() throws {
        let settings = storage(evidenceMB: 0.02)   // one 4-frame capture (12.5 KB) fits, two do not
        let store = try Store(settings: settings)
        let evicted = capture(ts: 10, seed: 1), kept = capture(ts: 11, seed: 2)
        let killed = event(ts: 12), cleared = event(ts: 13), elsewhere = event(ts: 14, pipeline: "audio"), older = event(ts: 9)
        for e in [evicted.alert, kept.alert, killed, cleared, elsewhere, older] {
            store.append(AlertRecord(uuid: e.uuid, ts: e.ts, pipeline: e.pipeline, device: e.device, state: e.uuid == cleared.uuid ? "cleared" : "raised",
                                     label: e.label, score: e.score, severity: e.severity, actions: "[]"))
        }
        store.flush()
        let first = EvidenceStore(settings: settings, store: store)
        first.write(evicted)
        first.write(kept)
        first.flush()
        XCTAssertEqual(first.usage.alerts, 1)
        XCTAssertEqual(first.usage.dropped, 1)
        // A restart: `older` (before the evicted one) may have been evicted too, so it is not taken.
        let again = EvidenceStore(settings: settings, store: store)
        XCTAssertEqual(again.raisedWithoutEvidence(pipelines: ["camera"]), [killed.uuid])
        XCTAssertEqual(again.raisedWithoutEvidence(pipelines: []), [])
        // A capture dropped as too large moves the same time: a restart does not try it again.
        let huge = capture(ts: 15, frames: 12, seed: 3)
        store.append(AlertRecord(uuid: huge.alert.uuid, ts: 15, pipeline: "camera", device: "cam1", state: "raised", label: "motion", score: 0.9, severity: "warning", actions: "[]"))
        store.flush()
        again.write(huge)
        again.flush()
        XCTAssertEqual(again.usage.dropped, 2)
        XCTAssertEqual(EvidenceStore(settings: settings, store: store).raisedWithoutEvidence(pipelines: ["camera"]), [])
    }

    func testABurstFasterThanTheDiskHoldsAtMostMaxWaitingCapturesAndCountsTheRest() throws {
        let store = try Store(settings: storage())
        let kept = EvidenceStore(settings: storage(), store: store)
        let burst = (0..<(EvidenceStore.maxWaiting * 3)).map { i in capture(ts: 3000 + Double(i), frames: 2, seed: i) }
        for c in burst { kept.write(c) }
        kept.flush()
        let u = kept.usage
        XCTAssertGreaterThanOrEqual(u.alerts, EvidenceStore.maxWaiting)
        XCTAssertGreaterThan(u.dropped, 0, "not all of a burst of \(burst.count) waits in memory")
        XCTAssertEqual(u.alerts + u.dropped, burst.count)
        XCTAssertEqual(store.withDatabase { (try? $0.scalar("SELECT value FROM meta WHERE key = 'dropped_evidence'"))?.string }, String(u.dropped))
    }

    func testWhatACrashLeavesIsCleanedUpAndNoHalfFileIsReferenced() throws {
        let store = try Store(settings: storage())
        let kept = EvidenceStore(settings: storage(), store: store)
        let a = capture(ts: 10), b = capture(ts: 11)
        kept.write(a)
        kept.write(b)
        kept.flush()
        // A crash mid-write: a temp file; between rename and row: a file without a row; a file
        // deleted by hand: a row without a file.
        let half = RowID.make()
        _ = dir.write("evidence/.\(half).tmp", "half an archive")
        let orphan = RowID.make()
        _ = dir.write("evidence/\(orphan).tar", "a whole archive whose row never committed")
        try FileManager.default.removeItem(atPath: dir.file("evidence/\(b.alert.uuid).tar"))
        let reopened = EvidenceStore(settings: storage(), store: store)
        XCTAssertEqual(files(), [a.alert.uuid + ".tar"])
        XCTAssertEqual(reopened.usage.alerts, 1)
        let rows = try store.withDatabase { try $0.query("SELECT alert_uuid FROM evidence") }.compactMap { $0.first?.string }
        XCTAssertEqual(rows, [a.alert.uuid])
        XCTAssertNotNil(Tar.entries(try XCTUnwrap(reopened.archive(a.alert.uuid))))
    }

    // MARK: config and HTTP

    func testConfigKeysAreValidatedAndErrorsNameTheKey() throws {
        func parse(_ evidence: String, storage: String = "") throws -> Config {
            try Config.parse(Array("""
                { "node": "n", "storage": { "path": "/tmp/x.db" \(storage) }, "models": { "m": { "path": "/m.onnx" } },
                  "pipelines": [ { "name": "cam", "topic": "s/{device}/c", "format": "pgm", "model": "m" \(evidence) } ] }
                """.utf8))
        }
        XCTAssertEqual(try parse("").pipelines[0].evidenceSettings, EvidenceSettings(kind: .image))
        XCTAssertFalse(try parse(#", "evidence": false"#).pipelines[0].evidenceSettings.enabled)
        let s = try parse(#", "evidence": { "before_s": 5, "after_s": 0.5, "max_kb": 4096 }"#).pipelines[0].evidenceSettings
        XCTAssertEqual(s.beforeSeconds, 5)
        XCTAssertEqual(s.afterSeconds, 0.5)
        XCTAssertEqual(s.maxKB, 4096)
        XCTAssertEqual(try parse("", storage: #", "evidence_mb": 8"#).storage.evidenceMB, 8)
        XCTAssertEqual(try parse("").storage.evidenceDirectory, "/tmp/evidence")
        for (bad, key) in [(#", "evidence": { "before": 1 }"#, "pipelines[0].evidence.before"),
                           (#", "evidence": "yes""#, "pipelines[0].evidence"),
                           (#", "evidence": { "after_s": -1 }"#, "pipelines[0].evidence.after_s")] {
            XCTAssertThrowsError(try parse(bad)) { XCTAssertTrue("\($0)".contains(key), "\($0)") }
        }
        XCTAssertThrowsError(try parse("", storage: #", "evidence_mb": -1"#)) { XCTAssertTrue("\($0)".contains("storage.evidence_mb"), "\($0)") }
    }

    func testEvidenceOverHTTPIsForLoopbackOrABearerTokenOnly() throws {
        let store = try Store(settings: storage())
        let kept = EvidenceStore(settings: storage(), store: store)
        let c = capture(ts: 5)
        kept.write(c)
        kept.flush()
        let archive = try XCTUnwrap(kept.archive(c.alert.uuid))
        var local = HTTPRequest(method: "GET", path: "/evidence/\(c.alert.uuid)", query: "")
        local.fromLoopback = true
        var remote = local
        remote.fromLoopback = false

        let open = EvidenceEndpoint(store: kept, tokenFile: nil)
        XCTAssertEqual(open.handle(local).bytes, archive)
        XCTAssertEqual(open.handle(local).contentType, "application/x-tar")
        XCTAssertEqual(open.handle(remote).status, 403)
        var item = local
        item.path += "/frame-03-trigger.png"
        XCTAssertEqual(open.handle(item).contentType, "image/png")
        XCTAssertEqual(open.handle(item).bytes, Tar.entries(archive)?.last?.bytes)
        item.path = "/evidence/\(c.alert.uuid)/nope.png"
        XCTAssertEqual(open.handle(item).status, 404)
        item.path = "/evidence/../../etc/passwd"
        XCTAssertEqual(open.handle(item).status, 404)
        item.path = "/evidence/\(RowID.make())"
        XCTAssertEqual(open.handle(item).status, 404)

        let tokenFile = dir.write("token", "s3cret-token\n")
        let guarded = EvidenceEndpoint(store: kept, tokenFile: tokenFile)
        XCTAssertEqual(guarded.handle(local).status, 401, "with a token file, loopback needs it too")
        remote.headers["authorization"] = "Bearer s3cret-tokeN"
        XCTAssertEqual(guarded.handle(remote).status, 401)
        remote.headers["authorization"] = "Bearer s3cret-token"
        XCTAssertEqual(guarded.handle(remote).bytes, archive)
        XCTAssertTrue(EvidenceEndpoint.constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        XCTAssertFalse(EvidenceEndpoint.constantTimeEqual(Array("ab".utf8), Array("abc".utf8)))
        XCTAssertFalse(EvidenceEndpoint.constantTimeEqual(Array("abcd".utf8), Array("abc".utf8)))
        XCTAssertFalse(EvidenceEndpoint.constantTimeEqual([], Array("abc".utf8)))
    }
}

extension EvidenceTests {
    func testRequestHeadersAreParsedWithCRLFLineEnds() {
        let raw = Array("GET /evidence/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t0k\r\nX: y:z\r\n\r\n".utf8)
        let r = HTTPServer.parse(raw)
        XCTAssertEqual(r?.headers["authorization"], "Bearer t0k")
        XCTAssertEqual(r?.headers["host"], "a")
        XCTAssertEqual(r?.headers["x"], "y:z")
    }
}

extension EvidenceTests {
    func testSyncConfigKeysForEvidence() throws {
        func sync(_ extra: String) throws -> SyncSettings? {
            try Config.parse(Array("""
                { "node": "n", "models": { "m": { "path": "/m.onnx" } },
                  "pipelines": [ { "name": "cam", "topic": "s/{device}/c", "format": "pgm", "model": "m" } ],
                  "sync": { "mqtt": { "host": "h" } \(extra) } }
                """.utf8)).sync
        }
        XCTAssertEqual(try sync("")?.evidence, false, "off by default: it puts frames on the uplink")
        XCTAssertEqual(try sync(#", "evidence": true, "evidence_batch_kb": 64"#)?.evidenceBatchKB, 64)
        XCTAssertThrowsError(try sync(#", "evidence_batch_kb": 0"#)) { XCTAssertTrue("\($0)".contains("sync.evidence_batch_kb"), "\($0)") }
    }

    func testUnsyncedEvidenceComesInBatchesWithinTheBudgetAndIsMarkedByAlertUUID() throws {
        let store = try Store(settings: storage())
        let kept = EvidenceStore(settings: storage(), store: store)
        let caps = (0..<5).map { capture(ts: 100 + Double($0), frames: 2, seed: $0) }
        for c in caps { kept.write(c) }
        kept.flush()
        let one = try XCTUnwrap(kept.archive(caps[0].alert.uuid)).count
        // A budget of two archives: two per batch; a budget below one archive: one (alone).
        let first = try store.unsyncedEvidence(after: .start, budget: one * 2 + 10, node: "gw")
        XCTAssertEqual(first.map(\.uuid), caps.prefix(2).map(\.alert.uuid))
        XCTAssertEqual(try store.unsyncedEvidence(after: .start, budget: 1, node: "gw").count, 1)
        let record = try XCTUnwrap(first.first?.record)
        XCTAssertEqual(record["type"]?.string, "evidence")
        XCTAssertEqual(Data(base64Encoded: record["archive"]?.string ?? "").map { Array($0) }, kept.archive(caps[0].alert.uuid))
        var cursor = SyncCursor()
        cursor.evidence = first.last!.id
        XCTAssertEqual(try store.unsyncedEvidence(after: cursor, budget: 1 << 20, node: "gw").map(\.uuid), caps.suffix(3).map(\.alert.uuid))
        XCTAssertEqual(try store.markSynced(first.map { (table: $0.table, uuid: $0.uuid) }), 2)
        XCTAssertEqual(try store.unsyncedEvidence(after: .start, budget: 1 << 20, node: "gw").count, 3)
        XCTAssertTrue(try store.hasUnsyncedEvidence(after: .start))
    }
}

extension EvidenceTests {
    func testAnIndexThatCannotBeReadDeletesNoFile() throws {
        let store = try Store(settings: storage())
        let kept = EvidenceStore(settings: storage(), store: store)
        let c = capture(ts: 7)
        kept.write(c)
        kept.flush()
        // Stands in for a log that cannot be read at start (detached, damaged): the query fails.
        try store.withDatabase { try $0.execute("ALTER TABLE evidence RENAME TO evidence_away") }
        _ = EvidenceStore(settings: storage(), store: store)
        XCTAssertEqual(files(), [c.alert.uuid + ".tar"], "files are not orphans just because the index cannot be read")
    }
}

extension EvidenceTests {
    func testAFloodOfDevicesCannotGrowTheRingsPastTheirTotalBudget() {
        let got = Locked<[EvidenceCapture]>([])
        let r = EvidenceRecorder(pipelines: [camera()], deviceTTL: 3600, maxTotalBytes: 256 << 10) { c in got.with { $0.append(c) } }
        let frame = image(3, w: 100, h: 100)   // 10 KB
        for d in 0..<500 { r.keep(TimedFrame(frame: .image(width: 100, height: 100, pixels: frame), ts: Double(d)), pipeline: "camera", device: "d\(d)") }
        let stats = r.ringStats
        XCTAssertLessThanOrEqual(stats.bytes, 256 << 10)
        XCTAssertLessThan(stats.devices, 30)
        // The device an alert waits on keeps its ring.
        r.alertRaised(event(ts: 499, device: "d499"))
        for d in 500..<600 { r.keep(TimedFrame(frame: .image(width: 100, height: 100, pixels: frame), ts: Double(d)), pipeline: "camera", device: "d\(d)") }
        r.finishAll()
        XCTAssertEqual(got.with { $0.first?.frames.count }, 1, "the ring an alert waits on is not shed")
    }
}

extension EvidenceTests {
    func testAFolderThatCannotBeMadeNeverStopsTheDaemonAndFailuresAreCounted() throws {
        var s = storage()
        s.evidencePath = "/proc/vigil-no-such/evidence"   // never creatable, even as root
        let store = try Store(settings: s)
        let counters = Counters()
        let kept = EvidenceStore(settings: s, store: store, counters: counters)
        kept.write(capture(ts: 1))
        kept.flush()
        XCTAssertEqual(kept.usage.alerts, 0)
        XCTAssertEqual(counters.metrics.total(MetricName.evidenceFailed), 1)
    }
}
