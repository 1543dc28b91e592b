import Foundation

/// `pgm`: binary PGM (P5) with 8-bit grey (maxval 1...255, scaled to 0...255); size from the
/// header. Declared sizes are checked against the caps and against the bytes present
/// before anything is allocated.
public struct PGMDecoder: PayloadDecoder {
    public let maxWidth: Int
    public let maxHeight: Int
    public init(maxWidth: Int, maxHeight: Int) { self.maxWidth = maxWidth; self.maxHeight = maxHeight }

    public func decode(_ p: [UInt8], receivedAt: Double) throws(FrameError) -> TimedFrame {
        guard p.count >= 2, p[0] == UInt8(ascii: "P"), p[1] == UInt8(ascii: "5") else {
            if p.count >= 2, p[0] == UInt8(ascii: "P"), p[1] == UInt8(ascii: "2") {
                throw FrameError(.unsupported, "pgm is plain-text P2; only binary P5 is read")
            }
            throw FrameError(.malformed, "pgm payload does not start with P5")
        }
        var i = 2
        /// Reads one header number, skipping whitespace and `#` comments; at most 9 digits,
        /// so a hostile header cannot overflow the size arithmetic.
        func number(_ what: String) throws(FrameError) -> Int {
            while i < p.count {
                if p[i] == UInt8(ascii: "#") {
                    while i < p.count, p[i] != 10, p[i] != 13 { i += 1 }
                } else if isSpace(p[i]) {
                    i += 1
                } else { break }
            }
            var n = 0, digits = 0
            while i < p.count, p[i] >= 48, p[i] <= 57 {
                n = n * 10 + Int(p[i] - 48)
                digits += 1
                i += 1
                guard digits <= 9 else { throw FrameError(.malformed, "pgm \(what) has too many digits") }
            }
            guard digits > 0 else { throw FrameError(.malformed, "pgm header lacks the \(what)") }
            return n
        }
        let width = try number("width")
        let height = try number("height")
        let maxval = try number("maxval")
        // Exactly one whitespace byte separates the header from the pixels.
        guard i < p.count, isSpace(p[i]) else { throw FrameError(.malformed, "pgm header is not followed by whitespace and pixels") }
        i += 1
        guard width > 0, height > 0 else { throw FrameError(.wrongSize, "pgm declares \(width)x\(height) pixels") }
        guard width <= maxWidth, height <= maxHeight else {
            throw FrameError(.tooLarge, "pgm declares \(width)x\(height) pixels, over max_width x max_height (\(maxWidth)x\(maxHeight))")
        }
        guard maxval >= 1, maxval <= 255 else {
            throw FrameError(.unsupported, "pgm maxval \(maxval): only 8-bit grey (maxval 1...255) is read")
        }
        let count = width * height
        guard p.count - i == count else {
            throw FrameError(.wrongSize, "pgm declares \(width)x\(height) = \(count) pixels but holds \(p.count - i) bytes")
        }
        var pixels = Array(p[i...])
        if maxval != 255 {
            for k in pixels.indices { pixels[k] = UInt8(min(255, (Int(pixels[k]) * 255 + maxval / 2) / maxval)) }
        }
        return TimedFrame(frame: .image(width: width, height: height, pixels: pixels), ts: receivedAt)
    }
}

@inline(__always) private func isSpace(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 10 || b == 13 || b == 11 || b == 12 }

/// `gray8`: raw 8-bit grey pixels, row-major, at the pipeline's `width` x `height`.
public struct Gray8Decoder: PayloadDecoder {
    public let width: Int
    public let height: Int
    public init(width: Int, height: Int) { self.width = width; self.height = height }

    public func decode(_ p: [UInt8], receivedAt: Double) throws(FrameError) -> TimedFrame {
        guard p.count == width * height else {
            throw FrameError(.wrongSize, "gray8 payload of \(p.count) bytes, expected \(width)x\(height) = \(width * height)")
        }
        return TimedFrame(frame: .image(width: width, height: height, pixels: p), ts: receivedAt)
    }
}
