import Foundation
import TestSupport
@testable import VigilCore
import XCTest

final class ImageAdapterTests: XCTestCase {
    func resize(_ px: [UInt8], _ w: Int, _ h: Int, to dw: Int, _ dh: Int) -> [Float] {
        var out = [Float](repeating: -1, count: dw * dh)
        AreaResizer(from: (w, h), to: (dw, dh)).resize(px, into: &out, at: 0)
        return out
    }

    func testAreaAveragingWholeAndFractionalRatios() {
        // 4x2 -> 2x1: each output is the mean of a 2x2 block.
        XCTAssertEqual(resize([0, 50, 100, 150, 10, 60, 110, 160], 4, 2, to: 2, 1).map { $0 * 255 },
                       [30, 130].map(Float.init), accuracy: 1e-3)
        // 3x1 -> 2x1: output 0 covers pixel 0 and half of pixel 1.
        let f = resize([30, 90, 150], 3, 1, to: 2, 1).map { $0 * 255 }
        XCTAssertEqual(f[0], (30 + 0.5 * 90) / 1.5, accuracy: 1e-3)
        XCTAssertEqual(f[1], (0.5 * 90 + 150) / 1.5, accuracy: 1e-3)
        // Upscaling 2x1 -> 4x1 repeats pixels.
        XCTAssertEqual(resize([0, 255], 2, 1, to: 4, 1), [0, 0, 1, 1], accuracy: 1e-6)
    }

    func testAreaAveragingKeepsTheMeanAtAnySize() {
        for (w, h, dw, dh) in [(640, 480, 160, 120), (50, 37, 16, 12), (17, 13, 16, 12), (7, 5, 16, 12)] {
            let px = (0..<(w * h)).map { UInt8(($0 * 7919) % 256) }
            let mean = px.reduce(0.0) { $0 + Double($1) } / Double(px.count) / 255
            let out = resize(px, w, h, to: dw, dh)
            XCTAssertEqual(out.reduce(0.0) { $0 + Double($1) } / Double(out.count), mean, accuracy: 1e-4, "\(w)x\(h) -> \(dw)x\(dh)")
            XCTAssertTrue(out.allSatisfy { $0 >= 0 && $0 <= 1 })
        }
    }

    func testPairsKeepThePreviousFrameAndTheFirstFrameWaits() throws {
        let a = ImageAdapter(shape: [1, 2, 1, 2], width: 2, height: 1, channels: 2, pairs: true)
        XCTAssertEqual(try a.inputs(for: TimedFrame(frame: .image(width: 4, height: 2, pixels: [UInt8](repeating: 0, count: 8)), ts: 1)).count, 0)
        let second = try a.inputs(for: TimedFrame(frame: .image(width: 2, height: 1, pixels: [255, 51]), ts: 2))
        XCTAssertEqual(second.count, 1)
        XCTAssertEqual(second[0].values, [0, 0, 1, 0.2], accuracy: 1e-6)
        XCTAssertEqual(second[0].shape, [1, 2, 1, 2])
        XCTAssertEqual(second[0].ts, 2)
        // Three channels: grey repeated as RGB.
        let rgb = ImageAdapter(shape: [1, 3, 1, 1], width: 1, height: 1, channels: 3, pairs: false)
        XCTAssertEqual(try rgb.inputs(for: TimedFrame(frame: .image(width: 1, height: 1, pixels: [255]), ts: 0))[0].values, [1, 1, 1])
        XCTAssertThrowsError(try a.inputs(for: TimedFrame(frame: .vector([1]), ts: 0)))
    }
}

final class AudioAdapterTests: XCTestCase {
    func chunk(_ values: [Float], rate: Int = 10, ts: Double) -> TimedFrame {
        TimedFrame(frame: .audio(sampleRate: rate, samples: values), ts: ts)
    }

