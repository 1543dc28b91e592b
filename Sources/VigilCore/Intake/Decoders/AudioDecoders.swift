import Foundation

/// Sample rates a decoder accepts; anything else is a corrupt header, not a real stream.
let audioRates = 1000...384_000

/// Little-endian int16 samples to floats in [-1, 1).
func s16leSamples(_ bytes: ArraySlice<UInt8>) -> [Float] {
    let n = bytes.count / 2
    var out = [Float](repeating: 0, count: n)
    var i = bytes.startIndex
    for k in 0..<n {
        let v = Int16(bitPattern: UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8)
        out[k] = Float(v) / 32768
        i += 2
    }
    return out
}

/// `pcm_s16le`: raw little-endian 16-bit mono samples at the pipeline's `sample_rate`.
public struct PCMS16LEDecoder: PayloadDecoder {
    public let sampleRate: Int
    public init(sampleRate: Int) { self.sampleRate = sampleRate }

    public func decode(_ payload: [UInt8], receivedAt: Double) throws(FrameError) -> TimedFrame {
        guard !payload.isEmpty else { throw FrameError(.wrongSize, "pcm_s16le payload is empty") }
        guard payload.count % 2 == 0 else {
            throw FrameError(.wrongSize, "pcm_s16le payload of \(payload.count) bytes is not a whole number of 16-bit samples")
        }
        return TimedFrame(frame: .audio(sampleRate: sampleRate, samples: s16leSamples(payload[...])), ts: receivedAt)
    }
}

/// How a WAV stores its samples. What microphones, `arecord`, Audacity and phone apps write:
/// 8-bit unsigned, 16/24/32-bit signed PCM, and 32/64-bit IEEE float (format tag 1 or 3, or
/// WAVE_FORMAT_EXTENSIBLE naming one of them).
enum WAVSamples: Equatable {
    case unsigned8, signed16, signed24, signed32, float32, float64

    init?(formatTag: UInt16, bits: UInt16) {
        switch (formatTag, bits) {
        case (1, 8): self = .unsigned8
        case (1, 16): self = .signed16
        case (1, 24): self = .signed24
        case (1, 32): self = .signed32
        case (3, 32): self = .float32
        case (3, 64): self = .float64
        default: return nil
        }
    }

    var bytes: Int {
        switch self {
        case .unsigned8: 1
        case .signed16: 2
        case .signed24: 3
        case .signed32, .float32: 4
        case .float64: 8
        }
    }

