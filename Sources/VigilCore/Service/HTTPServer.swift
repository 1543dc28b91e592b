import Foundation
import Sockets

public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    public var path: String
    public var query: String
    /// Header fields by lower-case name (the last one wins).
    public var headers: [String: String] = [:]
    /// Whether the client connected from this host (set by the server; false when unknown).
    public var fromLoopback = false
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: String
    /// A binary body (evidence files); when set it is sent instead of `body`.
    public var bytes: [UInt8]?
    /// More header fields (`WWW-Authenticate`, `Content-Disposition`).
    public var headers: [(String, String)] = []
    public init(_ status: Int, _ body: String, contentType: String = "text/plain; charset=utf-8") {
        self.status = status; self.body = body; self.contentType = contentType
    }
    public init(_ status: Int, bytes: [UInt8], contentType: String) {
        self.status = status; self.body = ""; self.bytes = bytes; self.contentType = contentType
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 431: "Request Header Fields Too Large"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }
}

/// A deliberately tiny HTTP/1.1 server for /healthz and /metrics: GET and HEAD only, one
/// request per connection, requests bounded in size (`maxRequestBytes`) and time
/// (`timeout`), at most `maxOpen` connections open at once, each on its own thread. Not a
/// general web server; it should sit on loopback or a trusted LAN.
///
/// A connection that sends nothing must not keep a health probe waiting: with a fixed
/// number of slots, 21 idle connections once held them all and /healthz took 13 s. So when
/// all `maxOpen` are taken, the connection that has waited longest for its request is shut
/// (it gets nothing; an honest client sends its request at once), and the new one is served.
public final class HTTPServer: @unchecked Sendable {
    // @unchecked Sendable: `listener` and `handler` are immutable; `thread` is set once in
    // start(); `open` and `nextID` are guarded by `lock`.
    public let listener: TCPListener
    let handler: @Sendable (HTTPRequest) -> HTTPResponse
    public var maxRequestBytes = 8192
    public var timeout = 5.0
    let maxOpen: Int
    private let lock = NSCondition()
    /// Open connections by id: when each was accepted, and whether it is still reading its request.
    private var open: [Int: (conn: TCPConnection, since: Double, reading: Bool)] = [:]
    private var nextID = 0
    private var thread: Thread?

    public init(host: String, port: Int, maxOpen: Int = 16,
                handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) throws {
        listener = try TCPListener(host: host, port: port, backlog: 64)
        self.handler = handler
        self.maxOpen = max(1, maxOpen)
    }

    public var port: Int { listener.port }
    public var address: String { listener.host.contains(":") ? "[\(listener.host)]:\(port)" : "\(listener.host):\(port)" }

    public func start() {
        let t = Thread { [self] in acceptLoop() }
        t.name = "vigil-http"
        t.start()
        thread = t
    }

    /// Stops accepting; requests being served finish on their own (each is bounded by `timeout`).
    public func stop() { listener.close() }

    /// Connections open now (tests).
    public var openConnections: Int { lock.withLock { open.count } }

    private func acceptLoop() {
        while let conn = listener.accept() {
            let id: Int = lock.withLock {
                while open.count >= maxOpen {
                    // Make room: shut the connection that has waited longest for its request. If
                    // every one is being answered, wait for one to finish (answers are bounded).
                    if let oldest = open.filter({ $0.value.reading }).min(by: { $0.value.since < $1.value.since }) {
                        oldest.value.conn.shutdown()
                        open[oldest.key]?.reading = false   // its thread removes it
                        log.limited(.warning, key: "http-evict", "http: \(maxOpen) connections open; closed the one idle longest to serve a new one")
                    }
                    if open.count >= maxOpen { lock.wait() }
                }
                nextID += 1
                open[nextID] = (conn, TCPConnection.now(), true)
                return nextID
            }
            // A thread per connection (at most maxOpen): a scrape never waits for Dispatch's
            // pool, which blocking work elsewhere can fill.
            Thread.detachNewThread { [self] in
                serve(conn) { lock.withLock { open[id]?.reading = false } }
                lock.withLock { open[id] = nil; lock.broadcast() }
            }
        }
    }

    /// Reads one request and answers it; `requestRead` is called once the request is in.
    func serve(_ conn: TCPConnection, requestRead: () -> Void = {}) {
        let deadline = TCPConnection.now() + timeout
        let (bytes, timedOut) = conn.read(limit: maxRequestBytes, deadline: deadline) { HTTPServer.headerEnd(in: $0) != nil }
        requestRead()
        let response: HTTPResponse
        var head = false
        if HTTPServer.headerEnd(in: bytes) == nil {
            if bytes.isEmpty && !timedOut { return }   // connected and closed: nothing to answer
            response = timedOut ? HTTPResponse(408, "request timed out\n")
                : bytes.count >= maxRequestBytes ? HTTPResponse(431, "request larger than \(maxRequestBytes) bytes\n")
                : HTTPResponse(400, "incomplete request\n")
        } else if var request = HTTPServer.parse(bytes) {
            request.fromLoopback = conn.peerIsLoopback
            head = request.method == "HEAD"
            response = (request.method == "GET" || head) ? handler(request) : HTTPResponse(405, "only GET and HEAD\n")
        } else {
            response = HTTPResponse(400, "malformed request line\n")
        }
        let body = response.bytes ?? Array(response.body.utf8)
        var text = "HTTP/1.1 \(response.status) \(HTTPResponse.reason(response.status))\r\n"
        text += "Content-Type: \(response.contentType)\r\nContent-Length: \(body.count)\r\n"
        text += "Cache-Control: no-store\r\nConnection: close\r\n"
        for (name, value) in response.headers { text += "\(name): \(value)\r\n" }
        if response.status == 405 { text += "Allow: GET, HEAD\r\n" }
        text += "\r\n"
        conn.write(Array(text.utf8) + (head ? [] : body), deadline: deadline + timeout)
    }

    static func headerEnd(in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else {
            return nil
        }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        // Tolerate bare LF line ends (printf | nc).
        for i in 0...(bytes.count - 2) where bytes[i] == 10 && bytes[i + 1] == 10 { return i }
        return nil
    }

    /// The request line: METHOD SP target SP HTTP/x.y. Headers are read but not needed.
    static func parse(_ bytes: [UInt8]) -> HTTPRequest? {
        guard let lineEnd = bytes.firstIndex(of: 10) else { return nil }
        let line = String(decoding: bytes[..<lineEnd], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1."), parts[1].hasPrefix("/"),
              parts[0].allSatisfy({ $0.isLetter && $0.isUppercase }) else { return nil }
        let target = parts[1]
        let q = target.firstIndex(of: "?")
        var headers: [String: String] = [:]
        let end = headerEnd(in: bytes) ?? bytes.count
        if lineEnd + 1 < end {
            for raw in String(decoding: bytes[(lineEnd + 1)..<end], as: UTF8.self).split(whereSeparator: \.isNewline) {   // "\r\n" is one Character
                guard let colon = raw.firstIndex(of: ":") else { continue }
                headers[raw[..<colon].trimmingCharacters(in: .whitespaces).lowercased()] = raw[raw.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return HTTPRequest(method: String(parts[0]), path: String(target[..<(q ?? target.endIndex)]),
                           query: q.map { String(target[target.index(after: $0)...]) } ?? "", headers: headers)
    }
}
