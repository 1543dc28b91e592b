import Foundation

/// The file formats evidence is kept in, each chosen so that a stock tool opens it: PNG for
/// camera frames, 16-bit PCM WAV for audio, CSV for readings, and one ustar archive per
/// alert holding them (`tar xf`, Python's `tarfile`, any archive manager).
/// No zlib is linked (DESIGN.md): PNG's zlib stream wraps the project's own DEFLATE (Sync/Gzip.swift).
public enum PNG {
    /// An 8-bit greyscale PNG. Each row gets the Sub filter (a pixel minus its left
    /// neighbour), which turns smooth image areas into runs of small numbers that DEFLATE
    /// matches well.
    public static func grey(width: Int, height: Int, pixels: [UInt8]) -> [UInt8] {
        precondition(pixels.count == width * height)
        var raw = [UInt8](repeating: 0, count: (width + 1) * height)
        var o = 0
        for y in 0..<height {
            raw[o] = 1   // filter type Sub
            o += 1
            let row = y * width
            var left: UInt8 = 0
            for x in 0..<width {
                let p = pixels[row + x]
                raw[o] = p &- left
                left = p
                o += 1
            }
        }
        var bits = BitWriter()
        Deflate.fixedBlock(raw, into: &bits)
        var zlib: [UInt8] = [0x78, 0x01]   // deflate, 32 KB window, no dictionary, fastest level
        zlib += bits.finish()
        append32(Adler32.checksum(raw), to: &zlib)

        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var ihdr: [UInt8] = []
        append32(UInt32(width), to: &ihdr)
        append32(UInt32(height), to: &ihdr)
        ihdr += [8, 0, 0, 0, 0]   // 8 bits, greyscale, deflate, adaptive filters, no interlace
        chunk("IHDR", ihdr, into: &out)
        chunk("IDAT", zlib, into: &out)
        chunk("IEND", [], into: &out)
        return out
    }

    static func chunk(_ type: String, _ data: [UInt8], into out: inout [UInt8]) {
        append32(UInt32(data.count), to: &out)
        let typed = Array(type.utf8) + data
        out += typed
        append32(CRC32.checksum(typed), to: &out)
    }

    static func append32(_ v: UInt32, to out: inout [UInt8]) {
        out += [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)]
    }
}

/// zlib's checksum (RFC 1950).
enum Adler32 {
    static func checksum(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        var i = 0
        while i < data.count {
            // 5552 bytes is the most that cannot overflow 32 bits before the modulo.
            let end = min(data.count, i + 5552)
            while i < end { a &+= UInt32(data[i]); b &+= a; i += 1 }
            a %= 65521; b %= 65521
        }
        return b << 16 | a
    }
}

public enum WAV {
    /// Mono 16-bit PCM. Samples in [-1, 1) map back to the int16 they were decoded from
    /// (the decoders divide by 32768), so audio that came in as 16-bit leaves byte-exact.
    public static func pcm16(sampleRate: Int, samples: [Float]) -> [UInt8] {
        func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xff) } }
        let dataBytes = samples.count * 2
        var out = Array("RIFF".utf8) + le32(36 + dataBytes) + Array("WAVEfmt ".utf8) + le32(16)
        out += [1, 0, 1, 0] + le32(sampleRate) + le32(sampleRate * 2) + [2, 0, 16, 0]
        out += Array("data".utf8) + le32(dataBytes)
        out.reserveCapacity(out.count + dataBytes)
        for s in samples {
            let v = Int16(max(-32768, min(32767, (s * 32768).rounded())))
            let u = UInt16(bitPattern: v)
            out.append(UInt8(u & 0xff))
            out.append(UInt8(u >> 8))
        }
        return out
    }
}

/// A ustar archive: 512-byte headers, contents padded to 512, two zero blocks at the end.
public enum Tar {
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var bytes: [UInt8]
        public init(name: String, bytes: [UInt8]) { self.name = name; self.bytes = bytes }
    }

    /// Names must be plain (ASCII, under 100 bytes, no slash): evidence items are named by vigild.
    public static func archive(_ entries: [Entry], mtime: Double) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(entries.reduce(1024) { $0 + 512 + ($1.bytes.count + 511) / 512 * 512 })
        for e in entries {
            var h = [UInt8](repeating: 0, count: 512)
            func put(_ s: String, _ at: Int, _ width: Int) {
                for (i, b) in s.utf8.prefix(width).enumerated() { h[at + i] = b }
            }
            func octal(_ v: Int, _ at: Int, _ width: Int) {
                put(String(repeating: "0", count: max(0, width - 1 - String(v, radix: 8).count)) + String(v, radix: 8), at, width - 1)
            }
            put(e.name, 0, 100)
            octal(0o640, 100, 8)
            octal(0, 108, 8)
            octal(0, 116, 8)
            octal(e.bytes.count, 124, 12)
            octal(Int(max(0, mtime)), 136, 12)
            h[156] = UInt8(ascii: "0")
            put("ustar", 257, 6)
            put("00", 263, 2)
            put("vigil", 265, 32)
            put("vigil", 297, 32)
            for i in 148..<156 { h[i] = 32 }
            let sum = h.reduce(0) { $0 + Int($1) }
            octal(sum, 148, 7)
            h[155] = 32
            out += h
            out += e.bytes
            let pad = (512 - e.bytes.count % 512) % 512
            out += [UInt8](repeating: 0, count: pad)
        }
        out += [UInt8](repeating: 0, count: 1024)
        return out
    }

    /// The entries of an archive `archive` wrote; nil when the bytes are not one (damaged or cut).
    public static func entries(_ data: [UInt8]) -> [Entry]? {
        var out: [Entry] = []
        var at = 0
        while at + 512 <= data.count {
            let h = data[at..<at + 512]
            if h.allSatisfy({ $0 == 0 }) { return out }
            let nameEnd = h.prefix(100).firstIndex(of: 0) ?? h.startIndex + 100
            let name = String(decoding: data[at..<nameEnd], as: UTF8.self)
            let sizeText = String(decoding: data[at + 124..<at + 135], as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
            guard let size = Int(sizeText, radix: 8), at + 512 + size <= data.count else { return nil }
            out.append(Entry(name: name, bytes: Array(data[at + 512..<at + 512 + size])))
            at += 512 + (size + 511) / 512 * 512
        }
        return nil   // no end-of-archive blocks: cut short
    }
}

/// What an item is, for HTTP and for the manifest.
public func evidenceContentType(_ name: String) -> String {
    if name.hasSuffix(".png") { return "image/png" }
    if name.hasSuffix(".wav") { return "audio/wav" }
    if name.hasSuffix(".csv") { return "text/csv; charset=utf-8" }
    if name.hasSuffix(".json") { return "application/json" }
    if name.hasSuffix(".tar") { return "application/x-tar" }
    return "application/octet-stream"
}
