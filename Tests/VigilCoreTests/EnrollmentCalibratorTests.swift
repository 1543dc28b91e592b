import Foundation
import TestSupport
@testable import VigilCore
import XCTest

/// Each device's online calibration of an enrolled sound (issue 18, `DeviceCalibration`):
/// the threshold rises above what the device hears every day, never from the windows that
/// reach it, never above the cap, never below the enrolled one; and it is the arithmetic of
/// Models/training/enroll_online_eval.py (`calibrate`), whose figures the choice rests on.
final class EnrollmentCalibratorTests: XCTestCase {
    let settings = DeviceCalibration.Settings(kind: .decayingMax(perHour: 36), margin: 0.05, cap: 0.8, hopSeconds: 0.4875)

    /// The similarities of the mirror check (the same formula in the Python lines below).
    static let sims = (0..<40).map { i in 0.55 + 0.4 * sin(0.7 * Double(i)) * Double(i % 5) / 4 }

    func thresholds(_ s: DeviceCalibration.Settings, enrolled: Double) -> [Double] {
        var c = DeviceCalibration()
        return Self.sims.map { c.observe($0, enrolled: enrolled, s) }
    }

    /// Expected values printed by:
    /// python3 -c "import numpy as np, enroll_online_eval as o; s=np.array([0.55+0.4*np.sin(0.7*i)*((i%5)/4) for i in range(40)]);
    ///   print(o.calibrate(s,0.6,'max',36.0,0.05,0.8)); print(o.calibrate(s,0.6,'quantile',(0.8,0.05),0.05,0.8))"
    /// (run in Models/training).
    func testTheSwiftCalibratorComputesWhatThePythonEvaluationMeasured() {
        let max: [Double] = [
            0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000,
            0.606725560, 0.601850560, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.610086914,
            0.605211914, 0.600336914, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.610084538, 0.605209538,
            0.600334538, 0.600000000, 0.628705265, 0.623830265, 0.618955265, 0.614080265, 0.609205265, 0.606720807, 0.601845807, 0.600000000]
        let quantile: [Double] = [
            0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000,
            0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.600000000, 0.620000000, 0.610000000, 0.600000000, 0.640000000,
            0.640000000, 0.630000000, 0.630000000, 0.670000000, 0.660000000, 0.650000000, 0.640000000, 0.630000000, 0.620000000, 0.620000000,
            0.620000000, 0.610000000, 0.650000000, 0.640000000, 0.630000000, 0.620000000, 0.610000000, 0.600000000, 0.600000000, 0.600000000]
        for (got, want) in zip(thresholds(settings, enrolled: 0.6), max) { XCTAssertEqual(got, want, accuracy: 1e-8) }
        var q = settings
        q.kind = .quantile(q: 0.8, step: 0.05)
        for (got, want) in zip(thresholds(q, enrolled: 0.6), quantile) { XCTAssertEqual(got, want, accuracy: 1e-8) }
    }

    func testEverydaySoundRaisesTheBarButTheWindowsThatReachItDoNot() {
        var c = DeviceCalibration()
        // Everyday audio creeping up from below the enrolled 0.6: the bar follows it up.
        for s in stride(from: 0.5, through: 0.72, by: 0.02) { _ = c.observe(s, enrolled: 0.6, settings) }
        XCTAssertEqual(c.threshold(enrolled: 0.6, settings), 0.77, accuracy: 0.01)
        XCTAssertLessThan(c.observe(0.74, enrolled: 0.6, settings), 0.75 + 0.05, "0.74 is everyday here: below the bar")
        // A window at the bar or above (the enrolled sound) leaves the level where it was.
        let before = c.level
        XCTAssertGreaterThan(c.observe(0.99, enrolled: 0.6, settings), 0.78)
        XCTAssertEqual(c.level!, before! - 36 * 0.4875 / 3600, accuracy: 1e-12)
        // Never above the cap, never below the enrolled threshold.
        for _ in 0..<50 { _ = c.observe(c.threshold(enrolled: 0.6, settings) - 0.001, enrolled: 0.6, settings) }
        XCTAssertEqual(c.threshold(enrolled: 0.6, settings), 0.8, accuracy: 1e-12)
        XCTAssertEqual(c.threshold(enrolled: 0.85, settings), 0.85)
        // Quiet for long enough: the level decays back and the enrolled threshold rules again.
        for _ in 0..<400 { _ = c.observe(0.1, enrolled: 0.6, settings) }
        XCTAssertEqual(c.threshold(enrolled: 0.6, settings), 0.6)
    }

