import Foundation
import SQLite
import TestSupport
import XCTest

/// Every payload format end to end: a real mosquitto, the real vigild, real fixture models
/// and a real SQLite file. Frames differ from what the models take (sizes, chunking, rates,
/// missing fields) so the stream adapters do real work.
final class PipelineIntegrationTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir("vigil-pit") }
    override func tearDown() { dir.remove() }

    func writeConfig(port: Int) -> String {
        var csv = "index,mid,display_name\n"
        for i in 0..<521 {
            csv += "\(i),/m/\(i),\(i == 435 ? "Glass" : i == 437 ? "Shatter" : i == 464 ? "Breaking" : i == 393 ? "\"Smoke detector, smoke alarm\"" : "Class \(i)")\n"
        }
        _ = dir.write("class_map.csv", csv)
        return dir.write("vigil.json", """
            {
              "node": "it",
              "mqtt": { "host": "127.0.0.1", "port": \(port), "client_id": "vigild-\(UUID().uuidString.prefix(6))" },
              "storage": { "path": "\(dir.file("vigil.db"))", "commit_interval_ms": 50 },
              "limits": { "max_payload_bytes": 1048576 },
              "models": {
                "motion": { "path": "\(Paths.fixture("motion_small.onnx"))" },
                "bright": { "path": "\(Paths.fixture("brightness.onnx"))" },
                "sound": { "path": "\(Paths.fixture("sound_small.onnx"))" },
                "anomaly": { "path": "\(Paths.fixture("free_dims.onnx"))" },
                "wide": { "path": "\(Paths.fixture("wide_passthrough.onnx"))", "threads": 1 }
              },
              "pipelines": [
                { "name": "camera", "topic": "sensors/{device}/camera", "format": "pgm", "model": "motion", "max_width": 640, "max_height": 480 },
                { "name": "raw", "topic": "sensors/{device}/raw", "format": "gray8", "width": 64, "height": 48, "model": "bright" },
                { "name": "audio", "topic": "sensors/{device}/audio", "format": "wav", "model": "sound" },
                { "name": "pcm", "topic": "sensors/{device}/pcm", "format": "pcm_s16le", "sample_rate": 16000,
                  "resample": true, "hop": 1.0, "model": "sound" },
                { "name": "env", "topic": "tele/{device}/SENSOR", "format": "json",
                  "fields": ["AM2301.Temperature", "AM2301.Humidity"], "model": "anomaly" },
                { "name": "spectra", "topic": "sensors/{device}/spectra", "format": "f32le", "model": "wide",
                  "labels_file": "class_map.csv",
                  "label_groups": { "glass_breaking": ["Glass", "Shatter", "Breaking"], "smoke_alarm": ["Smoke detector, smoke alarm"] },
                  "alert": { "min_score": 0.6, "cooldown_s": 0 } }
              ]
            }
            """)
    }

    func startDaemon(_ path: String) throws -> ChildProcess {
        let d = try ChildProcess(Paths.executable("vigild"), ["--config", path], outputPath: dir.file("vigild.log"))
        XCTAssertTrue(d.waitSubscribed(), d.output)
        // The retained status says online too.
        XCTAssertTrue(waitForOnline(configAt: path), d.output)
        return d
    }

    /// (ts, device, label, score, scores) of one pipeline's rows, in order.
    func rows(_ pipeline: String) -> [(ts: Double, device: String, label: String, score: Double, scores: [String: Double])] {
        guard FileManager.default.fileExists(atPath: dir.file("vigil.db")),
              let db = try? Database(path: dir.file("vigil.db"), mode: .readOnly),
              let r = try? db.query("SELECT ts, device, label, score, scores FROM detections WHERE pipeline = '\(pipeline)' ORDER BY id")
        else { return [] }
        return r.map { row in
            let scores = (try? JSONSerialization.jsonObject(with: Data(row[4].string!.utf8))) as? [String: Double] ?? [:]
            return (row[0].double!, row[1].string!, row[2].string!, row[3].double!, scores)
        }
    }

    func pgm(_ w: Int, _ h: Int, _ pixel: (Int, Int) -> UInt8) -> [UInt8] {
        var p = Array("P5\n\(w) \(h)\n255\n".utf8)
        for y in 0..<h { for x in 0..<w { p.append(pixel(x, y)) } }
        return p
    }

    func s16le(_ x: [Float]) -> [UInt8] {
        x.flatMap { v -> [UInt8] in
            let s = UInt16(bitPattern: Int16(max(-32768, min(32767, (v * 32767).rounded()))))
            return [UInt8(s & 0xff), UInt8(s >> 8)]
        }
    }

    func wav(_ x: [Float], rate: Int) -> [UInt8] {
        func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xff) } }
        let data = s16le(x)
        let fmt: [UInt8] = [1, 0, 1, 0] + le32(rate) + le32(rate * 2) + [2, 0, 16, 0]
        return Array("RIFF".utf8) + le32(36 + data.count) + Array("WAVEfmt ".utf8) + le32(16) + fmt + Array("data".utf8) + le32(data.count) + data
    }

    func testCameraFramesOfAnotherSizeAndAudioInUnevenChunks() throws {
        let broker = try Broker()
        let daemon = try startDaemon(writeConfig(port: broker.port))
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        var mids: [Int32] = []

        // Camera: 64x48 PGM frames into a 16x12 (previous, current) model. Still, still, then
        // a bright square appears. The first frame has no predecessor, so it makes no row.
        let still = pgm(64, 48) { x, y in UInt8((x + y) % 50) }
        let moved = pgm(64, 48) { x, y in x >= 16 && x < 48 && y >= 12 && y < 36 ? 255 : UInt8((x + y) % 50) }
        for f in [still, still, still, moved] { mids.append(try pub.publish("sensors/cam1/camera", f)) }
        mids.append(try pub.publish("sensors/cam1/camera", Array("P5\n100000 100000\n255\n".utf8) + [0, 0, 0]))  // huge header
        // gray8: a constant 64x48 frame of 51 -> mean 0.2 after area averaging to 16x12.
        mids.append(try pub.publish("sensors/cam2/raw", [UInt8](repeating: 51, count: 64 * 48)))

        // Audio: 8 kHz WAV in uneven chunks, quiet then loud; 4000 samples make
        // (4000 - 800) / 400 + 1 = 9 windows of 800 with the default 50% hop.
        let audio = (0..<4000).map { i -> Float in Float(sin(Double(i) * 0.3)) * (i < 2000 ? 0.01 : 0.5) }
        var at = 0
        for n in [123, 977, 1500, 37, 1363] {
            mids.append(try pub.publish("sensors/mic1/audio", wav(Array(audio[at..<at + n]), rate: 8000)))
            at += n
        }
        // 16 kHz raw PCM into the 8 kHz model, resampled, hop 1.0 (no overlap): 16000
        // samples -> 8000 -> 10 windows, however the chunks fall.
        let pcm = (0..<16000).map { i -> Float in Float(sin(Double(i) * 0.05)) * 0.5 }
        at = 0
        for n in [1, 4999, 3000, 7999, 1] {
            mids.append(try pub.publish("sensors/mic2/pcm", s16le(Array(pcm[at..<at + n]))))
            at += n
        }
        mids.append(try pub.publish("sensors/mic2/pcm", [1, 2, 3]))  // odd length
        XCTAssertTrue(pub.waitForAcks(mids))
        XCTAssertTrue(waitUntil(timeout: 20) {
            self.rows("camera").count == 3 && self.rows("audio").count == 9 && self.rows("pcm").count == 10 && self.rows("raw").count == 1
        }, "camera \(rows("camera").count) audio \(rows("audio").count) pcm \(rows("pcm").count)\n\(daemon.output)")

        guard rows("camera").count == 3, rows("raw").count == 1 else { return }
        XCTAssertEqual(rows("camera").map(\.label), ["still", "still", "motion"])
        XCTAssertEqual(rows("raw")[0].scores["bright"]!, 0.2, accuracy: 1e-5)
        let audioRows = rows("audio")
        XCTAssertEqual(audioRows.first?.label, "quiet")
        XCTAssertEqual(audioRows.last?.label, "loud")
        XCTAssertEqual(audioRows.map(\.ts), audioRows.map(\.ts).sorted(), "windows are stamped in order")
        XCTAssertTrue(rows("pcm").allSatisfy { $0.label == "loud" && $0.device == "mic2" })

        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertTrue(daemon.output.contains("pgm declares 100000x100000 pixels, over max_width x max_height (640x480)"), daemon.output)
        XCTAssertTrue(daemon.output.contains("pcm_s16le payload of 3 bytes"), daemon.output)
    }

    func testSensorsThatSkipFieldsAndALargeClassifierWithLabelGroups() throws {
        let broker = try Broker()
        let daemon = try startDaemon(writeConfig(port: broker.port))
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        var mids: [Int32] = []
        // Tasmota-style readings with their own ts; some skip a field. The window (8 rows)
        // starts once both fields were seen (message 2), so 10 messages make rows for
        // messages 9 and 10; an out-of-order one between them is dropped and counted.
        var temps: [Float] = [], hums: [Float] = []
        var lastT: Float = 0, lastH: Float = 0
        for i in 1...10 {
            let t = 20 + Float(i) * 0.5, h = 40 + Float(i)
            var obj: [String] = []
            if i != 3 { obj.append("\"Temperature\":\(t)"); lastT = t }
            if i != 1 && i != 6 { obj.append("\"Humidity\":\(h)"); lastH = h }
            if i >= 2 { temps.append(lastT); hums.append(lastH) }
            mids.append(try pub.publish("tele/room1/SENSOR", #"{"Time":"x","AM2301":{\#(obj.joined(separator: ","))},"ts":\#(1_700_000_000 + i * 60)}"#))
            if i == 9 { mids.append(try pub.publish("tele/room1/SENSOR", #"{"AM2301":{"Temperature":99,"Humidity":99},"ts":1700000001}"#)) }
        }
        // A 521-score classifier; its labels come from a CSV and three of them form a group.
        var x = [Float](repeating: 0.01, count: 521)
        x[435] = 0.3; x[437] = 0.7; x[464] = 0.2; x[393] = 0.1; x[5] = 0.95
        mids.append(try pub.publish("sensors/mic3/spectra", f32le(x)))
        XCTAssertTrue(pub.waitForAcks(mids))
        guard waitUntil(timeout: 20, { self.rows("env").count == 2 && self.rows("spectra").count == 1 }) else {
            daemon.stop()
            return XCTFail("env \(rows("env").count), spectra \(rows("spectra").count):\n\(daemon.output)")
        }

        let env = rows("env")
        XCTAssertEqual(env.map(\.ts), [1_700_000_540, 1_700_000_600], "rows carry the readings' own ts")
        // free_dims scores sigmoid(mean(window)); the last window is readings 3...10, carried forward.
        let window = zip(temps.suffix(8), hums.suffix(8)).flatMap { [$0, $1] }
        let mean = Double(window.reduce(0, +)) / Double(window.count)
        XCTAssertEqual(env[1].score, 1 / (1 + exp(-mean)), accuracy: 1e-5)
        let spectra = rows("spectra")[0]
        XCTAssertEqual(spectra.label, "glass_breaking")
        XCTAssertEqual(spectra.score, 0.7, accuracy: 1e-6)
        XCTAssertEqual(Set(spectra.scores.keys), ["glass_breaking", "smoke_alarm"], "only group scores are stored")
        // Alert rules read the group scores (not the model's 521 labels), and no group is background.
        XCTAssertTrue(waitUntil(timeout: 5) {
            (try? Database(path: self.dir.file("vigil.db"), mode: .readOnly)
                .scalar("SELECT label FROM alerts WHERE pipeline = 'spectra' AND state = 'raised'").string) == "glass_breaking"
        }, daemon.output)
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertTrue(daemon.output.contains("rejected (outOfOrder)"), daemon.output)
    }

    func testAPipelineThatDoesNotFitItsModelStopsTheStartWithOneLine() throws {
        let text = try String(contentsOfFile: writeConfig(port: 1), encoding: .utf8)
            .replacingOccurrences(of: #""format": "pgm", "model": "motion""#, with: #""format": "pgm", "model": "sound""#)
        let path = dir.write("bad.json", text)
        let d = try ChildProcess(Paths.executable("vigild"), ["--config", path], outputPath: dir.file("out.log"))
        d.process.waitUntilExit()
        XCTAssertNotEqual(d.process.terminationStatus, 0)
        XCTAssertEqual(d.output.split(separator: "\n").count, 1, d.output)
        XCTAssertTrue(d.output.contains(#"pipeline "camera" with model "sound": the model's vigil.task is sound, which a pgm pipeline cannot feed"#), d.output)
    }
}
