import Foundation
import TestSupport
import XCTest

/// Issue 9, scenario 5: 10,000 malformed payloads interleaved with good traffic on the same
/// devices. Every good frame becomes a row, every bad one is counted as rejected.
final class MalformedFloodTests: ResilienceCase {
    static let maxPayload = 65536

    func pgm(width: Int = 16, height: Int = 12, fill: UInt8) -> [UInt8] {
        Array("P5\n\(width) \(height)\n255\n".utf8) + [UInt8](repeating: fill, count: width * height)
    }

    /// A 16-bit mono WAV header at 8000 Hz whose data chunk declares `declared` bytes.
    func wavHeader(declared: Int) -> [UInt8] {
        func u32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xff) } }
        func u16(_ v: Int) -> [UInt8] { (0..<2).map { UInt8((v >> (8 * $0)) & 0xff) } }
        return Array("RIFF".utf8) + u32(36 + declared) + Array("WAVEfmt ".utf8) + u32(16)
            + u16(1) + u16(1) + u32(8000) + u32(16000) + u16(2) + u16(16) + Array("data".utf8) + u32(declared)
    }

    func env(_ t: Double, _ h: Double, _ p: Double = 1013, _ co2: String = "400") -> String {
        #"{"AM2301":{"Temperature":\#(t),"Humidity":\#(h)},"pressure":\#(p),"co2":\#(co2)}"#
    }

    /// The i-th bad payload: (topic, payload, what it is).
    func bad(_ i: Int, device: String) -> (String, [UInt8]) {
        if i % 50 == 49 {   // oversize: over limits.max_payload_bytes
            return ("sensors/\(device)/vec", [UInt8](repeating: 7, count: MalformedFloodTests.maxPayload + 4096))
        }
        switch i % 9 {
        case 0: return ("sensors/\(device)/env", Array(#"{"AM2301": {"Temperature": 21.5, "Humid"#.utf8))   // malformed JSON
        case 1: return ("sensors/\(device)/env", Array(env(21, 40, 1013, "1e999").utf8))                  // Inf in JSON
        case 2: return ("sensors/\(device)/vec", f32le([1, 2, 3]))                                          // wrong size
        case 3: return ("sensors/\(device)/vec", f32le([1, .nan, 3, 4]))                                    // NaN
        case 4: return ("sensors/\(device)/vec", f32le([.infinity, 0, 0, 1]))                               // Inf
        case 5: return ("sensors/\(device)/cam", Array(pgm(fill: 90).prefix(60)))                           // truncated PGM
        case 6: return ("sensors/\(device)/cam", Array("P6\n16 12\n255\n".utf8) + [UInt8](repeating: 1, count: 576)) // not P5
        case 7: return ("sensors/\(device)/wav", wavHeader(declared: 1600) + [UInt8](repeating: 0, count: 100))  // truncated data
        default: return ("sensors/\(device)/wav", Array(wavHeader(declared: 1600).prefix(20)))               // truncated header
        }
    }

    func testTenThousandMalformedPayloadsAmongGoodTraffic() throws {
        let broker = try Broker()
        let path = dir.write("vigil.json", """
            {
              "node": "res-node",
              "mqtt": { "host": "127.0.0.1", "port": \(broker.port), "client_id": "vigild-res-flood" },
              "storage": { "path": "\(dbPath)", "commit_interval_ms": 100 },
              "limits": { "max_payload_bytes": \(MalformedFloodTests.maxPayload) },
              "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" },
                          "bright": { "path": "\(Paths.fixture("brightness.onnx"))" },
                          "sound": { "path": "\(Paths.fixture("sound_small.onnx"))" } },
              "pipelines": [
                { "name": "env", "topic": "sensors/{device}/env", "format": "json",
                  "fields": ["AM2301.Temperature", "AM2301.Humidity", "pressure", "co2"], "model": "tiny" },
                { "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny" },
                { "name": "cam", "topic": "sensors/{device}/cam", "format": "pgm", "model": "bright" },
                { "name": "wav", "topic": "sensors/{device}/wav", "format": "wav", "model": "sound" }
              ]
            }
            """)
        let daemon = try startDaemon(path)
        defer { daemon.stop() }
        let pub = try TestClient(port: broker.port)
        defer { pub.close() }

        let good = 2000, badPerGood = 5
        var goodBy: [String: Int] = [:]
        var sent = 0, refused = 0
        var mids: [Int32] = []
        let start = Date()
        ResilienceCase.paced(rate: 1000, count: good * (1 + badPerGood)) { n in
            let g = n / (1 + badPerGood), k = n % (1 + badPerGood)
            let device = "d\(g % 4)"
            let topic: String, payload: [UInt8]
            if k == 0 {
                switch g % 5 {
                case 0, 1: (topic, payload) = ("sensors/\(device)/vec", f32le([Float(g % 9), 1, 2, 3])); goodBy["vec", default: 0] += 1
                case 2, 3: (topic, payload) = ("sensors/\(device)/env", Array(env(Double(g % 30), 40).utf8)); goodBy["env", default: 0] += 1
                default: (topic, payload) = ("sensors/\(device)/cam", pgm(fill: UInt8(g % 256))); goodBy["cam", default: 0] += 1
                }
            } else {
                (topic, payload) = bad(g * badPerGood + k - 1, device: device)
            }
            if let mid = try? pub.publish(topic, payload) { mids.append(mid); sent += 1 } else { refused += 1 }
        }
        XCTAssertEqual(refused, 0)
        XCTAssertTrue(pub.waitForAcks(mids, timeout: 30))
        let publishSeconds = -start.timeIntervalSinceNow
        XCTAssertTrue(waitUntil(timeout: 30) { self.rowCount() >= good }, "rows \(rowCount())\n\(daemon.output.suffix(3000))")
        Thread.sleep(forTimeInterval: 0.5)   // nothing more arrives
        XCTAssertTrue(daemon.isRunning)
        XCTAssertEqual(daemon.stop(), 0)

        XCTAssertEqual(rowCount(), good, "rows == good frames")
        for p in ["vec", "env", "cam"] {
            XCTAssertEqual(int("SELECT count(*) FROM detections WHERE pipeline = '\(p)'"), goodBy[p], p)
        }
        XCTAssertEqual(int("SELECT count(*) FROM detections WHERE pipeline = 'wav'"), 0)
        let stopped = stoppedLine(daemon.output) ?? [:]
        XCTAssertEqual(stopped["frames"], good * (1 + badPerGood), daemon.output.suffix(2000).description)
        XCTAssertEqual(stopped["detections"], good)
        XCTAssertEqual(stopped["rejected"], good * badPerGood)
        XCTAssertEqual(stopped["dropped"], 0)
        let logLines = daemon.output.split(separator: "\n").count
        XCTAssertLessThan(logLines, good * badPerGood / 10, "rejections are logged rate-limited, not one line each")
        report("malformed flood: \(sent) payloads in \(fmt(publishSeconds)) s (\(good) good: \(goodBy["vec"] ?? 0) f32le, "
               + "\(goodBy["env"] ?? 0) json, \(goodBy["cam"] ?? 0) pgm; \(good * badPerGood) bad: malformed/Inf JSON, wrong-size/NaN/Inf f32le, "
               + "truncated/P6 PGM, truncated WAV data/header, \(good * badPerGood / 50) oversize); rows \(rowCount()) == good frames; "
               + "vigild: frames \(stopped["frames"] ?? -1), detections \(stopped["detections"] ?? -1), rejected \(stopped["rejected"] ?? -1), "
               + "dropped \(stopped["dropped"] ?? -1); \(logLines) log lines")
    }
}
