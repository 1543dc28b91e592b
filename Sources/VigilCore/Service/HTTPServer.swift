import Foundation
import Sockets

public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    public var path: String
    public var query: String
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: String
    public init(_ status: Int, _ body: String, contentType: String = "text/plain; charset=utf-8") {
        self.status = status; self.body = body; self.contentType = contentType
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
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
/// (`timeout`), at most `maxConcurrent` connections served at once (the rest wait in the
/// listen backlog). Not a general web server; it should sit on loopback or a trusted LAN.
public final class HTTPServer: @unchecked Sendable {
    // @unchecked Sendable: `listener` and `handler` are immutable; `thread` is set once in start().
    public let listener: TCPListener
    let handler: @Sendable (HTTPRequest) -> HTTPResponse
    public var maxRequestBytes = 8192
    public var timeout = 5.0
    private let slots: DispatchSemaphore
    private var thread: Thread?

    public init(host: String, port: Int, maxConcurrent: Int = 4,
                handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) throws {
        listener = try TCPListener(host: host, port: port)
        self.handler = handler
        slots = DispatchSemaphore(value: maxConcurrent)
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

    private func acceptLoop() {
        while true {
            slots.wait()
            guard let conn = listener.accept() else { slots.signal(); return }
            // A thread per connection (at most maxConcurrent): a scrape never waits for Dispatch's
            // pool, which blocking work elsewhere can fill.
            Thread.detachNewThread { [self] in
                defer { slots.signal() }
                serve(conn)
            }
        }
    }

    func serve(_ conn: TCPConnection) {
        let deadline = TCPConnection.now() + timeout
        let (bytes, timedOut) = conn.read(limit: maxRequestBytes, deadline: deadline) { HTTPServer.headerEnd(in: $0) != nil }
        let response: HTTPResponse
        var head = false
        if HTTPServer.headerEnd(in: bytes) == nil {
            if bytes.isEmpty && !timedOut { return }   // connected and closed: nothing to answer
            response = timedOut ? HTTPResponse(408, "request timed out\n")
                : bytes.count >= maxRequestBytes ? HTTPResponse(431, "request larger than \(maxRequestBytes) bytes\n")
                : HTTPResponse(400, "incomplete request\n")
        } else if let request = HTTPServer.parse(bytes) {
            head = request.method == "HEAD"
            response = (request.method == "GET" || head) ? handler(request) : HTTPResponse(405, "only GET and HEAD\n")
        } else {
            response = HTTPResponse(400, "malformed request line\n")
        }
        let body = Array(response.body.utf8)
        var text = "HTTP/1.1 \(response.status) \(HTTPResponse.reason(response.status))\r\n"
        text += "Content-Type: \(response.contentType)\r\nContent-Length: \(body.count)\r\n"
        text += "Cache-Control: no-store\r\nConnection: close\r\n"
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
        return HTTPRequest(method: String(parts[0]), path: String(target[..<(q ?? target.endIndex)]),
                           query: q.map { String(target[target.index(after: $0)...]) } ?? "")
    }
}
