import Foundation
import VigilCore

/// `vigil-bench --wav`: what each WAV sample format costs the decoder (WAVDecoder), for 10 s of
/// 16 kHz mono audio, against 16-bit PCM in the same run (machines are noisy: read the ratios).
func wavBench(repeats: Int = 300) throws {
    let n = 160_000
    let samples = (0..<n).map { Float(0.4 * sin(Double($0) * 0.07)) }
    func le(_ v: UInt64, _ bytes: Int) -> [UInt8] { (0..<bytes).map { UInt8((v >> (8 * UInt64($0))) & 0xff) } }
    func wav(tag: Int, bits: Int, _ data: [UInt8]) -> [UInt8] {
        let fmt = le(UInt64(tag), 2) + le(1, 2) + le(16000, 4) + le(UInt64(16000 * bits / 8), 4) + le(UInt64(bits / 8), 2) + le(UInt64(bits), 2)
        let body = Array("WAVEfmt ".utf8) + le(16, 4) + fmt + Array("data".utf8) + le(UInt64(data.count), 4) + data
        return Array("RIFF".utf8) + le(UInt64(body.count), 4) + body
    }
    let formats: [(String, [UInt8])] = [
        ("16-bit PCM", wav(tag: 1, bits: 16, samples.flatMap { le(UInt64(UInt16(bitPattern: Int16($0 * 32767))), 2) })),
        ("8-bit PCM", wav(tag: 1, bits: 8, samples.map { UInt8(128 + Int($0 * 127)) })),
        ("24-bit PCM", wav(tag: 1, bits: 24, samples.flatMap { le(UInt64(UInt32(bitPattern: Int32($0 * 8_388_607))), 3) })),
        ("32-bit PCM", wav(tag: 1, bits: 32, samples.flatMap { le(UInt64(UInt32(bitPattern: Int32(Double($0) * 2_147_483_000))), 4) })),
        ("32-bit float", wav(tag: 3, bits: 32, samples.flatMap { le(UInt64($0.bitPattern), 4) })),
        ("64-bit float", wav(tag: 3, bits: 64, samples.flatMap { le(Double($0).bitPattern, 8) })),
    ]
    let d = WAVDecoder()
    var base = 0.0
    for (name, bytes) in formats {
        _ = try d.decode(bytes, receivedAt: 0)   // warm-up
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<repeats { _ = try d.decode(bytes, receivedAt: 0) }
        let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6 / Double(repeats)
        if base == 0 { base = ms }
        print("wav decode, " + (name + ":").padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: "%.3f ms per 10 s of 16 kHz mono (%7d bytes), %.1fx 16-bit", ms, bytes.count, ms / base))
    }
}
