import Foundation

/// Saves and restores one device's camera state (last frame, background, activity, and the
/// clean background that heals ghosts), so a
/// restart does not make every camera relearn its scene. One small file per pipeline and
/// device under the state directory (next to the log, `motion-state/`), written whole and
/// renamed into place, so a crash leaves the old file or the new one, never half of one.
/// Anything unreadable, of another size, or from another format is ignored: the device
/// then starts afresh, as it always did. The folder as a whole is capped
/// (CameraStateFolder).
///
/// Layout (little-endian): magic, width, height (UInt32), frame time (Float64 bits), then
/// the pipeline and device names (UInt16 length + UTF-8 each, so `vigilctl baseline` can
/// name a file's device: the file name keeps only its safe characters), then the planes:
/// last, background, activity, clean, restless, snapshot; then the view's offset (y, x: Float64
/// bits; ViewAligner). The healing's timers are not saved
/// (a restart costs a ghost one more second, a parked car one more acceptance time); the
/// snapshot is taken to be as old as the state. Files of the formats before are still read:
/// `VGCS4` (no offset: 0), `VGCS3` (four planes: the restless map starts at 0, the last frame
/// is the snapshot) and `VGCS2` (three: the background also stands in for the clean one).
struct CameraStateFile {
    let path: String
    let pipeline: String
    let device: String

    static let magic = Array("VGCS5\n".utf8)
    /// Before the view was aligned (until motion v2.12, 2026-12-04): no offset.
    static let magicV4 = Array("VGCS4\n".utf8)
    /// Before the restless map (until motion v2.8, 2026-12-04): four planes.
    static let magicV3 = Array("VGCS3\n".utf8)
    /// The format before ghosts were healed (until 2026-12-03): three planes.
    static let magicV2 = Array("VGCS2\n".utf8)

