import Foundation
import SQLite
import TestSupport
@testable import VigilCore
@testable import VigilTools
import XCTest

/// The per-device anomaly baseline with the shipped model (Models/anomaly.onnx v2): the
/// adapter, the real ONNX model, the adapter's threshold and the real alert rule, as vigild
/// chains them (Engine.process), fed with generated sensor data (fixed seeds).
final class BaselineTests: XCTestCase {
    /// A device: adapter, pipeline and the alert rule that judges its detections.
    final class Device {
        let pipeline: Pipeline
        let adapter: any StreamAdapter
        var rule: AlertRule
        var raises: [Double] = []
        var last: Detection?
        init(_ p: Pipeline, book: BaselineBook? = nil) {
            pipeline = p
            adapter = p.makeAdapter(device: "dev")
            rule = AlertRule(settings: (p.settings.alert ?? AlertSettings()).applying(modelThreshold: p.model.threshold))
        }
        func send(_ ts: Double, _ values: [Float]) throws {
            for input in try adapter.inputs(for: TimedFrame(frame: .readings(values), ts: ts)) {
                var d = try pipeline.detect(input, device: "dev")
                adapter.observe(&d)
                if rule.update(score: d.score, ts: d.ts, threshold: d.threshold) == .raise { raises.append(ts) }
                last = d
            }
        }
        var snapshot: BaselineSnapshot? { (adapter as? SensorWindowAdapter)?.baselineSnapshot }
    }

    static func pipeline(fields: [String], baseline: String = #"{ "warmup_s": 3600 }"#, alert: String = "{}",
                         book: BaselineBook? = nil) throws -> Pipeline {
        let path = Paths.repo.appendingPathComponent("Models/anomaly.onnx").path
        let fieldList = fields.map { "\"\($0)\"" }.joined(separator: ", ")
        let c = try Config.parse(Array("""
            { "node": "n", "models": { "m": { "path": "\(path)" } },
              "pipelines": [ { "name": "env", "topic": "s/{device}/env", "format": "json", "model": "m",
                               "fields": [\(fieldList)], "baseline": \(baseline), "alert": \(alert) } ] }
            """.utf8))
        return try Pipeline.build(c.pipelines[0], model: Model(name: "anomaly", path: path), book: book)
    }

    /// Deterministic normal noise (Box-Muller over a 64-bit LCG).
    struct Noise {
        var x: UInt64
        init(seed: UInt64) { x = seed &* 0x9E3779B97F4A7C15 | 1 }
        mutating func uniform() -> Double {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            return (Double(x >> 11) + 0.5) / Double(1 << 53)
        }
        mutating func normal() -> Double { sqrt(-2 * log(uniform())) * cos(2 * .pi * uniform()) }
    }

    /// The issue's case: a pressure sensor with 9 distinct values that steps one quantum now
    /// and then, next to continuous sensors. v1 scored every step as extreme (its window's
    /// spread was 0) and the max over fields let it drive the device; here, after the warm-up,
    /// six hours at 1 Hz raise nothing, and a real jump of the temperature still alerts.
    func testACoarseSensorSteppingOneQuantumRaisesNothingAndARealJumpStillAlerts() throws {
        let dev = Device(try Self.pipeline(fields: ["temperature", "pressure", "humidity"]))
        var noise = Noise(seed: 17)
        var pressure = 1016.0
        var distinct = Set<Double>()
        let n = 7 * 3600
        for i in 0..<n {
            if noise.uniform() < 0.02 { pressure = min(1020, max(1012, pressure + (noise.uniform() < 0.5 ? -1 : 1))) }
            distinct.insert(pressure)
            let temp = 21 + 0.5 * sin(Double(i) / 3000) + 0.05 * noise.normal()
            let hum = (45 + noise.normal() * 0.6).rounded()
            try dev.send(Double(i), [Float(temp), Float(pressure), Float(hum)])
        }
        XCTAssertLessThanOrEqual(distinct.count, 9)
        XCTAssertGreaterThan(distinct.count, 3, "the pressure moved")
        XCTAssertEqual(dev.raises, [], "no alert from one-quantum steps (or anything else) in 7 h")
        let snap = try XCTUnwrap(dev.snapshot)
        XCTAssertTrue(snap.warm)
        XCTAssertEqual(snap.baseline.fields[1].step, 1, accuracy: 1e-9, "the pressure's quantum is learned")
        XCTAssertEqual(snap.baseline.fields[2].step, 1, accuracy: 1e-9, "and the humidity's")
        XCTAssertLessThan(try XCTUnwrap(dev.last?.threshold), 1)
        // A real fault: the temperature jumps 2 degrees (40 noise sds) and stays.
        for i in n..<(n + 10) { try dev.send(Double(i), [23.5, Float(pressure), 45]) }
        XCTAssertEqual(dev.raises.count, 1, "the jump raises one alert")
        XCTAssertLessThanOrEqual(try XCTUnwrap(dev.raises.first) - Double(n), 3, "within 3 readings")
    }

