import Foundation
import TestSupport
@testable import VigilCore
import XCTest

func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "counts differ: \(message)", file: file, line: line)
    for (x, y) in zip(a, b) where abs(x - y) > accuracy {
        XCTFail("\(a) != \(b) (accuracy \(accuracy)) \(message)", file: file, line: line)
        return
    }
}

func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "counts differ: \(message)", file: file, line: line)
    for (x, y) in zip(a, b) where abs(x - y) > accuracy {
        XCTFail("\(a) != \(b) (accuracy \(accuracy)) \(message)", file: file, line: line)
        return
    }
}

/// A config with one pipeline using one fixture model; `extra` is spliced into the pipeline.
func pipelineConfig(model: String, format: String, _ extra: String = "", file: String? = nil) throws -> Config {
    try Config.parse(Array("""
        { "node": "n", "models": { "m": { "path": "\(Paths.fixture(model))" } },
          "pipelines": [ { "name": "p", "topic": "s/{device}/x", "format": "\(format)", "model": "m" \(extra.isEmpty ? "" : ", " + extra) } ] }
        """.utf8), file: file)
}

func buildPipeline(model: String, format: String, _ extra: String = "", file: String? = nil) throws -> Pipeline {
    let c = try pipelineConfig(model: model, format: format, extra, file: file)
    return try Pipeline.build(c.pipelines[0], model: Model(name: "m", path: Paths.fixture(model)))
}

func mismatch(_ model: String, _ format: String, _ extra: String = "") -> String {
    do { _ = try buildPipeline(model: model, format: format, extra); return "built" } catch { return "\(error)" }
}

