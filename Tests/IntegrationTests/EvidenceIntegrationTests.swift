import Foundation
import SQLite
import TestSupport
import XCTest

/// Evidence as users get it (issue 21): the real vigild, a real mosquitto, the fixture
/// models, the SQLite file, `vigilctl evidence` and `GET /evidence/UUID` through curl; the
/// frames, sound and readings that raised camera, audio and environment alerts come out
/// byte-exact.
final class EvidenceIntegrationTests: XCTestCase {
    var dir: TempDir!
    lazy var httpPort = freePort()

    override func setUp() { dir = TempDir("vigil-evidence-it") }
    override func tearDown() { dir.remove() }

    func writeConfig(port: Int, extraHTTP: String = "", sync: String = "", homeAssistant: String = "") -> String {
        dir.write("vigil.json", """
            {
              "node": "ev",
              "mqtt": { "host": "127.0.0.1", "port": \(port), "client_id": "vigild-\(UUID().uuidString.prefix(6))" },
              "storage": { "path": "\(dir.file("vigil.db"))", "commit_interval_ms": 50, "evidence_mb": 4 },
              "models": {
                "bright": { "path": "\(Paths.fixture("brightness.onnx"))" },
                "sound": { "path": "\(Paths.fixture("sound_small.onnx"))" },
                "anomaly": { "path": "\(Paths.fixture("free_dims.onnx"))" }
              },
              "pipelines": [
                { "name": "camera", "topic": "sensors/{device}/camera", "format": "pgm", "model": "bright",
                  "evidence": { "before_s": 2, "after_s": 0.5 },
                  "alert": { "labels": ["bright"], "min_score": 0.5, "cooldown_s": 0 } },
                { "name": "audio", "topic": "sensors/{device}/audio", "format": "wav", "model": "sound",
                  "alert": { "labels": ["loud"], "min_score": 0.5, "cooldown_s": 0 } },
                { "name": "env", "topic": "sensors/{device}/env", "format": "json", "fields": ["t"], "model": "anomaly",
                  "evidence": { "before_s": 60, "after_s": 1 },
                  "alert": { "min_score": 0.9, "cooldown_s": 0 } },
                { "name": "quiet", "topic": "sensors/{device}/quiet", "format": "pgm", "model": "bright", "evidence": false,
                  "alert": { "labels": ["bright"], "min_score": 0.5, "cooldown_s": 0 } }
              ],
              "http": { "listen": "127.0.0.1:\(httpPort)" \(extraHTTP) }\(sync.isEmpty ? "" : ",\n  \"sync\": " + sync)\(homeAssistant.isEmpty ? "" : ",\n  \"homeassistant\": " + homeAssistant)
            }
            """)
    }

    func startDaemon(_ path: String) throws -> ChildProcess {
        let d = try ChildProcess(Paths.executable("vigild"), ["--config", path], outputPath: dir.file("vigild.log"))
        XCTAssertTrue(d.waitSubscribed(), d.output)
        XCTAssertTrue(waitForOnline(configAt: path), d.output)   // and the retained status says so
        return d
    }

    func pgm(_ w: Int, _ h: Int, _ pixel: (Int, Int) -> UInt8) -> (payload: [UInt8], pixels: [UInt8]) {
        var px: [UInt8] = []
        for y in 0..<h { for x in 0..<w { px.append(pixel(x, y)) } }
        return (Array("P5\n\(w) \(h)\n255\n".utf8) + px, px)
    }

    func s16(_ x: [Int16]) -> [UInt8] { x.flatMap { v -> [UInt8] in let u = UInt16(bitPattern: v); return [UInt8(u & 0xff), UInt8(u >> 8)] } }