    func testUnevenChunksBecomeOverlappingWindowsStampedAtTheirEnd() throws {
        let a = AudioWindowAdapter(shape: [1, 4], window: 4, hop: 2, rate: 10, resample: false)
        var all: [ModelInput] = []
        var next: Float = 0
        var t = 100.0
        for n in [3, 1, 5, 2, 0, 1] {
            let values = (0..<n).map { _ in defer { next += 1 }; return next }
            t += Double(n) / 10
            all += try a.inputs(for: chunk(values, ts: t))
        }
        // 12 samples (0...11), window 4, hop 2: starts 0, 2, 4, 6, 8.
        XCTAssertEqual(all.map(\.values), [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9], [8, 9, 10, 11]])
        // Sample k arrived at 100 + (k + 1) / 10; a window is stamped with its last sample's time.
        XCTAssertEqual(all.map(\.ts), [3, 5, 7, 9, 11].map { 100 + Double($0 + 1) / 10 }, accuracy: 1e-9)
        XCTAssertTrue(all.allSatisfy { $0.shape == [1, 4] })
    }

    func testHopOfAWholeWindowAndAGapStartsAFreshBuffer() throws {
        let a = AudioWindowAdapter(shape: [1, 4], window: 4, hop: 4, rate: 10, resample: false)
        XCTAssertEqual(try a.inputs(for: chunk([0, 1, 2, 3, 4, 5], ts: 1.0)).map(\.values), [[0, 1, 2, 3]])
        // Ten seconds later: samples 4, 5 must not join the new ones.
        XCTAssertEqual(try a.inputs(for: chunk([6, 7, 8], ts: 11.0)).count, 0)
        XCTAssertEqual(try a.inputs(for: chunk([9], ts: 11.1)).map(\.values), [[6, 7, 8, 9]])
    }

    func testAMismatchedRateIsRejectedOrResampledSeamlessly() throws {
        let strict = AudioWindowAdapter(shape: [1, 400], window: 400, hop: 200, rate: 8000, resample: false)
        XCTAssertThrowsError(try strict.inputs(for: chunk([0, 1], rate: 16000, ts: 1))) { e in
            XCTAssertEqual((e as! FrameError).reason, .unsupported)
            XCTAssertTrue("\(e)".contains("16000 Hz but the model takes 8000 Hz"), "\(e)")
        }
        // 16 kHz 200 Hz sine -> 8 kHz: same in one chunk as in uneven chunks, amplitude kept.
        let x = (0..<16000).map { Float(sin(2 * Double.pi * 200 * Double($0) / 16000)) * 0.5 }
        var one = Resampler(from: 16000, to: 8000)
        let whole = one.process(x)
        var chunked = Resampler(from: 16000, to: 8000)
        var pieces: [Float] = []
        var i = 0
        for n in [1, 999, 3, 4097, 5000, 5900] { pieces += chunked.process(Array(x[i..<i + n])); i += n }
        XCTAssertEqual(whole.count, pieces.count)
        XCTAssertEqual(whole, pieces, accuracy: 1e-6)
        XCTAssertEqual(Double(whole.count), 8000, accuracy: 2)
        XCTAssertEqual(Double(whole.map(abs).max()!), 0.5, accuracy: 0.02)
        // Upsampling 8 kHz -> 16 kHz doubles the count.
        var up = Resampler(from: 8000, to: 16000)
        XCTAssertEqual(Double(up.process([Float](repeating: 0.1, count: 800)).count), 1600, accuracy: 2)
        // Through the adapter: 16000 samples at 16 kHz fill 8000 samples' worth of 400-sample windows.
        let a = AudioWindowAdapter(shape: [1, 400], window: 400, hop: 400, rate: 8000, resample: true)
        XCTAssertEqual(try a.inputs(for: chunk(x, rate: 16000, ts: 1)).count, 20)  // 8000 samples: 20 windows
    }
}

/// Issue 15, item 3: a long chunk's windows come out in runs of at most `maxWindows`, the
/// same windows with the same times as all at once.
final class AudioRunTests: XCTestCase {
    func testALongChunkIsWindowedInBoundedRunsWithTheSameWindows() throws {
        let x = (0..<20_000).map { Float(($0 * 7) % 100) / 100 - 0.5 }
        let frame = TimedFrame(frame: .audio(sampleRate: 1000, samples: x), ts: 100)
        let whole = AudioWindowAdapter(shape: [1, 400], window: 400, hop: 100, rate: 8000, resample: true, maxWindows: 1_000_000)
        let all = try whole.inputs(for: frame)
        XCTAssertFalse(whole.hasMoreInputs)
        let runs = AudioWindowAdapter(shape: [1, 400], window: 400, hop: 100, rate: 8000, resample: true, maxWindows: 64)
        var got = try runs.inputs(for: frame)
        var largest = got.count
        while runs.hasMoreInputs {
            let more = runs.moreInputs()
            largest = max(largest, more.count)
            got += more
        }
        XCTAssertEqual(largest, 64)
        XCTAssertEqual(got.count, all.count)
        XCTAssertGreaterThan(all.count, 1500)   // 160,000 samples after resampling, a window every 100
        XCTAssertEqual(got.map(\.values), all.map(\.values))
        for (g, a) in zip(got, all) { XCTAssertEqual(g.ts, a.ts, accuracy: 1e-9) }
        // The last window ends at the chunk's arrival, less what is left over for the next
        // chunk (under one hop: 100 / 8000 s) and the resampler's last input sample (1 / 1000 s).
        XCTAssertEqual(all.last!.ts, 100, accuracy: 0.0125 + 0.001)
    }
}