final class PipelineContractTests: XCTestCase {
    func testAOneScoreModelLabelsRowsUnderItsThresholdNormal() throws {
        // free_dims scores sigmoid(mean(window)), with no vigil.threshold: 0.5 applies.
        let p = try buildPipeline(model: "free_dims.onnx", format: "json", #""fields": ["t"]"#)
        let low = try p.detect(ModelInput(values: [Float](repeating: -1, count: 8), shape: [1, 8, 1], ts: 0), device: "d")
        XCTAssertEqual(low.label, "normal")
        XCTAssertEqual(low.score, 1 / (1 + exp(1)), accuracy: 1e-6)
        XCTAssertEqual(low.scores.map(\.0), ["anomaly"], "scores keep the model's own label")
        let high = try p.detect(ModelInput(values: [Float](repeating: 2, count: 8), shape: [1, 8, 1], ts: 0), device: "d")
        XCTAssertEqual(high.label, "anomaly")
    }

    func testEachFormatFitsItsModelShape() throws {
        XCTAssertEqual(try buildPipeline(model: "motion_small.onnx", format: "pgm").inputDescription,
                       "pairs of 16x12 grey frames (area-averaged)")
        XCTAssertEqual(try buildPipeline(model: "brightness.onnx", format: "gray8", #""width": 64, "height": 48"#).inputDescription,
                       "16x12 grey frames (area-averaged)")
        XCTAssertEqual(try buildPipeline(model: "sound_small.onnx", format: "wav").inputDescription,
                       "windows of 800 samples at 8000 Hz, hop 400")
        XCTAssertEqual(try buildPipeline(model: "sound_small.onnx", format: "pcm_s16le", #""sample_rate": 8000, "hop": 0.25"#).inputDescription,
                       "windows of 800 samples at 8000 Hz, hop 200")
        XCTAssertEqual(try buildPipeline(model: "sound_small.onnx", format: "wav", #""hop": 800"#).inputDescription,
                       "windows of 800 samples at 8000 Hz, hop 800")
        XCTAssertEqual(try buildPipeline(model: "free_dims.onnx", format: "json", #""fields": ["a", "b", "c"]"#).inputDescription,
                       "windows of 8 readings of 3 fields")
        XCTAssertEqual(try buildPipeline(model: "tiny_classifier.onnx", format: "json", #""fields": ["a", "b", "c", "d"]"#).inputDescription,
                       "windows of 1 readings of 4 fields")
    }

    func testMismatchesNamePipelineModelAndWhatIsWrong() {
        let prefix = "pipeline \"p\" with model \"m\": "
        XCTAssertEqual(mismatch("motion_small.onnx", "wav"),
                       prefix + "the model's vigil.task is motion, which a wav pipeline cannot feed (needs one of classifier, score, sound)")
        XCTAssertEqual(mismatch("sound_small.onnx", "pcm_s16le", #""sample_rate": 16000"#),
                       prefix + "sample_rate 16000 Hz but the model takes 8000 Hz: send 8000 Hz or set \"resample\": true")
        XCTAssertEqual(mismatch("sound_small.onnx", "pcm_s16le", #""sample_rate": 16000, "resample": true"#), "built")
        XCTAssertEqual(mismatch("sound_small.onnx", "wav", #""hop": 900"#),
                       prefix + "hop of 900 samples is longer than the model's window of 800")
        XCTAssertEqual(mismatch("free_dims.onnx", "json", #""fields": ["a"], "window": 4"#),
                       prefix + "window 4 but the model's input window: float[1, 8, fields] takes 8 readings")
        XCTAssertEqual(mismatch("tiny_classifier.onnx", "pgm"),
                       prefix + "a camera pipeline feeds [1, C, H, W] or [1, H, W], the model's input is x: float[1, 4]")
        XCTAssertEqual(mismatch("motion_small.onnx", "json", #""fields": ["a"]"#),
                       prefix + "the model's vigil.task is motion, which a json pipeline cannot feed (needs one of anomaly, classifier, score)")
        XCTAssertTrue(mismatch("free_dims.onnx", "f32le").contains("has free dimensions: set \"shape\""))
        XCTAssertEqual(mismatch("free_dims.onnx", "f32le", #""shape": [8, 5]"#), "built")
        XCTAssertEqual(mismatch("sound_small.onnx", "wav", #""alert": { "labels": ["laud"] }"#),
                       prefix + "alert.labels[0] \"laud\" is not one of the pipeline's labels (quiet, loud)")
        XCTAssertEqual(mismatch("sound_small.onnx", "wav", #""label_groups": { "noise": ["loud"] }, "alert": { "labels": ["loud"] }"#),
                       prefix + "alert.labels[0] \"loud\" is not one of the pipeline's label_groups (noise)")
    }

    func testConfigKeysAreCheckedPerFormat() {
        func err(_ format: String, _ extra: String) -> String {
            do { _ = try pipelineConfig(model: "sound_small.onnx", format: format, extra); return "ok" } catch { return "\(error)" }
        }
        XCTAssertTrue(err("pgm", #""hop": 0.5"#).contains("pipelines[0].hop: only wav and pcm_s16le pipelines take hop"))
        XCTAssertTrue(err("wav", #""hop": 0"#).contains("pipelines[0].hop: must be a fraction"))
        XCTAssertTrue(err("wav", #""hop": 1.5"#).contains("must be a fraction"))
        XCTAssertTrue(err("wav", #""max_width": 10"#).contains("only pgm pipelines take max_width"))
        XCTAssertTrue(err("wav", #""label_groups": {"x": []}"#).contains("pipelines[0].label_groups.x: must list at least one"))
        XCTAssertTrue(err("wav", #""label_groups": {"x": [1]}"#).contains("label_groups.x[0]: must be a string"))
        XCTAssertEqual(err("wav", #""resample": true, "hop": 0.5, "label_groups": {"x": ["loud"]}"#), "ok")
    }

    func testLabelsFileAndLabelGroupsOnA521LabelModel() throws {
        let dir = TempDir()
        defer { dir.remove() }
        // Like AudioSet's class map: index, mid, display_name with quoted commas.
        var csv = "index,mid,display_name\n"
        for i in 0..<521 {
            let name = i == 0 ? "\"Child speech, kid speaking\"" : i == 435 ? "Glass" : i == 437 ? "Shatter" : i == 464 ? "Breaking" : "Class \(i)"
            csv += "\(i),/m/\(i),\(name)\r\n"
        }
        _ = dir.write("class_map.csv", csv)
        let groups = #""labels_file": "class_map.csv", "label_groups": { "glass_breaking": ["Glass", "Shatter", "Breaking"], "child": ["Child speech, kid speaking"] }"#
        let c = try pipelineConfig(model: "wide_passthrough.onnx", format: "f32le", groups, file: dir.file("vigil.json"))
        XCTAssertEqual(c.pipelines[0].labelsFile, dir.file("class_map.csv"), "resolved against the config's folder")
        let p = try Pipeline.build(c.pipelines[0], model: Model(name: "m", path: Paths.fixture("wide_passthrough.onnx")))
        XCTAssertEqual(p.labels.count, 521)
        XCTAssertEqual(p.labels[0], "Child speech, kid speaking")
        var x = [Float](repeating: 0.01, count: 521)
        x[435] = 0.3; x[437] = 0.8; x[464] = 0.2; x[0] = 0.5; x[100] = 0.99
        let d = try p.detect(ModelInput(values: x, shape: [1, 521], ts: 5), device: "mic")
        XCTAssertEqual(d.label, "glass_breaking")
        XCTAssertEqual(d.score, 0.8, accuracy: 1e-6, "the group scores its best member")
        XCTAssertEqual(d.scores.map(\.0), ["glass_breaking", "child"])
        XCTAssertEqual(d.scores.map(\.1), [0.8, 0.5], accuracy: 1e-6)

        // Without groups: every label is named, from the file.
        let plain = try buildPipeline(model: "wide_passthrough.onnx", format: "f32le", #""labels_file": "\#(dir.file("class_map.csv"))""#)
        let d2 = try plain.detect(ModelInput(values: x, shape: [1, 521], ts: 5), device: "mic")
        XCTAssertEqual(d2.label, "Class 100")
        XCTAssertEqual(d2.scores.count, 521)

        // A member that is not a label; a labels file of the wrong length; a plain-text file.
        let bad = mismatch("wide_passthrough.onnx", "f32le", #""labels_file": "\#(dir.file("class_map.csv"))", "label_groups": {"g": ["glass"]}"#)
        XCTAssertEqual(bad, "pipeline \"p\" with model \"m\": label_groups.g: \"glass\" is not one of the model's 521 labels (did you mean \"Glass\"?)")
        _ = dir.write("three.txt", "a\nb\n\nc\n")
        XCTAssertEqual(mismatch("wide_passthrough.onnx", "f32le", #""labels_file": "\#(dir.file("three.txt"))""#),
                       "pipeline \"p\" with model \"m\": labels_file \(dir.file("three.txt")) names 3 labels but the model's output scores: float[1, 521] has 521 scores")
        XCTAssertEqual(try LabelsFile.read(dir.file("three.txt")), ["a", "b", "c"])
        _ = dir.write("bom.csv", "\u{FEFF}label,x\nfirst,1\n")
        XCTAssertEqual(try LabelsFile.read(dir.file("bom.csv")), ["first"])
        XCTAssertTrue(mismatch("wide_passthrough.onnx", "f32le", #""labels_file": "/nonexistent.csv""#).contains("labels file /nonexistent.csv: no such file"))
        // Default names when a model has neither metadata labels nor a file.
        XCTAssertEqual(try buildPipeline(model: "wide_passthrough.onnx", format: "f32le").labels[7], "class7")
    }

    func testCSVParsing() {
        XCTAssertEqual(LabelsFile.parseCSV("a,\"b,c\",\"d\"\"e\"\n1,2,3"), [["a", "b,c", "d\"e"], ["1", "2", "3"]])
        XCTAssertEqual(LabelsFile.parseCSV("x\r\n\"\"\r\n"), [["x"], [""]])
    }

    func testModelDescriptionForVigilctl() throws {
        let d = try ModelDescription.read(path: Paths.fixture("motion_small.onnx"))
        XCTAssertEqual(d.task, "motion")
        XCTAssertEqual(d.labels, ["still", "motion"])
        XCTAssertNil(d.problem)
        XCTAssertEqual(d.inputs.map(\.description), ["frames: float[1, 2, 12, 16]"])
        XCTAssertEqual(d.metadata["vigil.frame"], "12x16")
        XCTAssertTrue(d.text.contains("  input  frames: float[1, 2, 12, 16]"), d.text)
        XCTAssertTrue(d.text.contains("  vigil.frame = 12x16"), d.text)
        XCTAssertTrue(d.text.contains("  labels (2): still, motion"), d.text)
        let two = try ModelDescription.read(path: Paths.fixture("two_inputs.onnx"))
        XCTAssertNil(two.task)
        XCTAssertEqual(two.inputs.count, 2)
        XCTAssertTrue(two.problem?.contains("exactly one float32 input") ?? false)
        XCTAssertThrowsError(try ModelDescription.read(path: "/nonexistent.onnx"))
        let m = try Model(name: "w", path: Paths.fixture("wide_passthrough.onnx"), threads: 2)
        XCTAssertEqual(m.outputCount, 521)
        XCTAssertEqual(m.threads, 2)
    }

    func testModelThreadsDefaultToTheCoresShared() throws {
        let c = try pipelineConfig(model: "sound_small.onnx", format: "wav")
        XCTAssertEqual(c.models[0].threads, max(1, ProcessInfo.processInfo.activeProcessorCount / c.limits.workers))
        let c2 = try Config.parse(Array("""
            { "node": "n", "limits": { "workers": 1, "device_ttl_s": 60, "max_queue_bytes": 1048576 },
              "models": { "m": { "path": "x.onnx" } },
              "pipelines": [ { "name": "p", "topic": "t", "format": "wav", "model": "m" } ] }
            """.utf8))
        XCTAssertEqual(c2.models[0].threads, ProcessInfo.processInfo.activeProcessorCount)
        XCTAssertEqual(c2.limits.deviceTTL, 60)
        XCTAssertEqual(c2.limits.maxQueueBytes, 1 << 20)
    }
}
