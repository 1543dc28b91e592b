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
        let fd = try FileError.at("open", path) { open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640) }
        var st = stat()
        do { _ = try syscall { fstat(fd, &st) } } catch {
            Glibc.close(fd)
            throw FileError(operation: "stat", path: path, errno: error.code)
        }
        self.fd = fd
        self.size = Int(st.st_size)
    }

    deinit { Glibc.close(fd) }

    /// Writes all of `bytes` (continuing after a short write or EINTR).
    public func append(_ bytes: [UInt8]) throws {
        do { try FileDescriptor.writeAll(fd, bytes) } catch {
            throw FileError(operation: "write", path: path, errno: error.code)
        }
        size += bytes.count
    }

    /// Data (not metadata beyond the size) on stable storage: survives a power cut.
    public func syncData() throws {
        _ = try FileError.at("fdatasync", path) { fdatasync(fd) }
    }

    /// Cuts the file to `length` bytes (a torn record at the end, found on recovery).
    public static func truncate(_ path: String, to length: Int) throws {
        _ = try FileError.at("truncate", path) { Glibc.truncate(path, off_t(length)) }
    }

    /// Makes a new or removed directory entry durable (a power cut must not lose a new segment's name).
    public static func syncDirectory(_ path: String) throws {
        let fd = try FileError.at("open directory", path) { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { Glibc.close(fd) }
        _ = try FileError.at("fsync directory", path) { fsync(fd) }
    }
}

/// A file call that failed, with the operation and path at fault.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let path: String
    public let errno: Int32
    public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
    public var isNoSpace: Bool { Errno(errno) == .noSpace || Errno(errno) == .quotaExceeded }
}

extension FileError {
    /// Runs a file call through `syscall` (EINTR retried); a failure becomes a FileError naming
    /// the operation and path.
    static func at<T: BinaryInteger>(_ operation: String, _ path: String, _ call: () -> T) throws(FileError) -> T {
        do { return try syscall(call) } catch { throw FileError(operation: operation, path: path, errno: error.code) }
    }
}

extension AppendFile {
    /// rename(2): replaces `to` atomically, so a reader sees the old file or the whole new one.
    public static func rename(_ from: String, to: String) throws {
        _ = try FileError.at("rename to \(to)", from) { Glibc.rename(from, to) }
    }
}
