import Foundation
import TestSupport
@testable import VigilCore
import XCTest

/// The shipped models (Models/*.onnx), loaded through vigild's own code, give the expected
/// label on the small fixtures the training scripts made (Models/fixtures/expected.json).
final class ShippedModelTests: XCTestCase {
    struct Fixture: Decodable {
        let model: String
        let shape: [Int]
        let expected_label: String
        let scores: [Double]
    }

    /// A pipeline of the kind each shipped model serves, as a user would configure it.
    func pipeline(for model: String) throws -> Pipeline {
        let path = Paths.repo.appendingPathComponent("Models/\(model)").path
        let (format, extra): (String, String) = switch model {
        case "motion.onnx": ("pgm", "")
        case "sound.onnx": ("wav", "")
        default: ("json", #", "fields": ["temperature", "humidity"]"#)
        }
        let c = try Config.parse(Array("""
            { "node": "n", "models": { "m": { "path": "\(path)" } },
              "pipelines": [ { "name": "p", "topic": "s/{device}/x", "format": "\(format)", "model": "m"\(extra) } ] }
            """.utf8))
        return try Pipeline.build(c.pipelines[0], model: Model(name: model, path: path))
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
            let p = try pipeline(for: f.model)
            let d = try p.detect(ModelInput(values: values, shape: f.shape, ts: 0), device: "fixture")
            XCTAssertEqual(d.label, f.expected_label, "\(file) through \(f.model): \(d.scores)")
            XCTAssertEqual(d.scores.map(\.1), f.scores, accuracy: 1e-4, file)
        }
    }
}
