/// gzip (RFC 1952) around one DEFLATE (RFC 1951) block with the fixed Huffman code and LZ77
/// matches from hash chains. No zlib is among the libraries Vigil may link, and sync batches
/// are repetitive JSON, which this compresses 5-10x; the dynamic-Huffman last 10-20% is not
/// worth the code.
public enum Gzip {
    public static func compress(_ input: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]   // magic, deflate, no flags, no mtime, OS unknown
        var bits = BitWriter()
        Deflate.fixedBlock(input, into: &bits)
        out += bits.finish()
        let crc = CRC32.checksum(input)
        let size = UInt32(truncatingIfNeeded: input.count)
        for v in [crc, size] { for s in stride(from: 0, to: 32, by: 8) { out.append(UInt8((v >> UInt32(s)) & 0xff)) } }
        return out
    }
}

/// CRC-32 (IEEE 802.3), as gzip's trailer needs.
public enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xedb8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xffff_ffff
        for b in data { c = table[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xffff_ffff
    }
}

/// Bits in DEFLATE's order: packed from the least significant bit of each byte.
struct BitWriter {
    private var buffer: UInt64 = 0
    private var count = 0
    private(set) var bytes: [UInt8] = []

    mutating func write(_ value: UInt32, _ n: Int) {
        buffer |= UInt64(value) << UInt64(count)
        count += n
        while count >= 8 {
            bytes.append(UInt8(buffer & 0xff))
            buffer >>= 8
            count -= 8
        }
    }

    /// Huffman codes are defined most significant bit first: reverse them into the stream.
    mutating func writeCode(_ code: UInt32, _ n: Int) {
        var r: UInt32 = 0
        for i in 0..<n where code & (1 << UInt32(i)) != 0 { r |= 1 << UInt32(n - 1 - i) }
        write(r, n)
    }

    mutating func finish() -> [UInt8] {
        if count > 0 { bytes.append(UInt8(buffer & 0xff)) }
        buffer = 0; count = 0
        return bytes
    }
}

enum Deflate {
    static let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59,
                                    67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distBase: [Int] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
                                  1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    static let distExtra: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    static let windowSize = 32768
    static let minMatch = 3
    static let maxMatch = 258
    static let maxChain = 64
    static let hashBits = 15

    /// The fixed literal/length code (RFC 1951, 3.2.6).
    static func writeLiteralOrLength(_ symbol: Int, _ bits: inout BitWriter) {
        switch symbol {
        case 0...143: bits.writeCode(UInt32(0x30 + symbol), 8)
        case 144...255: bits.writeCode(UInt32(0x190 + symbol - 144), 9)
        case 256...279: bits.writeCode(UInt32(symbol - 256), 7)
        default: bits.writeCode(UInt32(0xc0 + symbol - 280), 8)
        }
    }

    static func writeMatch(length: Int, distance: Int, _ bits: inout BitWriter) {
        var li = lengthBase.count - 1
        while lengthBase[li] > length { li -= 1 }
        writeLiteralOrLength(257 + li, &bits)
        if lengthExtra[li] > 0 { bits.write(UInt32(length - lengthBase[li]), lengthExtra[li]) }
        var di = distBase.count - 1
        while distBase[di] > distance { di -= 1 }
        bits.writeCode(UInt32(di), 5)
        if distExtra[di] > 0 { bits.write(UInt32(distance - distBase[di]), distExtra[di]) }
    }

    static func fixedBlock(_ data: [UInt8], into bits: inout BitWriter) {
        bits.write(1, 1)   // BFINAL
        bits.write(1, 2)   // BTYPE 01: fixed Huffman
        let n = data.count
        var head = [Int32](repeating: -1, count: 1 << hashBits)
        var prev = [Int32](repeating: -1, count: windowSize)
        @inline(__always) func hash(_ i: Int) -> Int {
            let h = (Int(data[i]) << 10) ^ (Int(data[i + 1]) << 5) ^ Int(data[i + 2])
            return ((h &* 2_654_435_761) >> 7) & ((1 << hashBits) - 1)
        }
        @inline(__always) func insert(_ i: Int) {
            guard i + minMatch <= n else { return }
            let h = hash(i)
            prev[i & (windowSize - 1)] = head[h]
            head[h] = Int32(i)
        }
        var i = 0
        while i < n {
            var bestLength = 0, bestDistance = 0
            if i + minMatch <= n {
                var candidate = Int(head[hash(i)])
                var chain = maxChain
                let limit = min(maxMatch, n - i)
                while candidate >= 0, i - candidate <= windowSize, chain > 0 {
                    if data[candidate + bestLength] == data[i + bestLength] || bestLength == 0 {
                        var l = 0
                        while l < limit, data[candidate + l] == data[i + l] { l += 1 }
                        if l > bestLength {
                            bestLength = l; bestDistance = i - candidate
                            if l == limit { break }
                        }
                    }
                    let p = Int(prev[candidate & (windowSize - 1)])
                    // Entries older than the window were overwritten: stop at a non-decreasing link.
                    if p >= candidate { break }
                    candidate = p
                    chain -= 1
                }
            }
            if bestLength >= minMatch {
                writeMatch(length: bestLength, distance: bestDistance, &bits)
                for k in i..<(i + bestLength) { insert(k) }
                i += bestLength
            } else {
                writeLiteralOrLength(Int(data[i]), &bits)
                insert(i)
                i += 1
            }
        }
        writeLiteralOrLength(256, &bits)   // end of block
    }
}
