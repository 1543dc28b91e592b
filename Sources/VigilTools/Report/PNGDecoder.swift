import VigilCore

/// Reads PNGs back: the report downscales large evidence frames into thumbnails, and the
/// report's test checks Chromium's screenshot is not blank. 8-bit, non-interlaced greyscale,
/// grey+alpha, RGB and RGBA (what vigild writes and what Chromium writes); anything else is nil.
/// No zlib is linked (DESIGN.md), so inflate is here too, after RFC 1951 and zlib's puff.c.
public enum PNGDecoder {
    public struct Image: Sendable, Equatable {
        public var width: Int
        public var height: Int
        /// 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.
        public var channels: Int
        public var pixels: [UInt8]

        /// Luminance per pixel (alpha ignored).
        public var grey: [UInt8] {
            if channels <= 2 { return stride(from: 0, to: pixels.count, by: channels).map { pixels[$0] } }
            return stride(from: 0, to: pixels.count, by: channels).map { (i: Int) -> UInt8 in
                let r: Int = 299 * Int(pixels[i]), g: Int = 587 * Int(pixels[i + 1]), b: Int = 114 * Int(pixels[i + 2])
                return UInt8((r + g + b) / 1000)
            }
        }
    }

    /// `bytes` decoded, or nil when it is not a PNG this reads. `maxPixels` bounds the work.
    public static func decode(_ bytes: [UInt8], maxPixels: Int = 16_000_000) -> Image? {
        guard bytes.count > 8, Array(bytes[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else { return nil }
        var i = 8
        var width = 0, height = 0, channels = 0
        var idat: [UInt8] = []
        func be32(_ at: Int) -> Int { Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3]) }
        while i + 8 <= bytes.count {
            let length = be32(i)
            let type = String(decoding: bytes[(i + 4)..<(i + 8)], as: UTF8.self)
            let start = i + 8
            guard length >= 0, start + length + 4 <= bytes.count else { return nil }
            switch type {
            case "IHDR":
                guard length == 13 else { return nil }
                width = be32(start); height = be32(start + 4)
                let depth = bytes[start + 8], colour = bytes[start + 9], interlace = bytes[start + 12]
                guard depth == 8, interlace == 0 else { return nil }
                switch colour { case 0: channels = 1; case 4: channels = 2; case 2: channels = 3; case 6: channels = 4; default: return nil }
            case "IDAT": idat += bytes[start..<(start + length)]
            case "IEND": i = bytes.count; continue
            default: break
            }
            i = start + length + 4
        }
        guard width > 0, height > 0, channels > 0, width * height <= maxPixels, idat.count > 2 else { return nil }
        let stride = width * channels
        guard let raw = Inflate.decompress(Array(idat[2...]), limit: (stride + 1) * height), raw.count == (stride + 1) * height else { return nil }
        var out = [UInt8](repeating: 0, count: stride * height)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            let src = y * (stride + 1) + 1, dst = y * stride
            for x in 0..<stride {
                let a = x >= channels ? Int(out[dst + x - channels]) : 0
                let b = y > 0 ? Int(out[dst - stride + x]) : 0
                let c = x >= channels && y > 0 ? Int(out[dst - stride + x - channels]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: return nil
                }
                out[dst + x] = raw[src + x] &+ UInt8(predictor & 0xff)
            }
        }
        return Image(width: width, height: height, channels: channels, pixels: out)
    }
}

/// RFC 1951 DEFLATE decoding: stored, fixed and dynamic Huffman blocks.
enum Inflate {
    struct Huffman {
        var counts = [Int](repeating: 0, count: 16)
        var symbols: [Int]

        init(_ lengths: [Int]) {
            symbols = [Int](repeating: 0, count: lengths.count)
            for l in lengths { counts[l] += 1 }
            counts[0] = 0
            var offsets = [Int](repeating: 0, count: 16)
            for l in 1..<15 { offsets[l + 1] = offsets[l] + counts[l] }
            for (s, l) in lengths.enumerated() where l != 0 { symbols[offsets[l]] = s; offsets[l] += 1 }
        }
    }

    struct Bits {
        let data: [UInt8]
        var pos = 0
        var buffer = 0
        var count = 0

