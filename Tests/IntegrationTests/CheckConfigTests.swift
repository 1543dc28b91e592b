import Foundation
import TestSupport
import XCTest

/// Issue 15, item 9: mistakes `vigild --check-config` used to pass. Each is caught with a
/// line naming the file and key; the two that only weaken security are warnings.
final class CheckConfigTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir("vigil-check") }
    override func tearDown() { dir.remove() }

    /// A valid config with `pipelines` and `rest` (top-level keys after "pipelines").
    func config(_ name: String = "vigil.json", pipelines: String? = nil, rest: String = "", mqtt: String = "") -> String {
        dir.write(name, """
            {
              "node": "test-node",
              "mqtt": { "host": "127.0.0.1", "port": 1883 \(mqtt) },
              "storage": { "path": "\(dir.file("vigil.db"))" },
              "models": { "tiny": { "path": "\(Paths.fixture("tiny_classifier.onnx"))" } },
              "pipelines": [
                \(pipelines ?? #"{ "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny" }"#)
              ]
              \(rest)
            }
            """)
    }

    /// Runs `vigild --check-config path`: (exit status, output).
    func check(_ path: String) throws -> (Int32, String) {
        let c = try ChildProcess(Paths.executable("vigild"), ["--check-config", path], outputPath: path + ".out")
        c.process.waitUntilExit()
        return (c.process.terminationStatus, c.output)
    }

    func testAWildcardInAStaticActionTopicIsAnError() throws {
        let path = config(pipelines: #"{ "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny", "alert": { "actions": ["siren"] } }"#,
                          rest: #", "actions": { "siren": { "type": "mqtt", "topic": "actuators/+/siren", "payload": "ON" } }"#)
        let (status, out) = try check(path)
        XCTAssertNotEqual(status, 0, out)
        XCTAssertTrue(out.contains("actions.siren.topic"), out)
        XCTAssertTrue(out.contains("'+'"), out)
    }

    /// Issue 19, item 2: the `store` policy keys are checked with the rest of the pipeline.
    func testTheStorePolicyKeysAreChecked() throws {
        func pipeline(_ keys: String) -> String {
            config(pipelines: #"{ "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny"\#(keys) }"#)
        }
        let (ok, okOut) = try check(pipeline(#", "store": "events", "summary_s": 60"#))
        XCTAssertEqual(ok, 0, okOut)
        for (keys, expected) in [(#", "store": "sometimes""#, "pipelines[0].store"),
                                 (#", "summary_s": 60"#, "pipelines[0].summary_s"),
                                 (#", "store": "events", "summary_s": 5"#, "pipelines[0].summary_s")] {
            let (status, out) = try check(pipeline(keys))
            XCTAssertNotEqual(status, 0, "\(keys): \(out)")
            XCTAssertTrue(out.contains(expected), "\(keys): \(out)")
        }
    }

    func testTwoPipelinesOnOneTopicIsAnError() throws {
        let path = config(pipelines: """
            { "name": "vec", "topic": "sensors/{device}/vec", "format": "f32le", "model": "tiny" },
            { "name": "all", "topic": "sensors/#", "format": "f32le", "model": "tiny" }
            """)
        let (status, out) = try check(path)
        XCTAssertNotEqual(status, 0, out)
        XCTAssertTrue(out.contains("pipelines[1].topic"), out)
        XCTAssertTrue(out.contains("\"vec\""), out)
    }

    func testAnUnterminatedCommentIsAnError() throws {
        let path = config(rest: #", "http": { "listen": "127.0.0.1:9108" } /* the rest was cut off"#)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try text.replacingOccurrences(of: "\n}", with: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let (status, out) = try check(path)
        XCTAssertNotEqual(status, 0, out)
        XCTAssertTrue(out.contains("unterminated /* comment"), out)
    }

    func testAWorldReadablePasswordFileIsAnErrorHereAndAWarningAtRunTime() throws {
        let secret = dir.write("password", "s3cret\n")
        chmod(secret, 0o644)
        let path = config(mqtt: #", "username": "vigil", "password_file": "\#(secret)""#)
        let (status, out) = try check(path)
        XCTAssertNotEqual(status, 0, out)
        XCTAssertTrue(out.contains("mqtt.password_file"), out)
        XCTAssertTrue(out.contains("chmod 600"), out)

        // vigild itself starts, and says so once.
        let broker = try Broker()
        let run = dir.write("run.json", try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "1883", with: "\(broker.port)"))
        let d = try ChildProcess(Paths.executable("vigild"), ["--config", run], outputPath: dir.file("vigild.log"))
        defer { d.stop() }
        XCTAssertTrue(waitUntil(timeout: 15) { d.output.contains("ready") || !d.isRunning }, d.output)
        XCTAssertTrue(d.isRunning)
        XCTAssertTrue(d.output.contains("mqtt.password_file") && d.output.contains("readable by other users"), d.output)

        chmod(secret, 0o600)
        let (fixed, out2) = try check(path)
        XCTAssertEqual(fixed, 0, out2)
    }

    func testListeningOnAllAddressesIsAWarning() throws {
        let path = config(rest: #", "http": { "listen": "0.0.0.0:9108" }"#)
        let (status, out) = try check(path)
        XCTAssertEqual(status, 0, out)
        XCTAssertTrue(out.contains("http.listen") && out.contains("every network"), out)
    }
}
