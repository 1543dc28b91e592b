import Foundation
import Sockets

/// How much of a crash an acknowledged frame survives (`storage.durability`).
public enum Durability: String, Sendable, CaseIterable {
    /// No journal: a frame lives in memory until its rows are committed (a SIGKILL loses
    /// what was acknowledged but not committed). For benchmarks and throwaway nodes.
    case none
    /// One `write(2)` per message into the journal before it is acknowledged: survives a
    /// SIGKILL, an OOM kill or a crash of vigild (the kernel holds the bytes), not a power cut.
    case process
    /// Also `fdatasync` before acknowledging, and SQLite's `synchronous = FULL`: survives a power cut.
    case power
}

/// The intake journal: every message vigild takes from the broker is appended here before
/// the message callback returns, so before libmosquitto writes its PUBACK (DESIGN.md,
/// "Durable before acknowledged"). An entry is retired once the rows of its frame (or its
/// counted rejection) are committed in the same SQLite transaction that records its
/// sequence number in `intake_retired`; a restart replays the entries not retired.
///
/// Layout: segment files `<first seq, 16 hex digits>.seg` in one directory, each a run of
/// records (see `Record`). A segment whose entries are all retired is deleted, except the
/// newest such one, kept as history: a restart replays it through the models and rules
/// without storing anything, so audio windows, sensor windows, the previous camera frame
/// and alert states are rebuilt before the first new frame.
///
/// Back-pressure: while the segments holding unretired entries pass `maxBytes`, `append`
/// waits: the MQTT thread stops reading and the broker keeps the frames in vigild's session.
public final class IntakeJournal: @unchecked Sendable {
    // @unchecked Sendable: all mutable state is guarded by `cond`.
    public let directory: String
    public let durability: Durability
    let segmentBytes: Int
    let maxBytes: Int
    private let cond = NSCondition()
    private var segments: [Segment] = []
    private var active: AppendFile?
    private var nextSeq: UInt64 = 1
    private var waiting = 0
    private var closing = false
    private var failing = false
    /// Told the lowest sequence number still in a segment: retired marks below it can go.
    private var pruneListener: (@Sendable (UInt64) -> Void)?
    private var prunedBelow: UInt64 = 0

    final class Segment {
        let firstSeq: UInt64
        var lastSeq: UInt64
        let path: String
        var bytes: Int
        /// Entries not retired yet.
        var live = 0
        init(firstSeq: UInt64, path: String, bytes: Int) {
            self.firstSeq = firstSeq; self.lastSeq = firstSeq &- 1; self.path = path; self.bytes = bytes
        }
    }

    /// One journal entry: the message as it arrived.
    public struct Entry: Sendable {
        public let seq: UInt64
        public let mid: Int32
        public let receivedAt: Double
        public let topic: String
        public let payload: [UInt8]
        /// `FrameHash.frame(topic:payload:)`.
        public let hash: UInt64
        /// Its rows were committed before the restart: replayed as history only.
        public var retired = false
    }

    /// What recovery found. The entries themselves are read again, one segment at a time,
    /// by `replay`, so a journal of hundreds of MB never sits in memory at once.
    public struct Recovery: Sendable {
        /// The segments in order, with their entries' retired marks.
        let paths: [String]
        let retired: Set<UInt64>
        /// Entries whose rows were not committed (replayed as frames) and committed ones (history).
        public var pending = 0
        public var history = 0
        /// Bytes cut from segment ends that did not hold a whole record (a write torn by a power cut).
        public var tornBytes = 0
        public var segments: Int { paths.count }

        /// Calls `body` with every entry, oldest first (`retired` set for history).
        public func replay(_ body: (Entry) -> Void) {
            for path in paths {
                guard let data = FileManager.default.contents(atPath: path) else {
                    log.error("intake journal \(path): cannot read it again to replay; its frames are not processed")
                    continue
                }
                for var e in Record.parse([UInt8](data)).0 {
                    e.retired = retired.contains(e.seq)
                    body(e)
                }
            }
        }
    }