        mutating func take(_ n: Int) -> Int? {
            while count < n {
                guard pos < data.count else { return nil }
                buffer |= Int(data[pos]) << count
                pos += 1
                count += 8
            }
            let v = buffer & ((1 << n) - 1)
            buffer >>= n
            count -= n
            return v
        }

        mutating func decode(_ h: Huffman) -> Int? {
            var code = 0, first = 0, index = 0
            for l in 1..<16 {
                guard let bit = take(1) else { return nil }
                code |= bit
                let n = h.counts[l]
                if code - n < first { return h.symbols[index + code - first] }
                index += n; first += n
                first <<= 1; code <<= 1
            }
            return nil
        }
    }

    static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
                               4097, 6145, 8193, 12289, 16385, 24577]
    static let distanceExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    static let fixedLiterals = Huffman((0..<288).map { $0 < 144 ? 8 : $0 < 256 ? 9 : $0 < 280 ? 7 : 8 })
    static let fixedDistances = Huffman([Int](repeating: 5, count: 30))

    /// The decompressed bytes, or nil when damaged or longer than `limit` (a bomb costs nothing).
    static func decompress(_ data: [UInt8], limit: Int) -> [UInt8]? {
        var bits = Bits(data: data)
        var out: [UInt8] = []
        out.reserveCapacity(limit)
        while true {
            guard let last = bits.take(1), let type = bits.take(2) else { return nil }
            switch type {
            case 0:
                bits.buffer = 0; bits.count = 0   // stored blocks start on a byte
                guard bits.pos + 4 <= data.count else { return nil }
                let len = Int(data[bits.pos]) | Int(data[bits.pos + 1]) << 8
                bits.pos += 4
                guard bits.pos + len <= data.count, out.count + len <= limit else { return nil }
                out += data[bits.pos..<(bits.pos + len)]
                bits.pos += len
            case 1:
                guard codes(&bits, fixedLiterals, fixedDistances, &out, limit) else { return nil }
            case 2:
                guard let hlit = bits.take(5), let hdist = bits.take(5), let hclen = bits.take(4) else { return nil }
                var lengths = [Int](repeating: 0, count: 19)
                for k in 0..<(hclen + 4) {
                    guard let l = bits.take(3) else { return nil }
                    lengths[[16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15][k]] = l
                }
                let lencode = Huffman(lengths)
                var all: [Int] = []
                let total = hlit + 257 + hdist + 1
                while all.count < total {
                    guard let sym = bits.decode(lencode) else { return nil }
                    switch sym {
                    case 0..<16: all.append(sym)
                    case 16:
                        guard let prev = all.last, let r = bits.take(2) else { return nil }
                        all += [Int](repeating: prev, count: 3 + r)
                    case 17:
                        guard let r = bits.take(3) else { return nil }
                        all += [Int](repeating: 0, count: 3 + r)
                    default:
                        guard let r = bits.take(7) else { return nil }
                        all += [Int](repeating: 0, count: 11 + r)
                    }
                }
                guard all.count == total else { return nil }
                guard codes(&bits, Huffman(Array(all[0..<(hlit + 257)])), Huffman(Array(all[(hlit + 257)...])), &out, limit) else { return nil }
            default:
                return nil
            }
            if last == 1 { return out }
        }
    }

    static func codes(_ bits: inout Bits, _ literals: Huffman, _ distances: Huffman, _ out: inout [UInt8], _ limit: Int) -> Bool {
        while true {
            guard let sym = bits.decode(literals) else { return false }
            if sym < 256 {
                guard out.count < limit else { return false }
                out.append(UInt8(sym))
            } else if sym == 256 {
                return true
            } else {
                let li = sym - 257
                guard li < lengthBase.count, let le = bits.take(lengthExtra[li]) else { return false }
                let length = lengthBase[li] + le
                guard let di = bits.decode(distances), di < distanceBase.count, let de = bits.take(distanceExtra[di]) else { return false }
                let distance = distanceBase[di] + de
                guard distance <= out.count, out.count + length <= limit else { return false }
                let from = out.count - distance
                for k in 0..<length { out.append(out[from + k]) }
            }
        }
    }
}