    /// The samples as floats in [-1, 1]. A float sample over full scale is clipped there (as a
    /// conversion to 16-bit would clip it); a NaN or infinite one is refused, since it would
    /// turn every feature of its window into NaN.
    func decode(_ b: ArraySlice<UInt8>) throws(FrameError) -> [Float] {
        if self == .signed16 { return s16leSamples(b) }
        let n = b.count / bytes
        var out = [Float](repeating: 0, count: n)
        var i = b.startIndex
        for k in 0..<n {
            switch self {
            case .unsigned8:
                out[k] = (Float(b[i]) - 128) / 128
            case .signed16:
                break    // read by s16leSamples above, the common case, without this switch
            case .signed24:
                // Into the top three bytes of an Int32, so the sign comes along.
                let v = Int32(bitPattern: UInt32(b[i]) << 8 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 24)
                out[k] = Float(v >> 8) / 8_388_608
            case .signed32:
                let v = Int32(bitPattern: UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
                out[k] = Float(Double(v) / 2_147_483_648)
            case .float32:
                let v = Float(bitPattern: UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
                guard v.isFinite else { throw FrameError(.nonFinite, "wav holds a \(v.isNaN ? "NaN" : "infinite") sample (sample \(k))") }
                out[k] = min(1, max(-1, v))
            case .float64:
                var bits: UInt64 = 0
                for j in 0..<8 { bits |= UInt64(b[i + j]) << (8 * UInt64(j)) }
                let v = Double(bitPattern: bits)
                guard v.isFinite else { throw FrameError(.nonFinite, "wav holds a \(v.isNaN ? "NaN" : "infinite") sample (sample \(k))") }
                out[k] = Float(min(1, max(-1, v)))
            }
            i += bytes
        }
        return out
    }
}

/// `wav`: RIFF/WAVE; the rate comes from the header, the sample format too (`WAVSamples`:
/// 8/16/24/32-bit PCM or 32/64-bit float; sensors should send 16-bit). Mono is the format
/// sensors should send; more channels are averaged to mono (cheap, and what a
/// stereo USB microphone would otherwise break on). Chunks other
/// than `fmt ` and `data` (LIST, fact, ...) are skipped. A `data` size of 0xFFFFFFFF (what
/// streaming writers put before they know the length) means "to the end of the payload".
public struct WAVDecoder: PayloadDecoder {
    public init() {}

    public func decode(_ p: [UInt8], receivedAt: Double) throws(FrameError) -> TimedFrame {
        func u32(_ i: Int) -> UInt32 { UInt32(p[i]) | UInt32(p[i + 1]) << 8 | UInt32(p[i + 2]) << 16 | UInt32(p[i + 3]) << 24 }
        func u16(_ i: Int) -> UInt16 { UInt16(p[i]) | UInt16(p[i + 1]) << 8 }
        func tag(_ i: Int) -> String { String(decoding: p[i..<i + 4], as: UTF8.self) }
        guard p.count >= 12, tag(0) == "RIFF", tag(8) == "WAVE" else {
            throw FrameError(.malformed, "wav payload does not start with a RIFF/WAVE header")
        }
        var rate: Int?
        var channels = 1
        var samples = WAVSamples.signed16
        var offset = 12
        while offset + 8 <= p.count {
            let id = tag(offset)
            let declared = u32(offset + 4)
            let body = offset + 8
            let remaining = p.count - body
            if id == "fmt " {
                guard declared >= 16, Int(declared) <= remaining else {
                    throw FrameError(.malformed, "wav fmt chunk declares \(declared) bytes (needs 16, payload has \(remaining))")
                }
                var format = u16(body)
                let declaredChannels = Int(u16(body + 2))
                let sampleRate = Int(u32(body + 4))
                let bits = u16(body + 14)
                if format == 0xFFFE, declared >= 26 { format = u16(body + 24) }  // WAVE_FORMAT_EXTENSIBLE: the subformat's first bytes
                guard let kind = WAVSamples(formatTag: format, bits: bits) else {
                    throw FrameError(.unsupported, "wav format tag \(format) with \(bits)-bit samples is not read (8/16/24/32-bit PCM and 32/64-bit float are)")
                }
                guard (1...8).contains(declaredChannels) else { throw FrameError(.malformed, "wav declares \(declaredChannels) channels") }
                channels = declaredChannels
                samples = kind
                guard audioRates.contains(sampleRate) else {
                    throw FrameError(.malformed, "wav sample rate \(sampleRate) Hz is outside \(audioRates.lowerBound)...\(audioRates.upperBound)")
                }
                rate = sampleRate
            } else if id == "data" {
                guard let rate else { throw FrameError(.malformed, "wav data chunk comes before the fmt chunk") }
                let frameBytes = samples.bytes * channels
                let size: Int
                if declared == 0xFFFF_FFFF {
                    size = remaining - remaining % frameBytes
                } else {
                    guard Int(declared) <= remaining else {
                        throw FrameError(.wrongSize, "wav data chunk declares \(declared) bytes but the payload holds \(remaining) (truncated?)")
                    }
                    size = Int(declared)
                }
                guard size % frameBytes == 0 else {
                    throw FrameError(.wrongSize, "wav data chunk of \(size) bytes is not a whole number of \(channels)-channel \(samples.bytes * 8)-bit frames")
                }
                guard size > 0 else { throw FrameError(.wrongSize, "wav data chunk is empty") }
                var values = try samples.decode(p[body..<body + size])
                if channels > 1 { values = downmix(values, channels: channels) }
                return TimedFrame(frame: .audio(sampleRate: rate, samples: values), ts: receivedAt)
            }
            // Chunks are padded to an even size; Int arithmetic cannot overflow from a UInt32.
            let next = body + Int(declared) + Int(declared & 1)
            guard next <= p.count else { break }
            offset = next
        }
        throw FrameError(.malformed, rate == nil ? "wav payload has no fmt chunk" : "wav payload has no data chunk")
    }
}

/// Interleaved frames of `channels` samples to their mean.
func downmix(_ x: [Float], channels: Int) -> [Float] {
    let n = x.count / channels
    var out = [Float](repeating: 0, count: n)
    for i in 0..<n {
        var acc: Float = 0
        for c in 0..<channels { acc += x[i * channels + c] }
        out[i] = acc / Float(channels)
    }
    return out
}