    public init(directory: String, durability: Durability, maxBytes: Int, segmentBytes: Int = 8 << 20) throws {
        precondition(durability != .none, "no journal at durability none")
        self.directory = directory
        self.durability = durability
        self.maxBytes = max(1 << 20, maxBytes)
        // Several segments under the cap, so retiring frees space in steps smaller than the cap.
        self.segmentBytes = max(64 << 10, min(segmentBytes, self.maxBytes / 4))
        if let e = makeDirectory() {
            // Like the store, not a reason to stop (a restart loop helps nobody): frames are
            // processed without the journal until the directory can be made.
            log.error("\(e); frames are processed without it (durable only once their rows are committed) until it can be created")
        }
    }

    private var directoryReady = false
    private var lastAttempt = 0.0

    /// Creates the directory; nil on success, else the error naming it and the remedy.
    private func makeDirectory() -> IntakeError? {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o750])
            directoryReady = true
            return nil
        } catch {
            let parent = URL(fileURLWithPath: directory).deletingLastPathComponent().path
            return IntakeError("intake journal \(directory): cannot create the directory (\((error as NSError).localizedDescription)); make \(parent) writable for vigild, or set storage.intake_path")
        }
    }

    /// Reads every segment, oldest first, to count what it holds and find where numbering goes
    /// on. `retired` are the sequence numbers the log committed. Cuts a torn record at a
    /// segment's end. Call once, before the first append.
    public func recover(retired: Set<UInt64>) -> Recovery {
        var paths: [String] = []
        var pending = 0, history = 0, torn = 0
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".seg") }.sorted()
        var recovered: [Segment] = []
        for name in names {
            let path = directory + "/" + name
            guard let first = UInt64(name.dropLast(4), radix: 16),
                  let data = FileManager.default.contents(atPath: path) else {
                log.warning("intake journal \(path): not a segment vigild can read; left alone")
                continue
            }
            let bytes = [UInt8](data)
            let (entries, good) = Record.parse(bytes)
            if good < bytes.count {
                torn += bytes.count - good
                log.warning("intake journal \(path): cut \(bytes.count - good) bytes at offset \(good) that do not hold a whole record (a write torn by a power cut)")
                // New entries go to a new segment anyway; a cut that fails only leaves the bytes to skip again.
                do { try AppendFile.truncate(path, to: good) } catch { log.warning("intake journal \(path): \(error)") }
            }
            let segment = Segment(firstSeq: entries.first?.seq ?? first, path: path, bytes: good)
            for e in entries {
                if retired.contains(e.seq) { history += 1 } else { segment.live += 1; pending += 1 }
                segment.lastSeq = e.seq
                nextSeq = max(nextSeq, e.seq &+ 1)
            }
            recovered.append(segment)
            paths.append(path)
        }
        cond.withLock { segments = recovered }
        return Recovery(paths: paths, retired: retired, pending: pending, history: history, tornBytes: torn)
    }

    /// Makes a message durable (at this journal's level) and returns its sequence number.
    /// Waits while the unretired entries pass `maxBytes`. Throws when the file system
    /// refuses the write (the caller goes on without the journal for that frame).
    public func append(topic: String, payload: [UInt8], mid: Int32, receivedAt: Double, hash: UInt64) throws -> UInt64 {
        cond.lock()
        defer { cond.unlock() }
        if liveBytesLocked() > maxBytes {
            waiting += 1
            log.limited(.warning, key: "intake-full", "intake journal \(directory): \(liveBytesLocked() >> 20) MB of frames wait for their rows to be committed (limits.intake_max_mb \(maxBytes >> 20)); reading from the broker pauses, the broker keeps the frames")
            while liveBytesLocked() > maxBytes && !closing { cond.wait() }
            waiting -= 1
        }
        let seq = nextSeq
        let record = Record.encode(seq: seq, mid: mid, receivedAt: receivedAt, topic: topic, payload: payload, hash: hash)
        do {
            let file = try activeFile(startingAt: seq, adding: record.count)
            do {
                try file.append(record)
                if durability == .power { try file.syncData() }
            } catch {
                // Leave no partial record in the middle of a segment: recovery stops at the first bad one.
                try? AppendFile.truncate(file.path, to: file.size)
                throw error
            }
        } catch {
            if !failing { log.error("intake journal \(directory): cannot write (\(error)); frames are processed without the journal and are durable only once their rows are committed") }
            failing = true
            throw error
        }
        if failing { log.notice("intake journal \(directory): writing again"); failing = false }
        nextSeq += 1
        let s = segments[segments.count - 1]
        s.lastSeq = seq
        s.bytes += record.count
        s.live += 1
        return seq
    }

    /// The segment to append to, starting a new one when the current one is full.
    private func activeFile(startingAt seq: UInt64, adding bytes: Int) throws -> AppendFile {
        if let f = active, f.size + bytes <= segmentBytes || f.size == 0 { return f }
        if !directoryReady {
            // Tried again at most once a second (each try is a few system calls on the MQTT thread).
            let now = monotonicSeconds()
            guard now - lastAttempt >= 1 else { throw IntakeError("intake journal \(directory): no directory") }
            lastAttempt = now
            if let e = makeDirectory() { throw e }
            log.notice("intake journal \(directory): created; frames are journaled again")
        }
        let path = directory + "/" + String(format: "%016llx.seg", seq)
        let f = try AppendFile(path: path)
        if durability == .power { try AppendFile.syncDirectory(directory) }
        active = f
        segments.append(Segment(firstSeq: seq, path: path, bytes: f.size))
        reclaimLocked()
        return f
    }

    /// The rows of these entries are committed: forget them, delete what is no longer needed.
    public func retire(_ seqs: [UInt64]) {
        guard !seqs.isEmpty else { return }
        let pruned = cond.withLock { () -> UInt64? in
            for seq in seqs {
                // Segments are in order of their first sequence number: the last one that starts at or before seq.
                var lo = 0, hi = segments.count
                while lo < hi { let mid = (lo + hi) / 2; if segments[mid].firstSeq <= seq { lo = mid + 1 } else { hi = mid } }
                guard lo > 0, seq <= segments[lo - 1].lastSeq, segments[lo - 1].live > 0 else { continue }
                segments[lo - 1].live -= 1
            }
            reclaimLocked()
            if waiting > 0 { cond.broadcast() }
            let low = segments.first?.firstSeq ?? nextSeq
            guard low > prunedBelow else { return nil }
            prunedBelow = low
            return low
        }
        if let pruned, let listener = cond.withLock({ pruneListener }) { listener(pruned) }
    }

    /// Deletes fully retired segments but the newest (the history a restart replays) and the active one.
    private func reclaimLocked() {
        let activePath = active?.path
        var keptHistory = false
        var keep: [Segment] = []
        for s in segments.reversed() {
            if s.path == activePath || s.live > 0 { keep.append(s); continue }
            if !keptHistory { keptHistory = true; keep.append(s); continue }
            do { try FileManager.default.removeItem(atPath: s.path) } catch {
                log.limited(.warning, key: "intake-remove", "intake journal \(s.path): cannot delete a retired segment: \(error)")
                keep.append(s)
            }
        }
        segments = keep.reversed()
    }

    /// Bytes of the segments that still hold unretired entries (the active one always counts).
    private func liveBytesLocked() -> Int {
        let activePath = active?.path
        return segments.reduce(0) { $0 + ($1.live > 0 || $1.path == activePath ? $1.bytes : 0) }
    }

    /// Stopping: an append waiting for room goes ahead, so the MQTT thread can be joined
    /// (what it journals past the cap is processed and committed by the stop's drain).
    public func stopWaiting() { cond.withLock { closing = true; cond.broadcast() } }

    public func onPrune(_ listener: @escaping @Sendable (UInt64) -> Void) { cond.withLock { pruneListener = listener } }

    /// Entries not retired yet, and the bytes of the segments on disk (for /metrics).
    public var pending: (entries: Int, bytes: Int) {
        cond.withLock { (segments.reduce(0) { $0 + $1.live }, segments.reduce(0) { $0 + $1.bytes }) }
    }
}

