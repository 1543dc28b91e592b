#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

// Sockets: with the three C wrappers, the module that calls C and lends pointers. It holds the
// POSIX calls the service needs (a datagram to systemd's notify socket, a loopback HTTP
// listener, the journal's append-only file, `syscall`, signals), so
// VigilCore has none of its own except the three docs/architecture.md lists ("Unsafe code").
// Every pointer is lent only inside the `withUnsafe...` closure of the call that uses it.

/// A socket call that failed, with the operation and address at fault.
public struct SocketError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let address: String
    public let errno: Int32
    public var description: String { "\(operation) \(address): \(String(cString: strerror(errno)))" }
}

/// A Unix socket address. A leading '@' names an abstract socket (Linux), as systemd writes it.
struct UnixAddress {
    var storage = sockaddr_un()
    var length: socklen_t

    init(_ path: String) throws {
        storage.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: storage.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else {
            throw SocketError(operation: "address", address: path, errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        // Abstract names are exactly as long as given; paths end with their NUL.
        let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        length = socklen_t(offset + bytes.count + (abstract ? 0 : 1))
    }

    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var copy = storage
        return withUnsafePointer(to: &copy) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }
}

/// Sends one datagram to a Unix datagram socket (sd_notify's transport). Stateless: each
/// send opens, sends and closes, which is what libsystemd does too.
public enum UnixDatagram {
    public static func send(_ message: String, to path: String) throws {
        let address = try UnixAddress(path)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(operation: "socket", address: path, errno: errno) }
        defer { close(fd) }
        let bytes = Array(message.utf8)
        let n = address.withSockaddr { sa, len in
            bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, len) }
        }
        guard n == bytes.count else { throw SocketError(operation: "sendto", address: path, errno: errno) }
    }
}

/// A bound Unix datagram socket that receives (tests use it to play systemd's part).
public final class UnixDatagramReceiver: @unchecked Sendable {
    // @unchecked Sendable: `fd` is immutable; recv(2) on one fd from one thread at a time is the caller's contract.
    public let path: String
    private let fd: Int32

    public init(path: String) throws {
        self.path = path
        let address = try UnixAddress(path)
        if !path.hasPrefix("@") { unlink(path) }
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(operation: "socket", address: path, errno: errno) }
        let rc = address.withSockaddr { bind(fd, $0, $1) }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw SocketError(operation: "bind", address: path, errno: e)
        }
    }

    deinit {
        close(fd)
        if !path.hasPrefix("@") { unlink(path) }
    }

    /// The next datagram, or nil when none arrives within `timeout` seconds.
    public func receive(timeout: Double) -> String? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, Int32(max(0, timeout * 1000))) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 0 else { return nil }
        return String(decoding: buffer[..<n], as: UTF8.self)
    }
}

/// A listening TCP socket (IPv4 or IPv6 literal, or "localhost").
public final class TCPListener: @unchecked Sendable {
    // @unchecked Sendable: `fd` is immutable; `close()` only shuts it down, which wakes accept(2) safely.
    public let host: String
    public let port: Int
    private let fd: Int32
    private let closed = NSLock()
    private var isClosed = false

    public init(host: String, port: Int, backlog: Int32 = 16) throws {
        let name = host.isEmpty ? "0.0.0.0" : (host == "localhost" ? "127.0.0.1" : host)
        let display = name.contains(":") ? "[\(name)]:\(port)" : "\(name):\(port)"
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        let family: Int32
        if inet_pton(AF_INET, name, &v4.sin_addr) == 1 {
            family = AF_INET
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = in_port_t(UInt16(port).bigEndian)
        } else if inet_pton(AF_INET6, name, &v6.sin6_addr) == 1 {
            family = AF_INET6
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = in_port_t(UInt16(port).bigEndian)
        } else {
            throw SocketError(operation: "listen on (not an IP address)", address: display, errno: EINVAL)
        }
        let s = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw SocketError(operation: "socket", address: display, errno: errno) }
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc: Int32 = family == AF_INET
            ? withUnsafePointer(to: &v4) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            : withUnsafePointer(to: &v6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        guard rc == 0, listen(s, backlog) == 0 else {
            let e = errno
            Glibc.close(s)
            throw SocketError(operation: "listen on", address: display, errno: e)
        }
        fd = s
        self.host = name
        // Port 0 asks the kernel for one: report the one it chose.
        var bound = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        self.port = withUnsafePointer(to: &bound) { p -> Int in
            family == AF_INET
                ? p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
                : p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
        }
    }

