import Foundation
import TestSupport
@testable import VigilCore
import XCTest

/// A pipeline of the kind each shipped model (`Models/NAME`) serves, as a user would configure
/// it (EnrollmentTests, ShippedModelTests).
func shippedPipeline(for model: String) throws -> Pipeline {
    let path = Paths.repo.appendingPathComponent("Models/\(model)").path
    let (format, extra): (String, String) = switch model {
    case "motion.onnx": ("pgm", "")
    case "sound.onnx": ("wav", "")
    // No warm-up: these tests look at labels from the first windows on.
    default: ("json", #", "fields": ["temperature", "humidity"], "baseline": { "warmup_s": 0, "warmup_readings": 0 }"#)
    }
    let c = try Config.parse(Array("""
        { "node": "n", "models": { "m": { "path": "\(path)" } },
          "pipelines": [ { "name": "p", "topic": "s/{device}/x", "format": "\(format)", "model": "m"\(extra) } ] }
        """.utf8))
    return try Pipeline.build(c.pipelines[0], model: Model(name: model, path: path))
}

/// The shipped models (Models/*.onnx), loaded through vigild's own code, give the expected
/// label on the small fixtures the training scripts made (Models/fixtures/expected.json).
final class ShippedModelTests: XCTestCase {
    struct Fixture: Decodable {
        let model: String
        let shape: [Int]
        let expected_label: String
        let scores: [Double]
        /// A stateful model's baseline input (another fixture file) and its shape.
        let state: String?
        let state_shape: [Int]?
        /// The sound model's embedding output (issue 18): its size and first values.
        let embedding_size: Int?
        let embedding_head: [Double]?
    }

    func floats(_ url: URL) throws -> [Float] {
        let bytes = try Data(contentsOf: url)
        return bytes.withUnsafeBytes { raw in (0..<bytes.count / 4).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
    }

    func testEveryShippedModelGivesTheExpectedLabelOnItsFixtures() throws {
        let dir = Paths.repo.appendingPathComponent("Models/fixtures")
        let data = try Data(contentsOf: dir.appendingPathComponent("expected.json"))
        let fixtures = try JSONDecoder().decode([String: Fixture].self, from: data)
        XCTAssertEqual(Set(fixtures.values.map(\.model)), ["motion.onnx", "sound.onnx", "anomaly.onnx"])
        for (file, f) in fixtures.sorted(by: { $0.key < $1.key }) {
            let bytes = try Data(contentsOf: dir.appendingPathComponent(file))
            XCTAssertEqual(bytes.count, f.shape.reduce(1, *) * 4, file)
            let values = bytes.withUnsafeBytes { raw in (0..<bytes.count / 4).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
            let p = try shippedPipeline(for: f.model)
            let state = try f.state.map { try floats(dir.appendingPathComponent($0)) } ?? []
            let d = try p.detect(ModelInput(values: values, shape: f.shape, ts: 0, state: state, stateShape: f.state_shape ?? []), device: "fixture")
            XCTAssertEqual(d.label, f.expected_label, "\(file) through \(f.model): \(d.scores)")
            XCTAssertEqual(d.scores.map(\.1), f.scores, accuracy: 1e-4, file)
            // The embedding: declared only by the sound model, unit length, the values the script saw.
            let run = try p.model.run(ModelInput(values: values, shape: f.shape, ts: 0, state: state, stateShape: f.state_shape ?? []))
            XCTAssertEqual(run.scores.map(Double.init), f.scores, accuracy: 1e-4, file)
            if let size = f.embedding_size, let head = f.embedding_head {
                XCTAssertEqual(p.model.embedding?.shape, [-1, size], file)
                XCTAssertEqual(run.embedding.count, size, file)
                XCTAssertEqual(Double(run.embedding.reduce(0) { $0 + $1 * $1 }), 1, accuracy: 1e-4, file)
                XCTAssertEqual(run.embedding.prefix(head.count).map(Double.init), head, accuracy: 1e-4, file)
            } else {
                XCTAssertNil(p.model.embedding, file)
                XCTAssertEqual(run.embedding, [], file)
            }
        }
    }

    /// Deterministic test signal: a slow wave with noise and, every ninth input, a spike in its newest readings.
    func signal(_ n: Int, seed: Int) -> [Float] {
        var x = UInt64(seed + 1) &* 0x9E3779B97F4A7C15
        return (0..<n).map { i in
            x = x &* 6364136223846793005 &+ 1442695040888963407
            let noise = Float(x >> 40) / Float(1 << 24) - 0.5
            let spike: Float = (seed % 9 == 0 && i >= n - 6) ? 400 : 0
            return 20 + 2 * sin(Float(i) / 9) + noise + spike
        }
    }

    func input(for p: Pipeline, seed: Int) -> ModelInput {
        let shape: [Int] = switch p.model.name {
        case "anomaly.onnx": [1, 64, 2]
        case "sound.onnx": [1, 15600]
        default: [1, 5, 120, 160]
        }
        let n = shape.reduce(1, *)
        let scale: Float = p.model.name == "anomaly.onnx" ? 1 : 1 / 64   // audio and pixels stay within [-1, 1]
        let values = signal(n, seed: seed).map { $0 * scale - (scale < 1 ? 0.3 : 0) }
        guard p.model.stateInput != nil else { return ModelInput(values: values, shape: shape, ts: Double(seed)) }
        // A baseline for both fields: centre 20, spread 1.4, change 0.3, floor 0.01, scored.
        let state: [Float] = [20, 20, 1.4, 1.4, 0.3, 0.3, 0.01, 0.01, 1, 1]
        return ModelInput(values: values, shape: shape, ts: Double(seed), state: state, stateShape: [1, 5, 2])
    }

    /// Windows of several devices share one model run when the model's batch dimension is
    /// free (anomaly, sound), in runs of at most `maxBatch`; each gets the scores a run of
    /// its own would give, in order. Motion's batch is fixed: one run per input, same results.
    func testBatchedRunsGiveEachInputTheScoresOfItsOwnRun() throws {
        for (model, batchable) in [("anomaly.onnx", true), ("sound.onnx", true), ("motion.onnx", false)] {
            let p = try shippedPipeline(for: model)
            XCTAssertEqual(p.model.batchable, batchable, model)
            let items = (0..<(model == "anomaly.onnx" ? 37 : 11)).map { (input: input(for: p, seed: $0), device: "d\($0 % 5)") }
            let batched = p.detect(batch: items, maxBatch: 8)
            XCTAssertEqual(batched.count, items.count, model)
            var labels = Set<String>()
            for (item, result) in zip(items, batched) {
                let single = try p.detect(item.input, device: item.device)
                let d = try result.get()
                XCTAssertEqual(d.device, item.device, model)
                XCTAssertEqual(d.ts, item.input.ts, model)
                XCTAssertEqual(d.label, single.label, "\(model) input \(item.input.ts)")
                XCTAssertEqual(d.scores.map(\.1), single.scores.map(\.1), accuracy: 1e-5, "\(model) input \(item.input.ts)")
                labels.insert(d.label)
            }
            if model == "anomaly.onnx" { XCTAssertEqual(labels, ["normal", "anomaly"], "the signal has spikes and calm windows") }
        }
    }

    /// One bad input in a batch fails alone: a NaN score (from a NaN reading) and a wrong
    /// size (which fails the whole stacked run, so the batch is retried input by input).
    func testABadInputInABatchFailsAloneAndItsNeighboursAreScored() throws {
        let p = try shippedPipeline(for: "anomaly.onnx")
        var items = (0..<6).map { (input: input(for: p, seed: $0 + 1), device: "d\($0)") }
        items[2].input.values[100] = .nan
        for (i, r) in p.detect(batch: items).enumerated() {
            if i == 2 {
                XCTAssertThrowsError(try r.get()) { XCTAssertEqual(($0 as? FrameError)?.reason, .inferenceFailed, "\($0)") }
            } else {
                XCTAssertEqual(try r.get().scores.map(\.1), try p.detect(items[i].input, device: "x").scores.map(\.1), accuracy: 1e-5)
            }
        }
        items[2].input.values = [1, 2, 3]
        let results = p.detect(batch: items)
        XCTAssertThrowsError(try results[2].get()) { XCTAssertTrue("\($0)".contains("3 values"), "\($0)") }
        XCTAssertEqual(results.filter { (try? $0.get()) != nil }.count, 5)
    }

    /// Through the engine: readings of many devices queued on one worker are scored in
    /// shared runs, and every device still gets, in order, the scores its windows get alone.
    func testTheEngineScoresQueuedReadingsAsSingleRunsWould() throws {
        let p = try shippedPipeline(for: "anomaly.onnx")
        let sink = Sink()
        var limits = LimitSettings()
        limits.workers = 1
        let engine = Engine(pipelines: [p], limits: limits, counters: Counters()) { sink.add($0) }
        let devices = 6, readings = 150
        var sent: [String: [[UInt8]]] = [:]
        for i in 0..<readings {
            for d in 0..<devices {
                // One spike, late: a spike every few dozen readings would be part of the baseline.
                let t = 20 + sin(Double(i + d) / 7) + (i >= 120 && i < 123 ? 30 : 0)
                let payload = Array(#"{"temperature": \#(t), "humidity": \#(40 + d)}"#.utf8)
                sent["d\(d)", default: []].append(payload)
                engine.submit(.init(topic: "s/d\(d)/x", payload: payload, receivedAt: Double(i)))
            }
        }
        engine.stop()
        for (device, payloads) in sent {
            let adapter = p.makeAdapter()
            var expected: [Detection] = []
            for (i, payload) in payloads.enumerated() {
                for input in try adapter.inputs(for: try p.decoder.decode(payload, receivedAt: Double(i))) {
                    var d = try p.detect(input, device: device)
                    adapter.observe(&d)
                    expected.append(d)
                }
            }
            let got = sink.all.filter { $0.device == device }
            XCTAssertEqual(got.count, readings - 63, device)
            XCTAssertEqual(got.map(\.label), expected.map(\.label), device)
            XCTAssertEqual(got.map(\.score), expected.map(\.score), accuracy: 1e-5, device)
        }
        XCTAssertTrue(sink.all.contains { $0.label == "anomaly" }, "the readings have spikes")
    }
}
