import Foundation
import MQTT
import SQLite
import TestSupport
import VigilCore
import VigilTools
import XCTest

/// Certificates made by openssl for one test: a CA, a server certificate for 127.0.0.1, a client certificate.
struct TestPKI {
    let dir: TempDir
    var ca: String { dir.file("ca.pem") }
    var serverCert: String { dir.file("server.pem") }
    var serverKey: String { dir.file("server.key") }
    var clientCert: String { dir.file("client.pem") }
    var clientKey: String { dir.file("client.key") }

    init(_ dir: TempDir, name: String = "Vigil Test CA") throws {
        self.dir = dir
        let d = dir.path
        try TestPKI.sh("""
            set -e
            cd '\(d)'
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=\(name)' -keyout ca.key -out ca.pem 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext
            openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout server.key -out server.csr 2>/dev/null
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -subj '/CN=vigild-test' -keyout client.key -out client.csr 2>/dev/null
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out client.pem 2>/dev/null
            chmod 644 *.key *.pem
            """)
    }

    @discardableResult
    static func sh(_ script: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        if p.terminationStatus != 0 { throw NSError(domain: "sh", code: Int(p.terminationStatus), userInfo: [NSLocalizedDescriptionKey: text]) }
        return text
    }
}

/// Store-and-forward end to end: a real vigild, a real SQLite file, a real local broker and a
/// real cloud (a second mosquitto, or an HTTP server), with outages, kills and TLS.
final class SyncIntegrationTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir("vigil-sync") }
    override func tearDown() { dir.remove() }

    var dbPath: String { dir.file("vigil.db") }

    func config(localPort: Int, sync: String) -> String {
        dir.write("vigil.json", """
            {
              "node": "test-node",
              "mqtt": { "host": "127.0.0.1", "port": \(localPort), "client_id": "vigild-\(UUID().uuidString.prefix(6))" },
              "storage": { "path": "\(dbPath)", "commit_interval_ms": 50 },
              "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" } },
              "pipelines": [ { "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny" } ],
              "sync": \(sync)
            }
            """)
    }

    func mqttSync(port: Int, tls: String = "", batch: Int = 25, inflight: Int = 4) -> String {
        """
        { "mqtt": { "host": "127.0.0.1", "port": \(port), "topic": "vigil/{node}/records"\(tls.isEmpty ? "" : ", \"tls\": \(tls)") },
          "batch": \(batch), "interval_s": 0.2, "backoff_min_s": 0.2, "backoff_max_s": 1, "max_inflight": \(inflight),
          "connect_timeout_s": 2 }
        """
    }

    func startDaemon(_ configPath: String, log: String = "vigild.log") throws -> ChildProcess {
        let d = try ChildProcess(Paths.executable("vigild"), ["--config", configPath], outputPath: dir.file(log))
        XCTAssertTrue(waitUntil(timeout: 15) { d.output.contains("ready") || !d.isRunning }, d.output)
        return d
    }

    /// Rows written before vigild starts (as an earlier run would have left them).
    @discardableResult
    func seed(alerts: Int, detections: Int) throws -> Set<String> {
        var s = StorageSettings()
        s.path = dbPath
        let store = try Store(settings: s)
        var uuids: Set<String> = []
        for i in 0..<alerts {
            let a = AlertRecord(ts: 1_700_000_000 + Double(i), pipeline: "vec", device: "d\(i)", state: "raised",
                                label: "high", score: 0.9, severity: "critical", actions: #"[{"action":"siren","ok":true}]"#)
            uuids.insert(a.uuid)
            store.append(a)
        }
        for i in 0..<detections {
            let d = Detection(ts: 1_700_000_000 + Double(i), pipeline: "vec", device: "d\(i % 5)", model: "tiny", label: "low",
                              score: 0.7, scores: [("low", 0.7), ("mid", 0.2), ("high", 0.1)], latencyMs: 0.5)
            uuids.insert(d.uuid)
            store.append(d)
        }
        store.close()
        return uuids
    }

    func query(_ sql: String) -> [[SQLValue]] {
        guard let db = try? Database(path: dbPath, mode: .readOnly) else { return [] }
        return (try? db.query(sql)) ?? []
    }

    func int(_ sql: String) -> Int { Int(query(sql).first?.first?.int ?? -1) }

    var storedUUIDs: Set<String> {
        Set(query("SELECT uuid FROM detections UNION ALL SELECT uuid FROM alerts").compactMap { $0[0].string })
    }

    var unsynced: Int {
        int("SELECT (SELECT count(*) FROM detections WHERE synced_at IS NULL) + (SELECT count(*) FROM alerts WHERE synced_at IS NULL)")
    }

    // MARK: MQTT

    func testCloudBrokerDownForAWhileThenBackEveryStoredRowArrives() throws {
        let local = try Broker()
        let persist = TempDir("vigil-cloud-db")
        defer { persist.remove() }
        chmod(persist.path, 0o777)   // mosquitto drops root for its own user
        let cloud = try Broker(extraConfig: "persistence true\npersistence_location \(persist.path)/\nautosave_interval 1")
        let receiver = try CloudReceiver(port: cloud.port, expectedNode: "test-node")
        defer { receiver.close() }
        try seed(alerts: 3, detections: 300)
        let daemon = try startDaemon(config(localPort: local.port, sync: mqttSync(port: cloud.port)))
        defer { daemon.stop() }
        XCTAssertTrue(waitUntil(timeout: 20) { receiver.uuids.count == 303 }, "\(receiver.uuids.count)\n\(daemon.output)")
        XCTAssertEqual(Array(receiver.types.prefix(3)), ["alert", "alert", "alert"], "alerts go before detections")
        XCTAssertTrue(waitUntil { self.unsynced == 0 })
        XCTAssertNotNil(query("SELECT value FROM meta WHERE key = 'last_sync_at'").first?.first?.string)

        // The cloud goes away; frames keep coming and are kept.
        cloud.stop()
        XCTAssertTrue(waitUntil { daemon.output.contains("lost cloud broker 127.0.0.1:\(cloud.port)") }, daemon.output)
        let pub = try TestClient(port: local.port)
        var mids: [Int32] = []
        for i in 0..<40 { mids.append(try pub.publish("sensors/dev\(i % 4)/vec", f32le([Float(i), 1, 2, 3]))) }
        XCTAssertTrue(pub.waitForAcks(mids))
        XCTAssertTrue(waitUntil(timeout: 15) { self.int("SELECT count(*) FROM detections") == 340 }, daemon.output)
        Thread.sleep(forTimeInterval: 1.5)   // the point: 7 sync intervals pass with nothing marked (a negative check)
        XCTAssertEqual(unsynced, 40, "rows stay unsynced while the cloud is down")
        let lastError = query("SELECT value FROM meta WHERE key = 'last_sync_error'").first?.first?.string ?? ""
        XCTAssertTrue(lastError.contains("cloud broker 127.0.0.1:\(cloud.port)"), lastError)

        // Back: everything stored arrives.
        try cloud.start()
        XCTAssertTrue(waitUntil(timeout: 30) { receiver.uuids.count == 343 && self.unsynced == 0 },
                      "received \(receiver.uuids.count), unsynced \(unsynced)\n\(daemon.output)")
        XCTAssertEqual(receiver.uuids, storedUUIDs, "distinct uuids at the cloud = rows stored")
        XCTAssertEqual(receiver.bad, 0)
        XCTAssertTrue(daemon.output.contains("sync: connected to cloud broker"), daemon.output)
    }

    func testVigildKilledMidSyncResumesAndEveryRowArrives() throws {
        let local = try Broker()
        let cloud = try Broker()
        let receiver = try CloudReceiver(port: cloud.port, expectedNode: "test-node")
        defer { receiver.close() }
        let all = try seed(alerts: 10, detections: 8000)
        let path = config(localPort: local.port, sync: mqttSync(port: cloud.port, batch: 5, inflight: 1))
        let first = try startDaemon(path)
        XCTAssertTrue(waitUntil(timeout: 30) { receiver.uuids.count >= 200 }, first.output)
        first.stop(SIGKILL)
        let syncedAtKill = all.count - unsynced
        XCTAssertLessThan(syncedAtKill, all.count, "killed mid-sync")
        XCTAssertGreaterThan(syncedAtKill, 0)
        XCTAssertEqual(query("PRAGMA integrity_check").first?.first?.string, "ok")

        let second = try startDaemon(path, log: "vigild2.log")
        defer { second.stop() }
        XCTAssertTrue(waitUntil(timeout: 120) { receiver.uuids.count == all.count && self.unsynced == 0 },
                      "received \(receiver.uuids.count) of \(all.count), unsynced \(unsynced)\n\(second.output)")
        XCTAssertEqual(receiver.uuids, all)
        XCTAssertGreaterThanOrEqual(receiver.records, all.count)
        print("killed after \(syncedAtKill) acknowledged rows; the cloud saw \(receiver.records - all.count) duplicates")
    }

    func tlsBroker(_ pki: TestPKI, tlsPort: Int, requireCertificate: Bool = true) throws -> Broker {
        try Broker(extraConfig: """
            listener \(tlsPort) 127.0.0.1
            cafile \(pki.ca)
            certfile \(pki.serverCert)
            keyfile \(pki.serverKey)
            require_certificate \(requireCertificate)
            """)
    }

    func testServerTLSWithACAFileDeliversEverything() throws {
        let pki = try TestPKI(TempDir("vigil-pki"))
        defer { pki.dir.remove() }
        let local = try Broker()
        let tlsPort = freePort()
        let cloud = try tlsBroker(pki, tlsPort: tlsPort, requireCertificate: false)
        let receiver = try CloudReceiver(port: cloud.port, expectedNode: "test-node")
        defer { receiver.close() }
        let all = try seed(alerts: 1, detections: 40)
        let daemon = try startDaemon(config(localPort: local.port, sync: mqttSync(port: tlsPort, tls: #"{ "ca_file": "\#(pki.ca)" }"#)))
        defer { daemon.stop() }
        XCTAssertTrue(waitUntil(timeout: 20) { receiver.uuids == all && self.unsynced == 0 }, "\(receiver.uuids.count)\n\(daemon.output)")
    }

    func testMutualTLSWithCertificatesMadeByOpenSSL() throws {
        let pki = try TestPKI(TempDir("vigil-pki"))
        defer { pki.dir.remove() }
        let local = try Broker()
        let tlsPort = freePort()
        let cloud = try tlsBroker(pki, tlsPort: tlsPort)
        let receiver = try CloudReceiver(port: cloud.port, expectedNode: "test-node")   // the plain listener, on the cloud's side
        defer { receiver.close() }
        let all = try seed(alerts: 2, detections: 60)
        let tls = #"{ "ca_file": "\#(pki.ca)", "cert_file": "\#(pki.clientCert)", "key_file": "\#(pki.clientKey)" }"#
        let daemon = try startDaemon(config(localPort: local.port, sync: mqttSync(port: tlsPort, tls: tls)))
        defer { daemon.stop() }
        XCTAssertTrue(waitUntil(timeout: 20) { receiver.uuids == all && self.unsynced == 0 },
                      "\(receiver.uuids.count)\n\(daemon.output)\n\(cloud.log)")
        XCTAssertTrue(daemon.output.contains("sync: connected to cloud broker 127.0.0.1:\(tlsPort) (TLS, ca_file \(pki.ca), cert_file \(pki.clientCert))"),
                      daemon.output)
    }

    func testWithoutAClientCertificateTheBrokerRefusesAndRowsStayUnsynced() throws {
        let pki = try TestPKI(TempDir("vigil-pki"))
        defer { pki.dir.remove() }
        let local = try Broker()
        let tlsPort = freePort()
        _ = try tlsBroker(pki, tlsPort: tlsPort)
        let all = try seed(alerts: 1, detections: 10)
        let daemon = try startDaemon(config(localPort: local.port, sync: mqttSync(port: tlsPort, tls: #"{ "ca_file": "\#(pki.ca)" }"#)))
        defer { daemon.stop() }
        let expected = "cannot connect to cloud broker 127.0.0.1:\(tlsPort) (TLS, ca_file \(pki.ca)): no answer (CONNACK) within 2 s; if the broker wants a client certificate, set tls.cert_file and tls.key_file"
        XCTAssertTrue(waitUntil(timeout: 15) { daemon.output.contains(expected) }, daemon.output)
        // It keeps trying (with backoff), and nothing is marked synced.
        XCTAssertTrue(waitUntil(timeout: 15) { daemon.output.components(separatedBy: expected).count > 2 }, daemon.output)
        XCTAssertEqual(unsynced, all.count)
    }

    func testAWrongCAGivesAClearErrorAndRowsStayUnsynced() throws {
        let pki = try TestPKI(TempDir("vigil-pki"))
        let other = try TestPKI(TempDir("vigil-pki-other"), name: "Someone Else CA")
        defer { pki.dir.remove(); other.dir.remove() }
        let local = try Broker()
        let tlsPort = freePort()
        let cloud = try tlsBroker(pki, tlsPort: tlsPort)
        let receiver = try CloudReceiver(port: cloud.port, expectedNode: "test-node")
        defer { receiver.close() }
        let all = try seed(alerts: 2, detections: 20)
        let tls = #"{ "ca_file": "\#(other.ca)", "cert_file": "\#(pki.clientCert)", "key_file": "\#(pki.clientKey)" }"#
        let daemon = try startDaemon(config(localPort: local.port, sync: mqttSync(port: tlsPort, tls: tls)))
        defer { daemon.stop() }
        let expected = "cannot connect to cloud broker 127.0.0.1:\(tlsPort) (TLS, ca_file \(other.ca)"
        XCTAssertTrue(waitUntil(timeout: 15) { daemon.output.contains(expected) }, daemon.output)
        let line = daemon.output.split(separator: "\n").first { $0.contains(expected) } ?? ""
        XCTAssertTrue(line.contains("certificate verify failed"), "the error says why: \(line)\n\(daemon.output)")
        Thread.sleep(forTimeInterval: 2)   // the point: retries pass with nothing marked (a negative check)
        XCTAssertEqual(unsynced, all.count, "nothing is marked synced")
        XCTAssertEqual(receiver.records, 0)
        let lastError = query("SELECT value FROM meta WHERE key = 'last_sync_error'").first?.first?.string ?? ""
        XCTAssertTrue(lastError.contains("certificate verify failed"), lastError)
        XCTAssertTrue(daemon.isRunning)
    }

    // MARK: HTTP

    /// A small HTTP(S) ingest server: checks the bearer token, inflates gzip, answers 503 to
    /// the first `failFirst` requests, and writes each record's uuid (and the encoding) to a file.
    func httpServer(port: Int, token: String, failFirst: Int = 0, tls: TestPKI? = nil) throws -> ChildProcess {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else { throw XCTSkip("needs /usr/bin/python3") }
        let script = dir.write("ingest.py", #"""
            import gzip, http.server, json, ssl, sys
            port, out, token, fail_first = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
            state = {"n": 0}
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    body = self.rfile.read(int(self.headers["Content-Length"]))
                    state["n"] += 1
                    if self.headers.get("Authorization") != "Bearer " + token:
                        self.send_response(401); self.end_headers(); self.wfile.write(b"bad token"); return
                    if state["n"] <= fail_first:
                        self.send_response(503); self.end_headers(); self.wfile.write(b"try later"); return
                    enc = self.headers.get("Content-Encoding", "identity")
                    if enc == "gzip":
                        body = gzip.decompress(body)
                    records = json.loads(body)
                    with open(out, "a") as f:
                        for r in records:
                            f.write("%s %s %s %s\n" % (r["uuid"], r["type"], r["node"], enc))
                    self.send_response(200); self.end_headers()
                def log_message(self, *a): pass
            srv = http.server.HTTPServer(("127.0.0.1", port), H)
            if len(sys.argv) > 5:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(sys.argv[5], sys.argv[6])
                srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
            print("listening", flush=True)
            srv.serve_forever()
            """#)
        var args = [script, "\(port)", dir.file("ingest.txt"), token, "\(failFirst)"]
        if let tls { args += [tls.serverCert, tls.serverKey] }
        let p = try ChildProcess("/usr/bin/python3", args, outputPath: dir.file("ingest.log"))
        XCTAssertTrue(waitUntil { portOpen(port) }, p.output)
        return p
    }

    var ingested: [[String]] {
        ((try? String(contentsOfFile: dir.file("ingest.txt"), encoding: .utf8)) ?? "")
            .split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
    }

    func testHTTPSyncWithGzipAndABearerTokenDeliversEverythingAfterAnOutage() throws {
        let local = try Broker()
        let port = freePort()
        let token = "s3cret-\(UUID().uuidString.prefix(4))"
        let tokenFile = dir.write("token", token + "\n")
        let all = try seed(alerts: 3, detections: 250)
        let sync = """
            { "http": { "url": "http://127.0.0.1:\(port)/ingest", "token_file": "\(tokenFile)", "gzip": true, "timeout_s": 5 },
              "batch": 40, "interval_s": 0.2, "backoff_min_s": 0.2, "backoff_max_s": 1 }
            """
        let daemon = try startDaemon(config(localPort: local.port, sync: sync))
        defer { daemon.stop() }
        // The server is not there yet.
        XCTAssertTrue(waitUntil(timeout: 10) { daemon.output.contains("POST http://127.0.0.1:\(port)/ingest") }, daemon.output)
        Thread.sleep(forTimeInterval: 0.5)   // the point: retries pass with nothing marked (a negative check)
        XCTAssertEqual(unsynced, all.count)
        // Up, but answering 503 twice before it takes anything.
        let server = try httpServer(port: port, token: token, failFirst: 2)
        defer { server.stop() }
        XCTAssertTrue(waitUntil(timeout: 30) { self.unsynced == 0 }, "unsynced \(unsynced)\n\(daemon.output)\n\(server.output)")
        let lines = ingested
        XCTAssertEqual(Set(lines.map { $0[0] }), all, "distinct uuids at the cloud = rows stored")
        XCTAssertEqual(Array(lines.prefix(3).map { $0[1] }), ["alert", "alert", "alert"])
        XCTAssertTrue(lines.allSatisfy { $0[2] == "test-node" && $0[3] == "gzip" })
        XCTAssertTrue(daemon.output.contains("HTTP 503"), daemon.output)
    }

    func testHTTPSyncWithAWrongTokenLeavesRowsUnsynced() throws {
        let local = try Broker()
        let port = freePort()
        let server = try httpServer(port: port, token: "right")
        defer { server.stop() }
        let all = try seed(alerts: 0, detections: 30)
        let sync = """
            { "http": { "url": "http://127.0.0.1:\(port)/ingest", "token_file": "\(dir.file("token"))" },
              "batch": 40, "interval_s": 0.2, "backoff_min_s": 0.2, "backoff_max_s": 1 }
            """
        let daemon = try startDaemon(config(localPort: local.port, sync: sync))
        defer { daemon.stop() }
        // No token file yet: named, retried with backoff, and the daemon runs on.
        XCTAssertTrue(waitUntil(timeout: 10) { daemon.output.contains("cannot read sync.http.token_file \(self.dir.file("token"))") },
                      daemon.output)
        XCTAssertTrue(daemon.isRunning)
        _ = dir.write("token", "wrong")
        XCTAssertTrue(waitUntil(timeout: 10) { daemon.output.contains("HTTP 401: bad token") }, daemon.output)
        XCTAssertEqual(unsynced, all.count)
        // The token file is read for each request: fixing it is enough.
        _ = dir.write("token", "right")
        XCTAssertTrue(waitUntil(timeout: 15) { self.unsynced == 0 }, daemon.output)
        XCTAssertEqual(Set(ingested.map { $0[0] }), all)
    }

    func testHTTPSWithAnUntrustedCertificateIsAClearErrorAndRowsStayUnsynced() throws {
        let pki = try TestPKI(TempDir("vigil-pki"))
        defer { pki.dir.remove() }
        let local = try Broker()
        let port = freePort()
        let server = try httpServer(port: port, token: "t", tls: pki)
        defer { server.stop() }
        let all = try seed(alerts: 1, detections: 10)
        let sync = """
            { "http": { "url": "https://127.0.0.1:\(port)/ingest", "token_file": "\(dir.write("token", "t"))" },
              "batch": 40, "interval_s": 0.2, "backoff_min_s": 0.2, "backoff_max_s": 1 }
            """
        let daemon = try startDaemon(config(localPort: local.port, sync: sync))
        defer { daemon.stop() }
        XCTAssertTrue(waitUntil(timeout: 15) { daemon.output.contains("sync: POST https://127.0.0.1:\(port)/ingest") }, daemon.output)
        Thread.sleep(forTimeInterval: 1)   // the point: retries pass with nothing marked (a negative check)
        XCTAssertEqual(unsynced, all.count)
        XCTAssertTrue(ingested.isEmpty)
        let line = daemon.output.split(separator: "\n").first { $0.contains("sync: POST https://") } ?? ""
        XCTAssertTrue(line.lowercased().contains("certificate") || line.lowercased().contains("ssl"), String(line))
    }

    // MARK: Crash safety

    func testSIGKILLUnderLoadKeepsEveryCommittedRowAndAnIntactFile() throws {
        let local = try Broker()
        let path = dir.write("vigil.json", """
            {
              "node": "test-node",
              "mqtt": { "host": "127.0.0.1", "port": \(local.port), "client_id": "vigild-kill" },
              "storage": { "path": "\(dbPath)", "commit_interval_ms": 100, "commit_rows": 500 },
              "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" } },
              "pipelines": [ { "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny" } ]
            }
            """)
        let daemon = try startDaemon(path)
        XCTAssertTrue(daemon.waitSubscribed(), daemon.output)
        let pub = try TestClient(port: local.port)
        let stopLoad = StopFlag()
        let load = Thread {
            var i = 0
            while !stopLoad.isSet, i < 200_000 {
                _ = try? pub.publish("sensors/d\(i % 8)/vec", f32le([Float(i), 1, 2, 3]), qos: 0)
                i += 1
                if i % 200 == 0 { Thread.sleep(forTimeInterval: 0.005) }   // pacing the load
            }
        }
        load.start()
        // Under load, watch the committed count from a reader, then kill.
        XCTAssertTrue(waitUntil(timeout: 30) { self.int("SELECT count(*) FROM detections") >= 2000 }, daemon.output)
        let seen = int("SELECT count(*) FROM detections")
        daemon.stop(SIGKILL)
        stopLoad.set()
        XCTAssertEqual(query("PRAGMA integrity_check").first?.first?.string, "ok")
        let after = int("SELECT count(*) FROM detections")
        XCTAssertGreaterThanOrEqual(after, seen, "no committed row is lost")
        print("SIGKILL under load: \(seen) rows seen committed before the kill, \(after) in the file after it")

        // The daemon starts again on the same file and goes on.
        let again = try startDaemon(path, log: "vigild2.log")
        defer { again.stop() }
        XCTAssertTrue(again.waitSubscribed(), again.output)
        for i in 0..<10 { try pub.publish("sensors/x/vec", f32le([Float(i), 0, 0, 1])) }
        XCTAssertTrue(waitUntil(timeout: 15) { self.int("SELECT count(*) FROM detections WHERE device = 'x'") == 10 }, again.output)
        XCTAssertEqual(query("PRAGMA integrity_check").first?.first?.string, "ok")
    }
}

final class StopFlag: @unchecked Sendable {
    // @unchecked Sendable: guarded by `lock`.
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