/// A journal that cannot be opened or read, with the path and what to do.
public struct IntakeError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ d: String) { description = d }
}

/// One journal record, little-endian:
/// `magic u32 | length u32 | seq u64 | receivedAt f64 | mid i32 | topic length u16 | 0 u16 |
///  checksum u64 | topic | payload`, where `length` counts the whole record and `checksum`
/// covers the header fields and the frame hash (topic and payload). A record that does not
/// check out ends the segment's readable part.
enum Record {
    static let magic: UInt32 = 0x314A_4756   // "VGJ1"
    static let headerSize = 40

    static func checksum(seq: UInt64, receivedAt: UInt64, mid: Int32, topicLength: Int, length: Int, hash: UInt64) -> UInt64 {
        var c = FrameHash.combine(hash, seq)
        c = FrameHash.combine(c, receivedAt)
        c = FrameHash.combine(c, UInt64(UInt32(bitPattern: mid)) << 32 | UInt64(topicLength) << 16)
        return FrameHash.combine(c, UInt64(length))
    }

    static func encode(seq: UInt64, mid: Int32, receivedAt: Double, topic: String, payload: [UInt8], hash: UInt64) -> [UInt8] {
        let t = Array(topic.utf8.prefix(Int(UInt16.max)))
        let length = headerSize + t.count + payload.count
        var out: [UInt8] = []
        out.reserveCapacity(length)
        func put<T: FixedWidthInteger>(_ v: T) { for i in 0..<MemoryLayout<T>.size { out.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        put(magic)
        put(UInt32(length))
        put(seq)
        put(receivedAt.bitPattern)
        put(mid)
        put(UInt16(t.count))
        put(UInt16(0))
        put(checksum(seq: seq, receivedAt: receivedAt.bitPattern, mid: mid, topicLength: t.count, length: length, hash: hash))
        out.append(contentsOf: t)
        out.append(contentsOf: payload)
        return out
    }

    /// The whole records from the start, and the offset where the readable part ends.
    static func parse(_ b: [UInt8]) -> ([IntakeJournal.Entry], Int) {
        func read<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            var v: T = 0
            for i in 0..<MemoryLayout<T>.size { v |= T(truncatingIfNeeded: b[at + i]) << (8 * i) }
            return v
        }
        var entries: [IntakeJournal.Entry] = []
        var at = 0
        while at + headerSize <= b.count {
            guard read(at, UInt32.self) == magic else { break }
            let length = Int(read(at + 4, UInt32.self))
            let topicLength = Int(read(at + 28, UInt16.self))
            guard length >= headerSize + topicLength, at + length <= b.count else { break }
            let seq = read(at + 8, UInt64.self)
            let received = read(at + 16, UInt64.self)
            let mid = read(at + 24, Int32.self)
            let sum = read(at + 32, UInt64.self)
            let topicBytes = Array(b[(at + headerSize)..<(at + headerSize + topicLength)])
            let payload = Array(b[(at + headerSize + topicLength)..<(at + length)])
            let topic = String(decoding: topicBytes, as: UTF8.self)
            let hash = FrameHash.hash(payload, seed: FrameHash.hash(topicBytes))
            guard sum == checksum(seq: seq, receivedAt: received, mid: mid, topicLength: topicLength, length: length, hash: hash) else { break }
            entries.append(.init(seq: seq, mid: mid, receivedAt: Double(bitPattern: received), topic: topic, payload: payload, hash: hash))
            at += length
        }
        return (entries, at)
    }
}
