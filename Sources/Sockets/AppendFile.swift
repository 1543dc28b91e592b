#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// A file written only at its end, one `write(2)` per record, for the intake journal.
///
/// Why POSIX and not FileHandle: a record must reach the kernel in one call before vigild
/// acknowledges the message it holds (so a SIGKILL cannot separate the two), a short write
/// must be finished or reported, and `power` durability needs `fdatasync`, which
/// FileHandle does not offer (its `synchronize()` is a full `fsync`).
public final class AppendFile: @unchecked Sendable {
    // @unchecked Sendable: the descriptor is immutable; callers serialise appends (the journal's lock).
    public let path: String
    private let fd: Int32
    public private(set) var size: Int

    /// Opens (creating, mode 0640) for appending; `size` starts at the file's current length.
    public init(path: String) throws {
        self.path = path
        let fd = retryingEINTR { open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640) }
        guard fd >= 0 else { throw FileError(operation: "open", path: path, errno: errno) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw FileError(operation: "stat", path: path, errno: e)
        }
        self.fd = fd
        self.size = Int(st.st_size)
    }

    deinit { Glibc.close(fd) }

    /// Writes all of `bytes` (continuing after a short write or EINTR).
    public func append(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(operation: "write", path: path, errno: errno)
            }
            done += n
        }
        size += done
    }

    /// Data (not metadata beyond the size) on stable storage: survives a power cut.
    public func syncData() throws {
        guard retryingEINTR({ fdatasync(fd) }) == 0 else { throw FileError(operation: "fdatasync", path: path, errno: errno) }
    }

    /// Cuts the file to `length` bytes (a torn record at the end, found on recovery).
    public static func truncate(_ path: String, to length: Int) throws {
        guard retryingEINTR({ Glibc.truncate(path, off_t(length)) }) == 0 else {
            throw FileError(operation: "truncate", path: path, errno: errno)
        }
    }

    /// Makes a new or removed directory entry durable (a power cut must not lose a new segment's name).
    public static func syncDirectory(_ path: String) throws {
        let fd = retryingEINTR { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else { throw FileError(operation: "open directory", path: path, errno: errno) }
        defer { Glibc.close(fd) }
        guard retryingEINTR({ fsync(fd) }) == 0 else { throw FileError(operation: "fsync directory", path: path, errno: errno) }
    }
}

/// A file call that failed, with the operation and path at fault.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let path: String
    public let errno: Int32
    public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
    public var isNoSpace: Bool { errno == ENOSPC || errno == EDQUOT }
}

/// Runs a system call again while it fails with EINTR.
@inline(__always)
func retryingEINTR(_ call: () -> Int32) -> Int32 {
    while true {
        let rc = call()
        if rc == -1 && errno == EINTR { continue }
        return rc
    }
}

extension AppendFile {
    /// rename(2): replaces `to` atomically, so a reader sees the old file or the whole new one.
    public static func rename(_ from: String, to: String) throws {
        guard retryingEINTR({ Glibc.rename(from, to) }) == 0 else { throw FileError(operation: "rename to \(to)", path: from, errno: errno) }
    }
}