    /// Device names come from topics: the file name keeps their safe characters and adds a
    /// hash of the whole name, so two devices never share a file and nothing escapes the folder.
    init(directory: String, pipeline: String, device: String) {
        func safe(_ s: String) -> String {
            String(s.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" ? Character($0) : "_" }.prefix(40))
        }
        var h: UInt64 = 0xcbf29ce484222325
        for b in device.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        path = "\(directory)/\(safe(pipeline))/\(safe(device))-\(String(h, radix: 16)).state"
        self.pipeline = pipeline; self.device = device
        folder = CameraStateFolder.at(directory)
    }

    /// The folder's books: each save is noted there, and the folder's cap applied.
    private let folder: CameraStateFolder

    /// Removes saved states not written for `maxAge` seconds (devices that never came back),
    /// so the folder does not grow with every device name ever seen. Returns how many.
    @discardableResult
    static func sweep(directory: String, maxAge: Double, now: Date = Date()) -> Int {
        let fm = FileManager.default
        guard let files = fm.enumerator(atPath: directory) else { return 0 }
        var removed = 0
        for case let rel as String in files where rel.hasSuffix(".state") {
            let path = directory + "/" + rel
            guard let modified = (try? fm.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                  now.timeIntervalSince(modified) > maxAge else { continue }
            if (try? fm.removeItem(atPath: path)) != nil { removed += 1 }
        }
        return removed
    }

    func save(_ s: CameraState) throws {
        var out = CameraStateFile.magic
        out.reserveCapacity(32 + s.last.count * 24)
        for v in [UInt32(s.width), UInt32(s.height)] { append32(v, &out) }
        append64(s.ts.bitPattern, &out)
        for name in [pipeline, device] { appendName(name, &out) }
        for plane in [s.last, s.background, s.activity, s.clean, s.restless, s.snapshot] { for x in plane { append32(x.bitPattern, &out) } }
        for v in [s.viewOffset.y, s.viewOffset.x] { append64(v.bitPattern, &out) }
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data(out).write(to: URL(fileURLWithPath: path), options: .atomic)
        folder.saved(path: path, bytes: out.count)
    }

    /// The saved state if it is whole, of this size and this device's, else nil.
    func load(width: Int, height: Int) -> CameraState? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let b = [UInt8](data)
        let n = width * height
        guard let head = CameraStateFile.header(b), head.pipeline == pipeline, head.device == device,
              head.width == width, head.height == height,
              b.count == head.bytes + 4 * head.planes * n + (head.offset ? 16 : 0) else { return nil }
        func plane(_ k: Int) -> [Float] { (0..<n).map { Float(bitPattern: CameraStateFile.read32(b, head.bytes + 4 * (k * n + $0))) } }
        let planes = (0..<head.planes).map(plane)
        guard planes.allSatisfy(allFinite) else { return nil }
        // A file from before the alignment has no offset; a saved one the aligner cannot have written: no state.
        guard let offset = head.offset ? CameraStateFile.viewOffset(b, at: head.bytes + 4 * head.planes * n) : (y: 0, x: 0) else { return nil }
        return CameraState(last: planes[0], background: planes[1], activity: planes[2],
                           clean: planes.count > 3 ? planes[3] : nil, restless: planes.count > 5 ? planes[4] : nil,
                           snapshot: planes.count > 5 ? planes[5] : nil, viewOffset: offset, ts: head.ts, width: width, height: height)
    }

    /// What a file's header says (nil: not a state file of any format). `bytes`: the
    /// header's length, where the planes begin; `planes`: how many follow; `offset`: whether
    /// the view's offset follows them.
    static func header(_ b: [UInt8]) -> (pipeline: String, device: String, width: Int, height: Int, ts: Double, bytes: Int, planes: Int,
                                         offset: Bool)? {
        let m = magic.count
        guard b.count >= m + 20 else { return nil }
        let planes: Int
        switch Array(b.prefix(m)) {
        case magic, magicV4: planes = 6
        case magicV3: planes = 4
        case magicV2: planes = 3
        default: return nil
        }
        let t = read64(b, m + 8)
        var at = m + 16
        var names: [String] = []
        for _ in 0..<2 {
            guard at + 2 <= b.count else { return nil }
            let len = Int(b[at]) | Int(b[at + 1]) << 8
            guard at + 2 + len <= b.count, let name = String(bytes: b[(at + 2)..<(at + 2 + len)], encoding: .utf8) else { return nil }
            names.append(name)
            at += 2 + len
        }
        return (names[0], names[1], Int(read32(b, m)), Int(read32(b, m + 4)), Double(bitPattern: t), at, planes,
                Array(b.prefix(m)) == magic)
    }

    private func appendName(_ name: String, _ out: inout [UInt8]) {
        let bytes = Array(name.utf8.prefix(Int(UInt16.max)))
        out.append(UInt8(bytes.count & 0xff)); out.append(UInt8(bytes.count >> 8))
        out += bytes
    }

    private func append32(_ v: UInt32, _ out: inout [UInt8]) {
        out.append(UInt8(v & 0xff)); out.append(UInt8(v >> 8 & 0xff)); out.append(UInt8(v >> 16 & 0xff)); out.append(UInt8(v >> 24))
    }

    private func append64(_ v: UInt64, _ out: inout [UInt8]) {
        var v = v
        for _ in 0..<8 { out.append(UInt8(v & 0xff)); v >>= 8 }
    }

    /// The view's offset saved at `at` (y, x: Float64 little-endian); nil when it is beyond the
    /// aligner's reach or not a number: not one the aligner wrote.
    static func viewOffset(_ b: [UInt8], at: Int) -> (y: Double, x: Double)? {
        let o = (y: Double(bitPattern: read64(b, at)), x: Double(bitPattern: read64(b, at + 8)))
        return abs(o.y) <= ViewAligner.reach && abs(o.x) <= ViewAligner.reach ? o : nil
    }

    static func read64(_ b: [UInt8], _ at: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in (0..<8).reversed() { v = v << 8 | UInt64(b[at + i]) }
        return v
    }

    static func read32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }
}
