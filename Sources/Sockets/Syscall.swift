#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed system call's error number, typed: `switch` on it (`case .noSpace:`), or print it
/// (strerror's words).
public struct Errno: Error, Hashable, CustomStringConvertible, Sendable {
    public let code: Int32
    public init(_ code: Int32) { self.code = code }

    public static let interrupted = Errno(EINTR)
    public static let noSpace = Errno(ENOSPC)
    public static let quotaExceeded = Errno(EDQUOT)
    public static let brokenPipe = Errno(EPIPE)
    public static let connectionAborted = Errno(ECONNABORTED)
    public static let tooManyOpenFiles = Errno(EMFILE)
    public static let tooManyOpenFilesInSystem = Errno(ENFILE)

    public var description: String { String(cString: strerror(code)) }
}

/// Runs a system call, and again while it fails with EINTR (a signal arrived: nothing went
/// wrong), so no caller writes that loop; any other failure (-1) throws its errno. The one
/// place the service's POSIX calls read `errno`.
@inline(__always)
public func syscall<T: BinaryInteger>(_ call: () -> T) throws(Errno) -> T {
    while true {
        let rc = call()
        if rc != -1 { return rc }
        let e = errno
        if e != EINTR { throw Errno(e) }
    }
}

/// Plain descriptors: standard output and error, the journal's files.
public enum FileDescriptor {
    public static let standardOutput: Int32 = 1
    public static let standardError: Int32 = 2

    /// Writes all of `bytes` to `fd`, continuing after a short write (a pipe or terminal takes
    /// what fits) or EINTR. Throws the errno of a write that failed; what was written stays written.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) {
        var done = 0
        while done < bytes.count {
            let offset = done
            done += try syscall { bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) } }
        }
    }
}

/// The few signal calls the service makes, so VigilCore needs no libc of its own.
public enum Signals {
    /// Ignores these signals' default action (a DispatchSource still receives them).
    public static func ignore(_ signals: [Int32]) {
        for s in signals { _ = signal(s, SIG_IGN) }
    }

    /// Sends `signal` to every process in the process group `group` (`kill(-group, signal)`);
    /// false when none is left (ESRCH) or it may not be signalled.
    @discardableResult
    public static func sendToGroup(_ group: Int32, _ signal: Int32) -> Bool { kill(-group, signal) == 0 }
}
