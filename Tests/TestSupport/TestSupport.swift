import Foundation
import MQTT

/// Paths of the repository, its committed fixtures and the built executables.
public enum Paths {
    public static let repo: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static func fixture(_ name: String) -> String {
        repo.appendingPathComponent("Tests/TestSupport/Fixtures/\(name)").path
    }

    /// A product built next to the test bundle (`.build/debug/vigild`).
    public static func executable(_ name: String) -> String {
        var candidates: [URL] = []
        let argv0 = URL(fileURLWithPath: CommandLine.arguments.first ?? "")
        var dir = argv0.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(dir.appendingPathComponent(name))
            dir = dir.deletingLastPathComponent()
        }
        candidates.append(repo.appendingPathComponent(".build/debug/\(name)"))
        for c in candidates where FileManager.default.isExecutableFile(atPath: c.path) { return c.path }
        return repo.appendingPathComponent(".build/debug/\(name)").path
    }
}

/// A fresh directory under /tmp, removed when `remove()` is called.
public final class TempDir: @unchecked Sendable {
    public let path: String
    public init(_ prefix: String = "vigil-test") {
        let p = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        path = p
    }
    public func file(_ name: String) -> String { path + "/" + name }
    public func write(_ name: String, _ text: String) -> String {
        let p = file(name)
        try! text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }
    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Waits until `condition` holds, polling; returns whether it did before the timeout.
@discardableResult
public func waitUntil(timeout: Double = 10, interval: Double = 0.02, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: interval)
    }
    return try condition()
}