final class SensorWindowTests: XCTestCase {
    func reading(_ r: [Float?], _ ts: Double) -> TimedFrame { TimedFrame(frame: .readings(r), ts: ts) }
    /// A reading with the sensor's own `ts`, arriving at `arrival`.
    func stamped(_ r: [Float?], _ ts: Double, arrival: Double = 1000) -> TimedFrame { TimedFrame(frame: .readings(r), ts: ts, receivedAt: arrival) }

    func testMissingFieldsCarryForwardAndUnseenFieldsWait() throws {
        let a = SensorWindowAdapter(shape: [1, 3, 2], window: 3, fields: 2)
        XCTAssertEqual(try a.inputs(for: reading([1, nil], 1)).count, 0, "humidity never seen: nothing invented")
        XCTAssertEqual(a.unseenFields, [1])
        XCTAssertEqual(try a.inputs(for: reading([2, 10], 2)).count, 0)
        XCTAssertEqual(try a.inputs(for: reading([nil, 11], 3)).count, 0)
        let out = try a.inputs(for: reading([4, nil], 4))
        // Rows oldest first: (2,10), (2,11) carried temperature, (4,11) carried humidity.
        XCTAssertEqual(out.map(\.values), [[2, 10, 2, 11, 4, 11]])
        XCTAssertEqual(out[0].shape, [1, 3, 2])
        XCTAssertEqual(out[0].ts, 4)
        XCTAssertEqual(try a.inputs(for: reading([5, 12], 5)).map(\.values), [[2, 11, 4, 11, 5, 12]], "slides by one")
    }

    func testOutOfOrderReadingsAreDroppedAndCounted() throws {
        let a = SensorWindowAdapter(shape: [1, 2, 1], window: 2, fields: 1)
        _ = try a.inputs(for: stamped([1], 10))
        XCTAssertThrowsError(try a.inputs(for: stamped([99], 9))) { XCTAssertEqual(($0 as! FrameError).reason, .outOfOrder) }
        XCTAssertEqual(try a.inputs(for: stamped([2], 10)).map(\.values), [[1, 2]], "same ts is accepted; the old one left no trace")
    }

    /// Issue 15, item 1: the gateway's clock stepped back (NTP). Readings stamped with their
    /// arrival are in order by arrival, so they keep coming; a mark left further ahead of the
    /// clock than max_clock_skew_s is forgotten, so the sensor's own times are taken again.
    func testAClockSteppedBackDoesNotBlindTheDevice() throws {
        let a = SensorWindowAdapter(shape: [1, 1], window: 1, fields: 1, maxClockSkew: 60)
        XCTAssertEqual(try a.inputs(for: reading([1], 5000)).count, 1)
        XCTAssertEqual(try a.inputs(for: reading([2], 1400)).count, 1, "arrival times went back an hour: still taken")
        let b = SensorWindowAdapter(shape: [1, 1], window: 1, fields: 1, maxClockSkew: 60)
        XCTAssertEqual(try b.inputs(for: stamped([1], 5000, arrival: 5000)).count, 1)
        // The gateway (and the sensor, both on NTP) step back an hour.
        XCTAssertEqual(try b.inputs(for: stamped([2], 1401, arrival: 1400)).count, 1, "a mark an hour ahead of the clock is forgotten")
        XCTAssertThrowsError(try b.inputs(for: stamped([3], 1300, arrival: 1410))) { XCTAssertEqual(($0 as! FrameError).reason, .outOfOrder) }
    }
}
