// libFuzzer target: the binary payload decoders (wav, pgm, pcm_s16le, gray8, f32le) and
// the stream adapters behind them. The first byte picks the decoder; a decoded frame is
// fed through its adapter, so header values the fuzzer invents reach the resizer, the
// resampler and the windowing too. Any outcome but a frame or a FrameError is a bug.
import VigilCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoders(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let selector = data[0]
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let decoder: any PayloadDecoder
    switch selector % 5 {
    case 0: decoder = WAVDecoder()
    case 1: decoder = PGMDecoder(maxWidth: 4096, maxHeight: 4096)
    case 2: decoder = PCMS16LEDecoder(sampleRate: 8000 + Int(selector) * 97)
    case 3: decoder = Gray8Decoder(width: 1 + Int(selector % 7), height: 1 + Int(selector % 5))
    default: decoder = F32LEDecoder(expectedCount: nil)
    }
    guard let frame = try? decoder.decode(bytes, receivedAt: 1_700_000_000) else { return 0 }
    switch frame.frame {
    case .image(let w, let h, let px):
        precondition(px.count == w * h, "image size disagrees with its pixels")
        let a = ImageAdapter(shape: [1, 2, 12, 16], width: 16, height: 12, channels: 2, pairs: true)
        _ = try? a.inputs(for: frame)
        let out = try? a.inputs(for: frame)
        precondition(out?.first?.values.count == 2 * 12 * 16, "pair input of the wrong size")
    case .audio(let rate, let samples):
        precondition(samples.allSatisfy { $0 >= -1 && $0 <= 1 }, "sample out of range")  // a float WAV reaches 1
        let a = AudioWindowAdapter(shape: [1, 64], window: 64, hop: 17, rate: 8000, resample: true)
        let windows = (try? a.inputs(for: frame)) ?? []
        precondition(windows.allSatisfy { $0.values.count == 64 }, "window of the wrong size")
        _ = rate
    case .vector(let v):
        precondition(v.allSatisfy(\.isFinite), "non-finite value accepted")
    case .readings:
        break
    }
    return 0
}
