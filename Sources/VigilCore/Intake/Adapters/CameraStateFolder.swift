import Foundation
import Synchronization

/// The saved camera states of one folder (`motion-state/`), kept under a byte cap
/// (`storage.motion_state_mb`). Device names come from topics: a publisher that keeps
/// inventing camera names alive past a background time constant leaves a 450 KB file per
/// name at 160x120, so past the cap the states written least recently are deleted first
/// (never the one just written), counted (`vigil_motion_states_dropped_total`) and logged.
/// One instance per folder, shared by every pipeline's adapters (`at`): they save from
/// several lanes at once.
public final class CameraStateFolder: Sendable {
    public let directory: String

    private struct Books {
        var maxBytes: Int
        /// path -> (bytes, last written); nil until the folder was first read.
        var files: [String: (bytes: Int, written: Double)]?
        var dropped = 0
        var metrics: MetricsRegistry?
    }
    private let books: Mutex<Books>

    /// 64 MB: some 140 cameras at 160x120 (450 KB each), far more than a gateway serves.
    public static let defaultMaxBytes = 64 << 20

    init(directory: String, maxBytes: Int) {
        self.directory = directory
        books = Mutex(Books(maxBytes: maxBytes))
    }

    private static let folders = Mutex<[String: CameraStateFolder]>([:])

    /// The folder's one instance (made with the default cap on first use).
    public static func at(_ directory: String) -> CameraStateFolder {
        folders.withLock { all in
            if let f = all[directory] { return f }
            let f = CameraStateFolder(directory: directory, maxBytes: defaultMaxBytes)
            all[directory] = f
            return f
        }
    }

    /// vigild's start: sets the cap and the metrics, reads the folder and trims it to the cap
    /// at once (the cap may have been lowered). Returns how many states were deleted.
    @discardableResult
    public func configure(maxBytes: Int, metrics: MetricsRegistry?) -> Int {
        books.withLock { b in
            b.maxBytes = maxBytes
            b.metrics = metrics
            b.files = nil
            metrics?.add(MetricName.motionStatesDropped, [], 0)
            return trim(&b, keeping: nil, reason: "at start")
        }
    }

    /// A state was just written: note it, and delete the oldest others while the folder is
    /// over its cap.
    func saved(path: String, bytes: Int, now: Date = Date()) {
        books.withLock { b in
            if b.files == nil { b.files = scan() }
            b.files![path] = (bytes, now.timeIntervalSince1970)
            trim(&b, keeping: path, reason: "after saving \((path as NSString).lastPathComponent)")
        }
    }

    /// States deleted to stay under the cap since this process started.
    public var dropped: Int { books.withLock { $0.dropped } }

    /// Bytes the folder's states take, as last counted.
    public var bytes: Int { books.withLock { b in (b.files ?? scan()).values.reduce(0) { $0 + $1.bytes } } }

    @discardableResult
    private func trim(_ b: inout Books, keeping: String?, reason: String) -> Int {
        if b.files == nil { b.files = scan() }
        var total = b.files!.values.reduce(0) { $0 + $1.bytes }
        guard total > b.maxBytes else { return 0 }
        var removed = 0, freed = 0
        for (path, f) in b.files!.sorted(by: { $0.value.written < $1.value.written }) where path != keeping {
            guard total > b.maxBytes else { break }
            do { try FileManager.default.removeItem(atPath: path) } catch {
                log.limited(.error, key: "motion-state-cap", "motion state \(directory): cannot delete \(path) to stay under storage.motion_state_mb: \(error)")
                continue
            }
            b.files![path] = nil
            total -= f.bytes; freed += f.bytes; removed += 1
        }
        guard removed > 0 else { return 0 }
        b.dropped += removed
        b.metrics?.add(MetricName.motionStatesDropped, [], Double(removed))
        log.limited(.warning, key: "motion-state-cap",
                    "motion state \(directory): over storage.motion_state_mb (\(JSONValue.format((Double(b.maxBytes) / 1_048_576 * 100).rounded() / 100)) MB) \(reason): deleted the \(removed) states written least recently (\(freed / 1024) KB; those cameras relearn their scene); deleted so far: \(b.dropped)")
        return removed
    }

    /// Every state file under the folder, with its size and modification time.
    private func scan() -> [String: (bytes: Int, written: Double)] {
        var out: [String: (bytes: Int, written: Double)] = [:]
        for e in CameraStateFolder.list(directory: directory, readingFiles: false) {
            out[e.path] = (e.bytes, e.written)
        }
        return out
    }

    /// One saved state as `vigilctl baseline` shows it.
    public struct Entry: Sendable {
        public let path: String
        /// From the file's header; nil for a file of another format (shown, and counted in the cap).
        public let pipeline: String?
        public let device: String?
        public let width: Int, height: Int
        /// Frame time of the last frame the state learnt from.
        public let frameTime: Double?
        public let bytes: Int
        /// When the file was written (its modification time).
        public let written: Double
        /// How far the camera's view had crept from where the state began, px at the model's frame
        /// size (ViewAligner; 0 when the pipeline does not align); nil for a file without one.
        public let viewOffset: (y: Double, x: Double)?
    }

    /// How far the aligner follows a creeping view, px at the model's frame size: past it the
    /// camera has moved more than a creep (re-aim it).
    public static let viewReach = ViewAligner.reach

    /// The state files under `directory` (reads each file's header, and the view's offset from its
    /// last 16 bytes), oldest first. `readingFiles` false: sizes and times alone (what the cap
    /// needs), no file opened; names, frame and offset are then unknown.
    public static func list(directory: String, readingFiles: Bool = true) -> [Entry] {
        let fm = FileManager.default
        guard let files = fm.enumerator(atPath: directory) else { return [] }
        var out: [Entry] = []
        for case let rel as String in files where rel.hasSuffix(".state") {
            let path = directory + "/" + rel
            guard let attrs = try? fm.attributesOfItem(atPath: path), let size = attrs[.size] as? Int,
                  let modified = attrs[.modificationDate] as? Date else { continue }
            var head: [UInt8] = [], tail: [UInt8] = []
            let info: (pipeline: String, device: String, width: Int, height: Int, ts: Double, bytes: Int, planes: Int, offset: Bool)?
            if readingFiles, let h = FileHandle(forReadingAtPath: path) {
                head = [UInt8]((try? h.read(upToCount: 4096)) ?? Data())
                info = CameraStateFile.header(head)
                // The offset is the file's last 16 bytes when the planes before it are whole.
                if let i = info, i.offset, size == i.bytes + 4 * i.planes * i.width * i.height + 16, size >= 16,
                   (try? h.seek(toOffset: UInt64(size - 16))) != nil {
                    tail = [UInt8]((try? h.read(upToCount: 16)) ?? Data())
                }
                try? h.close()
            } else {
                info = nil
            }
            let offset = tail.count == 16 ? CameraStateFile.viewOffset(tail, at: 0) : nil
            out.append(Entry(path: path, pipeline: info?.pipeline, device: info?.device,
                             width: info?.width ?? 0, height: info?.height ?? 0, frameTime: info?.ts,
                             bytes: size, written: modified.timeIntervalSince1970, viewOffset: offset))
        }
        return out.sorted { $0.written < $1.written }
    }
}