/// A free TCP port on loopback (bound then released).
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
    }
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// True when something accepts TCP connections on 127.0.0.1:port.
public func portOpen(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// A child process with its output captured to a file.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    public let outputPath: String

    public init(_ executable: String, _ arguments: [String], outputPath: String, environment: [String: String]? = nil) throws {
        self.outputPath = outputPath
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let out = FileHandle(forWritingAtPath: outputPath)!
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = out
        process.standardError = out
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, b in b }
        }
        try process.run()
    }

    public var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    public func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Sends SIGTERM (or `sig`) and waits up to `timeout` s; SIGKILL after that. Returns the exit status.
    @discardableResult
    public func stop(_ sig: Int32 = SIGTERM, timeout: Double = 10) -> Int32 {
        if process.isRunning {
            kill(process.processIdentifier, sig)
            if !waitUntil(timeout: timeout, { !process.isRunning }) {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// For a vigild child: waits until it can take frames, i.e. the broker has granted its
    /// subscriptions (its log's "subscribed on broker ..." line). "connected" comes before that,
    /// and on a new session a frame published in between reaches nobody (a CI run lost one so).
    /// False if vigild exits first or `timeout` passes; the caller asserts, with `output`.
    public func waitSubscribed(timeout: Double = 30) -> Bool {
        waitUntil(timeout: timeout) { output.contains("subscribed on broker") || !isRunning } && output.contains("subscribed on broker")
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

/// A private mosquitto broker on a free loopback port, for one test.
public final class Broker: @unchecked Sendable {
    public let port: Int
    public let dir: TempDir
    private var child: ChildProcess?
    private let extraConfig: String
    /// With persistence, sessions and queued messages survive `stop()` + `start()` (saved in `dir`).
    private let persistence: Bool

    public init(port: Int = freePort(), extraConfig: String = "", persistence: Bool = false) throws {
        self.port = port
        self.dir = TempDir("vigil-broker")
        self.extraConfig = extraConfig
        self.persistence = persistence
        try start()
    }

    public static var executable: String {
        for p in ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
        where FileManager.default.isExecutableFile(atPath: p) { return p }
        return "/usr/sbin/mosquitto"
    }

    public func start() throws {
        // mosquitto started as root runs as user `mosquitto`, which must be able to write its database here.
        if persistence { chmod(dir.path, 0o777) }
        let conf = dir.write("mosquitto.conf", """
            listener \(port) 127.0.0.1
            allow_anonymous true
            persistence \(persistence)
            \(persistence ? "persistence_location \(dir.path)/" : "")
            max_queued_messages 100000
            \(extraConfig)
            """)
        child = try ChildProcess(Broker.executable, ["-c", conf], outputPath: dir.file("broker.log"))
        guard waitUntil(timeout: 10, { portOpen(port) }) else {
            throw NSError(domain: "Broker", code: 1, userInfo: [NSLocalizedDescriptionKey: "mosquitto did not listen on \(port): \(child?.output ?? "")"])
        }
    }

    public func stop() { child?.stop(SIGTERM, timeout: 5); child = nil }

    public var log: String { child?.output ?? "" }

    deinit { stop(); dir.remove() }
}

/// A test MQTT client that records what it receives.
public final class TestClient: @unchecked Sendable {
    public let client: MQTTClient
    private let lock = NSLock()
    private var _messages: [MQTTMessage] = []
    private var _acked: Set<Int32> = []
    private let connectedFlag = NSCondition()
    private var connected = false
    /// SUBACKs received, and the `sync()` markers come back.
    private var _granted = 0
    private var _barriers: Set<String> = []
    /// Where `sync()` markers go: a topic no test or vigild subscribes to but this client.
    private let barrierTopic = "vigil-test/barrier/\(UUID().uuidString)"

    /// `cleanSession: false` keeps the session at the broker across reconnects (QoS 1 queued both ways).
    public init(port: Int, id: String = "test-\(UUID().uuidString.prefix(6))", subscribe: [String] = [],
                cleanSession: Bool = true, reconnectMaxDelay: Int = 30) throws {
        var h = MQTTHandlers()
        let box = Box()
        h.message = { m in box.value?.record(m) }
        h.published = { mid in box.value?.ack(mid) }
        h.subscribed = { _, _ in box.value?.granted() }
        h.connected = { rc, _ in
            guard rc == 0, let me = box.value else { return }
            for s in subscribe { _ = try? me.client.subscribe(s, qos: 1) }
            me.connectedFlag.lock(); me.connected = true; me.connectedFlag.broadcast(); me.connectedFlag.unlock()
        }
        client = try MQTTClient(options: MQTTOptions(host: "127.0.0.1", port: port, clientID: id, cleanSession: cleanSession,
                                                     reconnectMaxDelay: reconnectMaxDelay, maxInflight: 1000), handlers: h)
        box.value = self
        try client.start()
        connectedFlag.lock()
        let deadline = Date().addingTimeInterval(10)
        while !connected && connectedFlag.wait(until: deadline) {}
        connectedFlag.unlock()
        // Every subscription granted (SUBACK): a message published from now on is delivered.
        waitUntil(timeout: 10, interval: 0.005) { self.lock.withLock { self._granted } >= subscribe.count }
    }

    final class Box: @unchecked Sendable { weak var value: TestClient? }

    func granted() { lock.withLock { _granted += 1 } }
    func record(_ m: MQTTMessage) {
        if m.topic == barrierTopic { lock.withLock { _ = _barriers.insert(String(decoding: m.payload, as: UTF8.self)) }; return }
        lock.withLock { _messages.append(m) }
    }

    /// Waits until everything the broker had queued for this client when called has arrived:
    /// retained messages of its subscriptions, and whatever other clients published and saw
    /// acknowledged before. The broker delivers one client's queue in order, so a marker this
    /// client publishes to its own private topic arrives after all of it. Returns whether it did.
    @discardableResult
    public func sync(timeout: Double = 10) -> Bool {
        let subscribed = lock.withLock { _granted }
        guard (try? client.subscribe(barrierTopic, qos: 1)) != nil,
              waitUntil(timeout: timeout, interval: 0.005, { self.lock.withLock { self._granted } > subscribed }) else { return false }
        let marker = UUID().uuidString
        guard (try? client.publish(barrierTopic, Array(marker.utf8), qos: 1)) != nil else { return false }
        return waitUntil(timeout: timeout, interval: 0.005) { self.lock.withLock { self._barriers.contains(marker) } }
    }

    func ack(_ mid: Int32) { lock.withLock { _ = _acked.insert(mid) } }

    public var messages: [MQTTMessage] { lock.withLock { _messages } }
    public func acked(_ mid: Int32) -> Bool { lock.withLock { _acked.contains(mid) } }

    @discardableResult
    public func publish(_ topic: String, _ payload: [UInt8], qos: Int32 = 1) throws -> Int32 {
        try client.publish(topic, payload, qos: qos)
    }

    @discardableResult
    public func publish(_ topic: String, _ text: String, qos: Int32 = 1) throws -> Int32 {
        try client.publish(topic, Array(text.utf8), qos: qos)
    }

    /// Waits until every publish so far is acknowledged by the broker.
    public func waitForAcks(_ mids: [Int32], timeout: Double = 10) -> Bool {
        waitUntil(timeout: timeout) { mids.allSatisfy(acked) }
    }

    public func close() { client.stop() }
}

/// Waits until vigild (node `node`) has its subscriptions on the broker: at each connect it
/// sends its SUBSCRIBEs, then publishes the retained `online` status, and the broker handles
/// one connection's packets in order, so once `online` is there a frame published is delivered.
/// Only on a broker that holds no `online` from an earlier run (its retained state is gone
/// after a restart without persistence).
@discardableResult
public func waitForOnline(port: Int, node: String, timeout: Double = 15) -> Bool {
    guard let watch = try? TestClient(port: port, subscribe: ["vigil/\(node)/status"]) else { return false }
    defer { watch.close() }
    return waitUntil(timeout: timeout) { watch.messages.contains { $0.payload == Array("online".utf8) } }
}

/// `waitForOnline` for the node and broker port written in a vigild config file (plain JSON).
@discardableResult
public func waitForOnline(configAt path: String, timeout: Double = 15) -> Bool {
    guard let data = FileManager.default.contents(atPath: path),
          let config = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
          let node = config["node"] as? String,
          let port = (config["mqtt"] as? [String: Any])?["port"] as? Int else { return false }
    return waitForOnline(port: port, node: node, timeout: timeout)
}

/// Print-only benchmarks (figures, nothing asserted) run only when asked: `scripts/bench-figures`
/// (`make bench-figures`) sets VIGIL_FIGURES=1; `make test` skips them.
public var figuresAsked: Bool { ProcessInfo.processInfo.environment["VIGIL_FIGURES"] == "1" }
public let figuresSkipped = "figures only: scripts/bench-figures (VIGIL_FIGURES=1)"

/// float32 values as little-endian bytes (an `f32le` payload).
public func f32le(_ values: [Float]) -> [UInt8] {
    values.flatMap { v -> [UInt8] in
        let b = v.bitPattern.littleEndian
        return [UInt8(b & 0xff), UInt8((b >> 8) & 0xff), UInt8((b >> 16) & 0xff), UInt8(b >> 24)]
    }
}

/// A small tmpfs mounted for one test: a disk that really fills up. Needs root; when it
/// cannot mount, init throws `TmpfsMount.Unavailable` with what mount said (tests skip on it).
public final class TmpfsMount: @unchecked Sendable {
    // @unchecked Sendable: `mounted` is only touched by the owning test's thread.
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    public let path: String
    private var mounted = true

    public init(at path: String, sizeMB: Int) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let (status, said) = TmpfsMount.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(sizeMB)m", "tmpfs", path])
        guard status == 0 else {
            mounted = false
            throw Unavailable(description: "cannot mount a tmpfs on \(path) (needs root): exit \(status): \(said)")
        }
    }

    /// Makes the mount read-only (a database on it can be read, never written), or writable again.
    public func remount(readOnly: Bool) throws {
        let (status, said) = TmpfsMount.run("/bin/mount", ["-o", "remount,\(readOnly ? "ro" : "rw")", path])
        guard status == 0 else { throw Unavailable(description: "cannot remount \(path): exit \(status): \(said)") }
    }

    /// Lazy unmount: a file the test still holds open does not keep the mount busy.
    public func unmount() {
        guard mounted else { return }
        mounted = false
        _ = TmpfsMount.run("/bin/umount", ["-l", path])
    }

    deinit { unmount() }

    private static func run(_ exe: String, _ args: [String]) -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        do { try p.run() } catch { return (-1, "\(error)") }
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// A value one thread changes and another reads.
public final class Locked<T>: @unchecked Sendable {
    // @unchecked Sendable: every access goes through `lock`.
    private let lock = NSLock()
    private var value: T
    public init(_ v: T) { value = v }
    public func with<R>(_ f: (inout T) -> R) -> R { lock.withLock { f(&value) } }
    public var get: T { lock.withLock { value } }
}

/// One HTTP GET through curl (a client independent of vigild's own HTTP code): the status
/// and body; status -1 when curl could not run or answered nothing parseable.
public func httpGet(_ url: String) -> (status: Int, body: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    p.arguments = ["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10", url]
    let pipe = Pipe()
    p.standardOutput = pipe
    guard (try? p.run()) != nil else { return (-1, "curl did not run") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard let split = text.range(of: "\n", options: .backwards) else { return (-1, text) }
    return (Int(text[split.upperBound...]) ?? -1, String(text[..<split.lowerBound]))
}

/// Builds a RIFF/WAVE payload; every field can be made wrong on purpose. `rawData` replaces the
/// 16-bit `samples` with bytes of another sample format (`bits`, `format` 1 PCM or 3 float).
public func wavBytes(_ samples: [Int16], rate: Int = 16000, channels: Int = 1, bits: Int = 16, format: Int = 1,
              fmtSize: Int = 16, dataSize: Int? = nil, extraChunk: Bool = false, rawData: [UInt8]? = nil) -> [UInt8] {
    func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8((UInt32(truncatingIfNeeded: v) >> (8 * $0)) & 0xff) } }
    func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xff), UInt8((v >> 8) & 0xff)] }
    let data = rawData ?? samples.flatMap { le16(Int(UInt16(bitPattern: $0))) }
    var fmt = le16(format) + le16(channels) + le32(rate) + le32(rate * channels * bits / 8) + le16(channels * bits / 8) + le16(bits)
    if fmtSize > 16 { fmt += [UInt8](repeating: 0, count: fmtSize - 16) }
    var body = Array("WAVE".utf8) + Array("fmt ".utf8) + le32(fmtSize) + fmt
    if extraChunk { body += Array("LIST".utf8) + le32(5) + Array("INFOx".utf8) + [0] }  // odd size: padded
    body += Array("data".utf8) + le32(dataSize ?? data.count) + data
    return Array("RIFF".utf8) + le32(body.count) + body
}