    /// The next connection; nil once the listener is closed.
    public func accept() -> TCPConnection? {
        while true {
            // Once closed, the descriptor number may already name another file: never touch it.
            if closed.withLock({ isClosed }) { return nil }
            do {
                let c = try syscall { Glibc.accept(fd, nil, nil) }
                _ = fcntl(c, F_SETFD, FD_CLOEXEC)   // accept4 is not exported to Swift; children (exec actions) must not inherit it
                return TCPConnection(fd: c)
            } catch {
                switch error {
                case .connectionAborted:
                    continue
                case .tooManyOpenFiles, .tooManyOpenFilesInSystem:
                    usleep(100_000)   // out of descriptors: back off
                    continue
                default:
                    return nil   // closed under us (EBADF, EINVAL): the loop's check says so
                }
            }
        }
    }

    /// Stops accepting: a thread blocked in `accept()` returns nil.
    public func close() {
        let first = closed.withLock { () -> Bool in defer { isClosed = true }; return !isClosed }
        guard first else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
    }

    deinit { close() }
}

/// One accepted connection, closed on deinit.
public final class TCPConnection: @unchecked Sendable {
    // @unchecked Sendable: used by one thread at a time (the request handler that owns it);
    // `shutdown()` may come from another, which shutdown(2) allows.
    private let fd: Int32

    init(fd: Int32) { self.fd = fd }

    /// A client connection to an IPv4 address (tests, and probing a listener).
    public static func connect(host: String, port: Int) throws -> TCPConnection {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &a.sin_addr) == 1 else {
            throw SocketError(operation: "connect to", address: "\(host):\(port)", errno: EINVAL)
        }
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw SocketError(operation: "socket", address: "\(host):\(port)", errno: errno) }
        let rc = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(s)
            throw SocketError(operation: "connect to", address: "\(host):\(port)", errno: e)
        }
        return TCPConnection(fd: s)
    }

    deinit { Glibc.close(fd) }

    /// Whether the peer is on this host (127.0.0.0/8, ::1, or ::ffff:127.x.x.x): for answers
    /// that must not leave the machine unless a token says otherwise.
    public var peerIsLoopback: Bool {
        var a = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) } }
        guard rc == 0 else { return false }
        return withUnsafePointer(to: &a) { p -> Bool in
            switch Int32(p.pointee.ss_family) {
            case AF_INET:
                return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) >> 24 == 127 }
            case AF_INET6:
                return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 -> Bool in
                    let b = withUnsafeBytes(of: v6.pointee.sin6_addr) { Array($0) }
                    if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return true }   // ::1
                    return b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff && b[12] == 127   // ::ffff:127.x.x.x
                }
            default:
                return false
            }
        }
    }

    /// Shuts the connection down from any thread: a read or write waiting on it returns at
    /// once. The descriptor stays open (and its number reserved) until deinit.
    public func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    /// Reads until `complete` says the bytes so far are a whole request, `limit` bytes arrive,
    /// the peer closes, or `deadline` (monotonic seconds, see `now()`) passes.
    public func read(limit: Int, deadline: Double, complete: ([UInt8]) -> Bool) -> (bytes: [UInt8], timedOut: Bool) {
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while data.count < limit {
            let left = deadline - TCPConnection.now()
            if left <= 0 { return (data, true) }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard let r = try? syscall({ poll(&p, 1, Int32(min(left * 1000 + 1, 60_000))) }) else { return (data, false) }
            if r == 0 { return (data, true) }
            let want = min(chunk.count, limit - data.count)
            guard let n = try? syscall({ chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, want, 0) } }), n > 0 else { break }
            data.append(contentsOf: chunk[..<n])
            if complete(data) { break }
        }
        return (data, false)
    }

    /// Writes everything, or gives up at `deadline` or on error.
    @discardableResult
    public func write(_ bytes: [UInt8], deadline: Double) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let left = deadline - TCPConnection.now()
            if left <= 0 { return false }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard let r = try? syscall({ poll(&p, 1, Int32(min(left * 1000 + 1, 60_000))) }), r > 0 else { return false }
            let offset = sent
            guard let n = try? syscall({ bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) } }),
                  n > 0 else { return false }
            sent += n
        }
        return true
    }

    /// Monotonic seconds, for deadlines.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// The kernel's clock tick (`sysconf(_SC_CLK_TCK)`), the unit of CPU times and the start
/// time in /proc/PID/stat (process_* metrics).
public enum ProcessClock {
    public static let ticksPerSecond: Double = {
        let t = sysconf(Int32(_SC_CLK_TCK))
        return t > 0 ? Double(t) : 100
    }()
}
