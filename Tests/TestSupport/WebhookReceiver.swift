import Foundation

/// The far end of a webhook: Python's http.server in a child process on a free loopback
/// port. It answers 500 to the first `fail` POSTs, then `status`, each after `sleep`
/// seconds, and records every request (body, Content-Type, X-Token) as a JSON line.
public final class WebhookReceiver: @unchecked Sendable {
    // @unchecked Sendable: every stored property is immutable after init.
    public struct NotListening: Error, CustomStringConvertible {
        public let description: String
    }

    public let port: Int
    private let process: ChildProcess
    private let log: String

    public init(in dir: TempDir, fail: Int = 0, sleep: Double = 0, status: Int = 200) throws {
        let script = dir.write("webhook_receiver.py", """
            import http.server, json, sys, time
            port, fail, pause, status, log = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
            count = 0
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    global count
                    body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                    count += 1
                    with open(log, "a") as f:
                        f.write(json.dumps({"n": count, "body": body.decode(), "type": self.headers.get("Content-Type"),
                                            "token": self.headers.get("X-Token")}) + "\\n")
                    time.sleep(pause)
                    self.send_response(500 if count <= fail else status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                def log_message(self, *a):
                    pass
            http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
            """)
        port = freePort()
        log = dir.file("webhook_requests.log")
        process = try ChildProcess("/usr/bin/env", ["python3", script, "\(port)", "\(fail)", "\(sleep)", "\(status)", log],
                                   outputPath: dir.file("webhook_receiver.out"))
        guard waitUntil(timeout: 10, { portOpen(port) }) else {
            process.stop()
            throw NotListening(description: "webhook receiver not listening on \(port): \(process.output)")
        }
    }

    public func stop() { process.stop() }

    /// Every request so far: "n", "body", "type", "token".
    public var requests: [[String: Any]] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map {
            try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    public var bodies: [String] { requests.map { $0["body"] as? String ?? "" } }
}