    /// A sensor that stops changing is said to be stuck (label and state), not anomalous.
    func testAStuckSensorIsFlaggedNotAlerted() throws {
        let dev = Device(try Self.pipeline(fields: ["temperature", "humidity"], baseline: #"{ "warmup_s": 600 }"#))
        var noise = Noise(seed: 5)
        for i in 0..<2000 {
            try dev.send(Double(i) * 10, [Float(20 + 0.2 * noise.normal()), Float(50 + noise.normal())])
        }
        XCTAssertEqual(dev.last?.label, "normal")
        for i in 2000..<2200 { try dev.send(Double(i) * 10, [Float(20 + 0.2 * noise.normal()), 49.5]) }
        XCTAssertEqual(dev.last?.label, AnomalyState.stuckLabel)
        XCTAssertEqual(dev.snapshot?.stuckFields, ["humidity"])
        XCTAssertEqual(dev.raises, [], "stuck is not an anomaly")
        try dev.send(22000, [20, 55])   // it moves again
        XCTAssertEqual(dev.snapshot?.stuckFields, [])
    }

    /// No alert while the device warms up, however large the jump; the same jump after it raises.
    func testNoAlertDuringTheWarmUpAndTheSameSpikeAlertsAfterIt() throws {
        let dev = Device(try Self.pipeline(fields: ["t"], baseline: #"{ "warmup_s": 1800 }"#))
        var noise = Noise(seed: 9)
        func calm(_ range: Range<Int>) throws { for i in range { try dev.send(Double(i), [Float(10 + 0.1 * noise.normal())]) } }
        try calm(0..<600)
        for i in 600..<605 { try dev.send(Double(i), [30]) }
        XCTAssertEqual(dev.raises, [], "warming up")
        XCTAssertEqual(dev.last?.threshold, .infinity)
        XCTAssertFalse(try XCTUnwrap(dev.snapshot).warm)
        try calm(605..<4000)
        XCTAssertEqual(dev.raises, [])
        for i in 4000..<4005 { try dev.send(Double(i), [30]) }
        XCTAssertEqual(dev.raises.count, 1)
        XCTAssertLessThanOrEqual(try XCTUnwrap(dev.raises.first), 4002, "within 3 readings")
    }

    /// `min_scale` floors a field's scale: a change smaller than it is not surprising even on
    /// a sensor that has been perfectly steady.
    func testMinScaleFloorsTheScaleOfAField() throws {
        func run(_ baseline: String) throws -> Double {
            let dev = Device(try Self.pipeline(fields: ["level"], baseline: baseline))
            for i in 0..<400 { try dev.send(Double(i) * 60, [Float(100 + (i % 2 == 0 ? 0.01 : -0.01))]) }
            for i in 400..<403 { try dev.send(Double(i) * 60, [100.5]) }   // the model averages the newest 3
            return try XCTUnwrap(dev.last?.score)
        }
        let bare = try run(#"{ "warmup_s": 0 }"#)
        let floored = try run(#"{ "warmup_s": 0, "min_scale": { "level": 5 } }"#)
        XCTAssertGreaterThan(bare, 0.5, "0.5 is 25 steps of 0.02")
        XCTAssertEqual(floored, 0, accuracy: 1e-6, "within the stated resolution of 5")
    }

    /// Swift and Models/training/baseline.py (which the evaluation uses) compute the same
    /// state and threshold: `python3 Models/training/baseline.py` prints these numbers.
    func testTheSwiftBaselineMatchesThePythonReference() {
        var b = DeviceBaseline(fields: 2)
        var budget = SurpriseBudget()
        for i in 0..<200 {
            let x = [Float(20 + 0.1 * sin(Double(i) / 10)), Float((1013 + 2 * sin(Double(i) / 7)).rounded())]
            let d = b.update(ts: Double(i) * 5, values: x, horizon: 3600, window: 8)
            budget.observe(score: 0.1 + 0.3 * Double((i * 7919) % 101) / 101, decay: d)
        }
        let rows = b.rows(BaselineRow.allCases, minScale: [0, 0], window: 8)
        let expected: [Float] = [20.001812, 1013.150635, 0.061598, 1.335768, 0.02661, 0.755179, 4e-05, 1.0, 1.0, 1.0]
        for (r, e) in zip(rows, expected) { XCTAssertEqual(r, e, accuracy: max(1e-5, abs(e) * 1e-5)) }
        XCTAssertEqual(b.interval, 5, accuracy: 1e-9)
        XCTAssertEqual(b.weight, 174.746403, accuracy: 1e-5)
        let t = SurpriseBudget.score(surprise: budget.thresholdSurprise(perDay: 1, interval: b.interval))
        XCTAssertEqual(t, 0.443238, accuracy: 1e-5)
    }

    /// A snapshot survives JSON (a field that never changed has an infinite step), the
    /// store's table, and a reset asked for through it.
    func testSnapshotsRoundTripThroughTheStoreAndAResetReachesTheBook() throws {
        let dir = TempDir("baseline-store")
        defer { dir.remove() }
        var s = BaselineSnapshot(baseline: DeviceBaseline(fields: 2), budget: SurpriseBudget(), threshold: 0.6,
                                 warm: true, warmupProgress: 1, stuckFields: ["b"])
        s.baseline.update(ts: 1, values: [1, 2], horizon: 3600, window: 8)
        s.baseline.update(ts: 2, values: [1, 3], horizon: 3600, window: 8)
        XCTAssertEqual(s.baseline.fields[0].step, .infinity)
        XCTAssertEqual(BaselineSnapshot.decode(s.json), s)

        var settings = StorageSettings()
        settings.path = dir.file("vigil.db")
        let store = try Store(settings: settings)
        let key = BaselineBook.Key(pipeline: "env", device: "d1")
        store.saveBaselines([(key, s)])
        store.flush()
        XCTAssertEqual(store.loadBaselines().first?.snapshot, s)

        let book = BaselineBook()
        book.load(store.loadBaselines())
        XCTAssertEqual(book.take(key), s)
        let marked = try BaselineReset.request(path: settings.path, pipelines: [], devices: ["d*"])
        XCTAssertEqual(marked.map(\.device), ["d1"])
        store.takeBaselineResets(into: book)
        store.flush()
        XCTAssertNil(book.take(key), "the next adapter of d1 starts afresh")
        XCTAssertTrue(try store.withDatabase { try $0.query("SELECT reset_at FROM baselines")[0][0].isNull }, "request taken")
        // Asked while vigild is down: the row goes at the next start.
        _ = try BaselineReset.request(path: settings.path, pipelines: ["env"], devices: [])
        XCTAssertEqual(store.loadBaselines().count, 0)
        store.close()
    }

    /// The adapter takes a device's saved state when it is created, and publishes its own.
    func testAnAdapterStartsFromTheBooksSnapshot() throws {
        let book = BaselineBook()
        let p = try Self.pipeline(fields: ["t"], baseline: #"{ "warmup_s": 0 }"#, book: book)
        let a = Device(p)
        for i in 0..<100 { try a.send(Double(i), [Float(i % 3)]) }
        let saved = book.all().first { $0.key.device == "dev" }?.snapshot
        XCTAssertEqual(saved?.baseline.readings, 1, "published on the first reading (then every 5 s)")
        book.load([(BaselineBook.Key(pipeline: "env", device: "dev"), try XCTUnwrap(a.snapshot))])
        let b = Device(p)
        XCTAssertEqual(b.snapshot?.baseline.readings, 100)
    }

    /// With a budget, the device's threshold replaces min_score; a min_score written in the
    /// config stays a floor under it (configs written for v1 keep a bar they chose).
    func alert(_ json: String) throws -> AlertSettings {
        let c = try Config.parse(Array("""
            { "node": "n", "models": { "tiny": { "path": "/x.onnx" } },
              "pipelines": [ { "name": "p", "topic": "s/{device}/x", "format": "f32le", "model": "tiny", "alert": \(json) } ] }
            """.utf8))
        return c.pipelines[0].alert!
    }

    func testTheRuleUsesTheDevicesThresholdWithMinScoreAsAFloor() throws {
        var plain = AlertRule(settings: try alert(#"{}"#))
        XCTAssertNil(plain.update(score: 0.5, ts: 0, threshold: 0.6))
        XCTAssertEqual(plain.update(score: 0.61, ts: 1, threshold: 0.6), .raise)
        XCTAssertEqual(plain.update(score: 0.59, ts: 2, threshold: 0.6), .clear)
        var floored = AlertRule(settings: try alert(#"{"min_score": 0.7}"#))
        XCTAssertNil(floored.update(score: 0.65, ts: 0, threshold: 0.6))
        XCTAssertEqual(floored.update(score: 0.71, ts: 1, threshold: 0.6), .raise)
        var warming = AlertRule(settings: AlertSettings())
        XCTAssertNil(warming.update(score: 1, ts: 0, threshold: .infinity))
    }

    /// Config errors name the key.
    func testBaselineConfigErrorsNameTheKey() {
        XCTAssertThrowsError(try Self.pipeline(fields: ["t"], baseline: #"{ "min_scale": { "x": 1 } }"#)) {
            XCTAssertTrue("\($0)".contains("min_scale.x"), "\($0)")
        }
        XCTAssertThrowsError(try Self.pipeline(fields: ["t"], baseline: #"{ "horizon": 1 }"#)) {
            XCTAssertTrue("\($0)".contains("horizon"), "\($0)")
        }
        XCTAssertThrowsError(try Self.pipeline(fields: ["t"], alert: #"{ "max_false_alarms_per_day": 0 }"#)) {
            XCTAssertTrue("\($0)".contains("max_false_alarms_per_day"), "\($0)")
        }
    }

    /// A device freed by the TTL hands its latest state to the book first, so it comes back
    /// where it was; /metrics counts devices by status and their stuck fields.
    func testTheTTLSweepRetiresTheAdapterIntoTheBookAndMetricsCountIt() throws {
        let book = BaselineBook()
        let p = try Self.pipeline(fields: ["t", "h"], baseline: #"{ "warmup_s": 0, "warmup_readings": 10 }"#, book: book)
        var table = StreamTable(ttl: 10)
        let a = table.adapter(pipeline: 0, device: "dev", now: 0) { p.makeAdapter(device: "dev") }
        for i in 0..<300 {
            _ = try a.inputs(for: TimedFrame(frame: .readings([Float(i % 5), i < 100 ? Float(i % 3) : 7]), ts: Double(i)))
        }
        XCTAssertEqual(book.take(BaselineBook.Key(pipeline: "env", device: "dev"))?.baseline.readings, 1, "published once so far")
        XCTAssertEqual(table.sweep(now: 100).count, 1)
        let saved = try XCTUnwrap(book.take(BaselineBook.Key(pipeline: "env", device: "dev")))
        XCTAssertEqual(saved.baseline.readings, 300)
        let counters = Counters()
        var snapshot = saved
        snapshot.stuckFields = ["h"]
        snapshot.warm = true
        counters.setBaselines([(BaselineBook.Key(pipeline: "env", device: "dev"), snapshot),
                               (BaselineBook.Key(pipeline: "env", device: "new"), BaselineBook.empty(like: saved))])
        var text = ""
        counters.metrics.render(into: &text)
        XCTAssertTrue(text.contains(#"vigil_baseline_devices{pipeline="env",status="ready"} 1"#), text)
        XCTAssertTrue(text.contains(#"vigil_baseline_devices{pipeline="env",status="warming"} 1"#), text)
        XCTAssertTrue(text.contains(#"vigil_baseline_stuck_fields{pipeline="env"} 1"#), text)
    }
}
