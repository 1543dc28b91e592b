import Foundation
import ONNX
import TestSupport
import XCTest

final class ModelSessionTests: XCTestCase {
    /// The tiny model's weights (Tests/TestSupport/Fixtures/make_fixtures.py).
    let W: [[Float]] = [[0.5, -0.2, 0.1], [0.3, 0.8, -0.5], [-0.7, 0.1, 0.9], [0.2, 0.2, 0.2]]
    let b: [Float] = [0.1, -0.1, 0.0]

    func expected(_ x: [Float]) -> [Float] {
        let logits = (0..<3).map { j in (0..<4).reduce(b[j]) { $0 + x[$1] * W[$1][j] } }
        let m = logits.max()!
        let e = logits.map { exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    func testDescribesInputsOutputsAndMetadata() throws {
        let s = try ModelSession(path: Paths.fixture("tiny_classifier.onnx"))
        XCTAssertEqual(s.inputs.map(\.name), ["x"])
        XCTAssertEqual(s.inputs[0].shape, [1, 4])
        XCTAssertEqual(s.inputs[0].elementType, .float)
        XCTAssertEqual(s.outputs.map(\.name), ["scores"])
        XCTAssertEqual(s.outputs[0].shape, [1, 3])
        XCTAssertEqual(s.metadata["vigil.labels"], "low,mid,high")
        XCTAssertEqual(s.metadata["vigil.task"], "classifier")
        XCTAssertEqual(s.producer, "vigil-tests")
    }

    func testRunMatchesTheModelsMath() throws {
        let s = try ModelSession(path: Paths.fixture("tiny_classifier.onnx"))
        for x: [Float] in [[1, 2, 3, 4], [0, 0, 0, 0], [-5, 0.5, 2, 1e3]] {
            let out = try s.run(x, shape: [1, 4])
            XCTAssertEqual(out.count, 1)
            XCTAssertEqual(out[0].shape, [1, 3])
            for (a, e) in zip(out[0].values, expected(x)) { XCTAssertEqual(a, e, accuracy: 1e-5) }
        }
    }

    func testFreeDimensionsAreReportedAndRunnable() throws {
        let s = try ModelSession(path: Paths.fixture("free_dims.onnx"))
        XCTAssertEqual(s.inputs[0].shape, [1, 8, -1])
        XCTAssertEqual(s.inputs[0].symbolicShape[2], "fields")
        XCTAssertNil(s.inputs[0].fixedElementCount)
        let out = try s.run([Float](repeating: 0, count: 16), shape: [1, 8, 2])
        XCTAssertEqual(out[0].values[0], 0.5, accuracy: 1e-6)
    }

    func testWrongInputSizeIsAnErrorNotACrash() throws {
        let s = try ModelSession(path: Paths.fixture("tiny_classifier.onnx"))
        XCTAssertThrowsError(try s.run([1, 2, 3], shape: [1, 3])) { e in
            XCTAssertTrue(e is ONNXError, "\(e)")
        }
        XCTAssertThrowsError(try s.run([1, 2, 3], shape: [1, 4])) { e in
            XCTAssertTrue("\(e)".contains("3 values"), "\(e)")
        }
    }

    func testMissingAndCorruptModelsNameTheFile() throws {
        XCTAssertThrowsError(try ModelSession(path: "/nonexistent/model.onnx")) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent/model.onnx"), "\(e)")
        }
        let bad = NSTemporaryDirectory() + "corrupt-\(UUID().uuidString).onnx"
        try Data("not a model".utf8).write(to: URL(fileURLWithPath: bad))
        defer { try? FileManager.default.removeItem(atPath: bad) }
        XCTAssertThrowsError(try ModelSession(path: bad)) { e in XCTAssertTrue("\(e)".contains(bad), "\(e)") }
    }

    func testConcurrentRunsAgree() throws {
        let s = try ModelSession(path: Paths.fixture("tiny_classifier.onnx"))
        let want = expected([1, 2, 3, 4])
        let failures = Counter()
        DispatchQueue.concurrentPerform(iterations: 200) { _ in
            let out = try? s.run([1, 2, 3, 4], shape: [1, 4])
            if out.map({ zip($0[0].values, want).allSatisfy { abs($0 - $1) < 1e-5 } }) != true { failures.add() }
        }
        XCTAssertEqual(failures.value, 0)
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}