    func wav(_ data: [UInt8], rate: Int) -> [UInt8] {
        func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xff) } }
        return Array("RIFF".utf8) + le32(36 + data.count) + Array("WAVEfmt ".utf8) + le32(16) + [1, 0, 1, 0] + le32(rate) + le32(rate * 2)
            + [2, 0, 16, 0] + Array("data".utf8) + le32(data.count) + data
    }

    func evidenceRows() -> [[SQLValue]] {
        guard let db = try? Database(path: dir.file("vigil.db"), mode: .readOnly) else { return [] }
        return (try? db.query("SELECT alert_uuid, pipeline, device, file, bytes FROM evidence ORDER BY ts")) ?? []
    }

    func raisedAlerts() -> [String: String] {
        guard let db = try? Database(path: dir.file("vigil.db"), mode: .readOnly),
              let rows = try? db.query("SELECT pipeline, uuid FROM alerts WHERE state = 'raised'") else { return [:] }
        return Dictionary(rows.map { ($0[0].string!, $0[1].string!) }, uniquingKeysWith: { a, _ in a })
    }

    /// vigilctl with stdout to a file; returns status, stdout bytes and stderr.
    func ctl(_ args: [String]) throws -> (status: Int32, out: [UInt8], err: String) {
        let outPath = dir.file("ctl-\(UUID().uuidString.prefix(6))"), errPath = outPath + ".err"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Paths.executable("vigilctl"))
        p.arguments = args
        p.standardOutput = FileHandle(forWritingAtPath: outPath)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        try p.run()
        p.waitUntilExit()
        return (p.terminationStatus, Array(FileManager.default.contents(atPath: outPath) ?? Data()),
                String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self))
    }

    /// GET through curl: status and body bytes.
    func curl(_ url: String, headers: [String] = []) -> (status: Int, body: [UInt8]) {
        let body = dir.file("curl-\(UUID().uuidString.prefix(6))")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        p.arguments = ["-s", "-o", body, "-w", "%{http_code}", "--max-time", "10"] + headers.flatMap { ["-H", $0] } + [url]
        let pipe = Pipe()
        p.standardOutput = pipe
        guard (try? p.run()) != nil else { return (-1, []) }
        let code = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (Int(code) ?? -1, Array(FileManager.default.contents(atPath: body) ?? Data()))
    }

    func testCameraAudioAndEnvAlertsKeepTheirEvidenceAndItComesOutByteExact() throws {
        let broker = try Broker()
        let daemon = try startDaemon(writeConfig(port: broker.port))
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        var mids: [Int32] = []

        // Camera: dark frames, then a bright one (the trigger), then more.
        let dark = (0..<5).map { k in pgm(32, 24) { x, y in UInt8((x + y + k) % 20) } }
        let bright = (0..<3).map { k in pgm(32, 24) { x, y in UInt8(200 + (x * 3 + y + k) % 50) } }
        for f in dark + bright { mids.append(try pub.publish("sensors/cam1/camera", f.payload)) }
        // The same on a pipeline with evidence off: an alert, no evidence.
        for f in dark.prefix(2) + bright.prefix(1) { mids.append(try pub.publish("sensors/cam1/quiet", f.payload)) }

        // Audio: 8 kHz, 0.5 s chunks: quiet, quiet, quiet, loud, quiet, quiet.
        var sent: [UInt8] = []
        for k in 0..<6 {
            let samples = (0..<4000).map { i -> Int16 in
                k == 3 ? Int16(Double(16000) * sin(Double(i) * 0.3)) : Int16(truncatingIfNeeded: (i * 7 + k) % 41 - 20)
            }
            let data = s16(samples)
            sent += data
            mids.append(try pub.publish("sensors/mic1/audio", wav(data, rate: 8000)))
        }

        // Environment: zeros, then two high readings raise (mean of 8 over 2.2 -> score over 0.9).
        let readings: [Double] = Array(repeating: 0, count: 12) + [10, 10] + [0, 0, 0]
        for v in readings { mids.append(try pub.publish("sensors/th1/env", "{\"t\": \(v)}")) }
        XCTAssertTrue(pub.waitForAcks(mids))

        XCTAssertTrue(waitUntil(timeout: 20) { self.evidenceRows().count == 3 },
                      "evidence rows \(evidenceRows().count)\n\(daemon.output)")
        let alerts = raisedAlerts()
        XCTAssertNotNil(alerts["quiet"], "the pipeline with evidence off still alerts")
        let rows = evidenceRows()
        XCTAssertEqual(Set(rows.map { $0[1].string! }), ["camera", "audio", "env"])
        for r in rows { XCTAssertEqual(r[0].string, alerts[r[1].string!], "keyed by the raised alert's uuid") }

        func archive(_ pipeline: String) throws -> (uuid: String, bytes: [UInt8], entries: [String: [UInt8]]) {
            let row = try XCTUnwrap(rows.first { $0[1].string == pipeline })
            let uuid = row[0].string!
            let file = try XCTUnwrap(FileManager.default.contents(atPath: row[3].string!))
            XCTAssertEqual(Int(row[4].int ?? 0), file.count)
            // vigilctl writes out the same bytes...
            let out = dir.file("\(pipeline).tar")
            let r = try ctl(["evidence", uuid, "-o", out, "--db", dir.file("vigil.db")])
            XCTAssertEqual(r.status, 0, r.err)
            XCTAssertEqual(FileManager.default.contents(atPath: out), file)
            // ...and so does the HTTP endpoint (curl on loopback).
            let got = curl("http://127.0.0.1:\(httpPort)/evidence/\(uuid)")
            XCTAssertEqual(got.status, 200)
            XCTAssertTrue(got.body == Array(file), "GET /evidence/\(uuid): \(got.body.count) bytes, the file \(file.count)")
            let entries = try XCTUnwrap(pythonTarEntries(Array(file)), "python3 tarfile reads it")
            return (uuid, Array(file), entries)
        }

        // Camera: the trigger is the first bright frame, its reference the last dark one, pixel for pixel.
        let cam = try archive("camera")
        let trigger = try XCTUnwrap(cam.entries.first { $0.key.hasSuffix("-trigger.png") })
        XCTAssertEqual(decodeGreyPNG(trigger.value)?.pixels, bright[0].pixels)
        let reference = try XCTUnwrap(cam.entries.first { $0.key.hasSuffix("-reference.png") })
        XCTAssertEqual(decodeGreyPNG(reference.value)?.pixels, dark[4].pixels)
        XCTAssertEqual(cam.entries.keys.filter { $0.hasSuffix(".png") }.count, 8, "all 8 frames fall in the window")
        let item = try ctl(["evidence", cam.uuid, "--item", trigger.key, "--db", dir.file("vigil.db")])
        XCTAssertEqual(item.out, trigger.value, "--item to stdout (a pipe)")
        let viaHTTP = curl("http://127.0.0.1:\(httpPort)/evidence/\(cam.uuid)/\(trigger.key)")
        XCTAssertEqual(viaHTTP.body, trigger.value)

        // Audio: a 16-bit WAV whose samples are a stretch of what was sent, with the loud chunk in it.
        let audio = try archive("audio")
        let wavBytes = try XCTUnwrap(audio.entries["audio.wav"])
        let pcm = Array(wavBytes[44...])
        XCTAssertGreaterThan(pcm.count, 8000 * 2, "more than a second")
        let at = try XCTUnwrap(find(pcm, in: sent), "the samples are the sent ones, in order")
        XCTAssertLessThanOrEqual(at, 3 * 8000, "the pre-roll starts before the loud chunk")
        XCTAssertGreaterThanOrEqual(at + pcm.count, 4 * 8000, "and the clip covers it")

        // Environment: the readings as CSV, the raising ones among them.
        let env = try archive("env")
        let csv = String(decoding: try XCTUnwrap(env.entries["readings.csv"]), as: UTF8.self)
        let values = csv.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).last.map(String.init) ?? "" }
        XCTAssertEqual(csv.split(separator: "\n").first, "ts,t")
        XCTAssertEqual(values.map { Double($0) }, readings.map { Optional($0) }, csv)

        // vigilctl alerts says which alerts have evidence.
        let listed = try ctl(["alerts", "--db", dir.file("vigil.db"), "--format", "jsonl", "--state", "raised"])
        let objs = String(decoding: listed.out, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        XCTAssertEqual(objs.count, 4)
        for o in objs {
            let has = (o["evidence"] as? NSNumber) != nil
            XCTAssertEqual(has, o["pipeline"] as? String != "quiet", "\(o)")
        }
        // No evidence: a clear message and status 1.
        let none = try ctl(["evidence", alerts["quiet"]!, "--db", dir.file("vigil.db"), "-o", dir.file("x")])
        XCTAssertEqual(none.status, 1)
        XCTAssertTrue(none.err.contains("has no evidence"), none.err)
        XCTAssertEqual(curl("http://127.0.0.1:\(httpPort)/evidence/\(alerts["quiet"]!)").status, 404)
        // Private: the folder and files are the owner's and the group's.
        let mode = ((try FileManager.default.attributesOfItem(atPath: dir.file("evidence")))[.posixPermissions] as? NSNumber)?.intValue ?? 0
        XCTAssertEqual(mode & 0o007, 0)
    }

    func testWithATokenFileEvidenceNeedsTheBearerToken() throws {
        let broker = try Broker()
        let token = dir.write("token", "tok-\(UUID().uuidString)\n")
        chmod(token, 0o600)
        let daemon = try startDaemon(writeConfig(port: broker.port, extraHTTP: #", "token_file": "\#(token)""#))
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        let frame = pgm(32, 24) { _, _ in 250 }
        let mids = [try pub.publish("sensors/cam9/camera", frame.payload)]
        XCTAssertTrue(pub.waitForAcks(mids))
        XCTAssertTrue(waitUntil(timeout: 20) { self.evidenceRows().count == 1 }, daemon.output)
        let uuid = try XCTUnwrap(evidenceRows().first?[0].string)
        let url = "http://127.0.0.1:\(httpPort)/evidence/\(uuid)"
        XCTAssertEqual(curl(url).status, 401)
        XCTAssertEqual(curl(url, headers: ["Authorization: Bearer wrong"]).status, 401)
        let secret = String(decoding: FileManager.default.contents(atPath: token)!, as: UTF8.self).trimmingCharacters(in: .newlines)
        let ok = curl(url, headers: ["Authorization: Bearer \(secret)"])
        XCTAssertEqual(ok.status, 200)
        XCTAssertTrue(ok.body == FileManager.default.contents(atPath: dir.file("evidence/\(uuid).tar")).map { Array($0) }, "the archive, byte-exact")
    }

    func testWithSyncEvidenceTheArchiveGoesToTheCloudAfterAlertsAndBeforeDetections() throws {
        let broker = try Broker()
        // The cloud keeps its subscriber's session across the outage, as a real one does: a
        // receiver that subscribed only after the cloud came back could miss what vigild sent
        // in between (the broker acks a batch no one is subscribed to yet, and it is gone).
        let cloud = try Broker(persistence: true)
        defer { cloud.stop() }
        let receiver = try CloudReceiver(port: cloud.port, expectedNode: "ev")
        defer { receiver.close() }
        cloud.stop()
        let cloudPort = cloud.port
        let sync = """
            { "mqtt": { "host": "127.0.0.1", "port": \(cloudPort) }, "evidence": true, "evidence_batch_kb": 8,
              "batch": 500, "interval_s": 0.2, "backoff_min_s": 0.2, "backoff_max_s": 0.5 }
            """
        let daemon = try startDaemon(writeConfig(port: broker.port, sync: sync))
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        // Two cameras, each raises once; the cloud is down meanwhile, so everything waits.
        var mids: [Int32] = []
        for cam in ["camA", "camB"] {
            for k in 0..<4 { mids.append(try pub.publish("sensors/\(cam)/camera", pgm(32, 24) { x, y in k < 2 ? UInt8((x + y) % 9) : UInt8(200 + (x * y + k) % 50) }.payload)) }
        }
        XCTAssertTrue(pub.waitForAcks(mids))
        XCTAssertTrue(waitUntil(timeout: 20) { self.evidenceRows().count == 2 }, daemon.output)
        try cloud.start()
        XCTAssertTrue(waitUntil(timeout: 20) { receiver.archives.count == 2 && receiver.types.filter { $0 == "detection" }.count == 8 },
                      "types \(receiver.types)\n\(daemon.output)")
        for r in evidenceRows() {
            let file = FileManager.default.contents(atPath: r[3].string!).map { Array($0) }
            XCTAssertTrue(receiver.archives[r[0].string!] == file, "the archive at the cloud is the file, byte-exact")
        }
        let types = receiver.types
        let lastAlert = types.lastIndex(of: "alert") ?? -1, firstEvidence = types.firstIndex(of: "evidence") ?? -1
        let lastEvidence = types.lastIndex(of: "evidence") ?? -1, firstDetection = types.firstIndex(of: "detection") ?? -1
        XCTAssertTrue(lastAlert < firstEvidence && lastEvidence < firstDetection, "alerts, then evidence, then detections: \(types)")
        XCTAssertTrue(waitUntil(timeout: 10) {
            (try? Database(path: self.dir.file("vigil.db"), mode: .readOnly).scalar("SELECT count(*) FROM evidence WHERE synced_at IS NULL").int) == 0
        }, "evidence rows are marked synced on the cloud's acknowledgement")
        XCTAssertEqual(receiver.bad, 0)
    }

    func testHomeAssistantGetsTheLastCameraAlertsTriggerFrameWhenSnapshotsAreOn() throws {
        let broker = try Broker()
        let daemon = try startDaemon(writeConfig(port: broker.port, homeAssistant: #"{ "discovery": true, "snapshots": true }"#))
        defer { daemon.stop() }
        let watch = try TestClient(port: broker.port, subscribe: ["homeassistant/#", "vigil/+/snapshot/#"])
        defer { watch.close() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        let dark = pgm(32, 24) { x, y in UInt8((x ^ y) % 16) }, bright = pgm(32, 24) { x, y in UInt8(190 + (x + 2 * y) % 60) }
        var mids = [try pub.publish("sensors/door/camera", dark.payload), try pub.publish("sensors/door/camera", bright.payload)]
        mids.append(try pub.publish("sensors/mic/audio", wav(s16([1, 2, 3, 4]), rate: 8000)))
        XCTAssertTrue(pub.waitForAcks(mids))
        XCTAssertTrue(waitUntil(timeout: 20) { watch.messages.contains { $0.topic == "vigil/ev/snapshot/camera/door" } }, daemon.output)
        let snap = try XCTUnwrap(watch.messages.first { $0.topic == "vigil/ev/snapshot/camera/door" })
        XCTAssertEqual(decodeGreyPNG(snap.payload)?.pixels, bright.pixels, "the trigger frame, byte-exact after PNG")
        let config = try XCTUnwrap(watch.messages.first { $0.topic.hasPrefix("homeassistant/image/") && $0.topic.hasSuffix("_snapshot/config") })
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(config.payload)) as? [String: Any])
        XCTAssertEqual(o["image_topic"] as? String, "vigil/ev/snapshot/camera/door")
        XCTAssertEqual(o["content_type"] as? String, "image/png")
        XCTAssertFalse(watch.messages.contains { $0.topic.hasPrefix("homeassistant/image/") && $0.topic.contains("audio") }, "cameras only")
        // Retained: a client that comes later gets it at once.
        let late = try TestClient(port: broker.port, subscribe: ["vigil/ev/snapshot/#"])
        defer { late.close() }
        XCTAssertTrue(waitUntil(timeout: 5) { late.messages.contains { $0.retain && $0.payload == snap.payload } })
    }

    func testSnapshotsAreOffByDefault() throws {
        let broker = try Broker()
        let daemon = try startDaemon(writeConfig(port: broker.port, homeAssistant: #"{ "discovery": true }"#))
        defer { daemon.stop() }
        let watch = try TestClient(port: broker.port, subscribe: ["homeassistant/#", "vigil/+/snapshot/#"])
        defer { watch.close() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }
        let mids = [try pub.publish("sensors/door/camera", pgm(32, 24) { _, _ in 240 }.payload)]
        XCTAssertTrue(pub.waitForAcks(mids))
        XCTAssertTrue(waitUntil(timeout: 20) { self.evidenceRows().count == 1 }, daemon.output)
        Thread.sleep(forTimeInterval: 0.5)   // the point: no snapshot comes (a negative check)
        XCTAssertFalse(watch.messages.contains { $0.topic.contains("snapshot") }, "no frame goes to the broker unless asked")
        XCTAssertTrue(watch.messages.contains { $0.topic.hasPrefix("homeassistant/binary_sensor/") })
    }

    func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard needle.count <= hay.count else { return nil }
        var i = 0
        while i + needle.count <= hay.count {
            if hay[i] == needle[0] && Array(hay[i..<i + needle.count]) == needle { return i }
            i += 2   // 16-bit samples
        }
        return nil
    }
}