    func testEachDeviceAndEnrollmentAdaptsOnItsOwnAndAGoneEnrollmentForgets() {
        let book = EnrollmentBook()
        let e = Enrollment(pipeline: "p", label: "kettle", kind: .positive, modelVersion: "1", prototypes: [[1]], threshold: 0.6, source: "t")
        book.replace([e], version: 1)
        for s in stride(from: 0.5, through: 0.7, by: 0.02) { _ = book.observe(e, pipeline: "p", device: "tv-room", similarity: s, settings) }
        XCTAssertGreaterThan(book.observe(e, pipeline: "p", device: "tv-room", similarity: 0.1, settings).threshold, 0.7)
        XCTAssertEqual(book.observe(e, pipeline: "p", device: "kitchen", similarity: 0.7, settings).threshold, 0.6, "another device starts at the enrolled threshold")
        XCTAssertEqual(book.calibrationLevels().count, 2)
        book.replace([], version: 2)
        XCTAssertEqual(book.calibrationLevels().count, 0)
    }
}

extension EnrollmentCalibratorTests {
    func testSavedCalibrationsRoundTripAndABadRowIsSkipped() {
        let k = EnrollmentBook.Key(pipeline: "audio", device: "tv \"room\"", uuid: "u1")
        let text = EnrollmentLog.encodeCalibrations([k: DeviceCalibration(level: 0.8125), EnrollmentBook.Key(pipeline: "a", device: "b", uuid: "c"): DeviceCalibration()])
        XCTAssertEqual(EnrollmentLog.decodeCalibrations(text), [k: DeviceCalibration(level: 0.8125)], "a device with no level yet is not saved")
        XCTAssertEqual(EnrollmentLog.decodeCalibrations(#"[["a","b","c",0.5],["a","b"],"x",["a","b","d","high"]]"#).count, 1)
        XCTAssertEqual(EnrollmentLog.decodeCalibrations("not json"), [:])
    }
}

extension EnrollmentCalibratorTests {
    /// An enrollment whose prototypes no longer fit the model's embedding (a model with another
    /// embedding size) has no similarity: `Enrollment.similarity` is -infinity. That window must
    /// neither count as reaching the bar nor become the device's level, and one such level must
    /// not cost every other device its saved calibration (JSON has no infinity: the whole save
    /// came out as `[]` before).
    func testAWindowWithoutASimilarityTeachesNothingAndCannotWipeTheSavedState() {
        let e = Enrollment(pipeline: "p", label: "kettle", kind: .positive, modelVersion: "1", prototypes: [[1, 0]], threshold: 0.6, source: "t")
        XCTAssertEqual(e.similarity([1, 0, 0]), -.infinity, "prototypes of another size: no similarity")
        var c = DeviceCalibration()
        XCTAssertEqual(c.observe(-.infinity, enrolled: 0.6, settings), 0.6)
        XCTAssertNil(c.level, "a window without a similarity sets no level")
        _ = c.observe(0.7, enrolled: 0.6, settings)
        XCTAssertEqual(c.run, 1)
        _ = c.observe(.nan, enrolled: 0.6, settings)
        XCTAssertEqual(c.run, 0, "NaN does not reach the bar")
        XCTAssertEqual(c.level, nil)
        _ = c.observe(0.5, enrolled: 0.6, settings)
        XCTAssertEqual(c.level!, 0.5, accuracy: 1e-12)
        _ = c.observe(-.infinity, enrolled: 0.6, settings)
        XCTAssertEqual(c.level!, 0.5 - 36 * 0.4875 / 3600, accuracy: 1e-12, "time passes; the level stays finite")

        let good = EnrollmentBook.Key(pipeline: "audio", device: "kitchen", uuid: "u1")
        let bad = EnrollmentBook.Key(pipeline: "audio", device: "hall", uuid: "u1")
        let text = EnrollmentLog.encodeCalibrations([good: DeviceCalibration(level: 0.7), bad: DeviceCalibration(level: -.infinity)])
        XCTAssertEqual(EnrollmentLog.decodeCalibrations(text), [good: DeviceCalibration(level: 0.7)])
    }
}
