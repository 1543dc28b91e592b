import Foundation

/// Saves and restores one device's camera state (last frame, background, activity), so a
/// restart does not make every camera relearn its scene. One small file per pipeline and
/// device under the state directory (next to the log, `motion-state/`), written whole and
/// renamed into place, so a crash leaves the old file or the new one, never half of one.
/// Anything unreadable, of another size, or from another format is ignored: the device
/// then starts afresh, as it always did.
struct CameraStateFile {
    let path: String

    static let magic = Array("VGCS1\n".utf8)

    /// Device names come from topics: the file name keeps their safe characters and adds a
    /// hash of the whole name, so two devices never share a file and nothing escapes the folder.
    init(directory: String, pipeline: String, device: String) {
        func safe(_ s: String) -> String {
            String(s.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" ? Character($0) : "_" }.prefix(40))
        }
        var h: UInt64 = 0xcbf29ce484222325
        for b in device.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        path = "\(directory)/\(safe(pipeline))/\(safe(device))-\(String(h, radix: 16)).state"
    }

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
        out.reserveCapacity(32 + s.last.count * 12)
        for v in [UInt32(s.width), UInt32(s.height)] { append32(v, &out) }
        var t = s.ts.bitPattern
        for _ in 0..<8 { out.append(UInt8(t & 0xff)); t >>= 8 }
        for plane in [s.last, s.background, s.activity] { for x in plane { append32(x.bitPattern, &out) } }
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data(out).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// The saved state if it is whole and of this size, else nil.
    func load(width: Int, height: Int) -> CameraState? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let b = [UInt8](data)
        let n = width * height, header = CameraStateFile.magic.count + 16
        guard b.count == header + 12 * n, Array(b.prefix(CameraStateFile.magic.count)) == CameraStateFile.magic,
              read32(b, CameraStateFile.magic.count) == UInt32(width), read32(b, CameraStateFile.magic.count + 4) == UInt32(height)
        else { return nil }
        var t: UInt64 = 0
        for i in (0..<8).reversed() { t = t << 8 | UInt64(b[CameraStateFile.magic.count + 8 + i]) }
        func plane(_ k: Int) -> [Float] { (0..<n).map { Float(bitPattern: read32(b, header + 4 * (k * n + $0))) } }
        let planes = [plane(0), plane(1), plane(2)]
        guard planes.allSatisfy(allFinite) else { return nil }
        return CameraState(last: planes[0], background: planes[1], activity: planes[2], ts: Double(bitPattern: t),
                           width: width, height: height)
    }

    private func append32(_ v: UInt32, _ out: inout [UInt8]) {
        out.append(UInt8(v & 0xff)); out.append(UInt8(v >> 8 & 0xff)); out.append(UInt8(v >> 16 & 0xff)); out.append(UInt8(v >> 24))
    }

    private func read32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }
}
