import Foundation
import TestSupport
@testable import VigilCore
import XCTest

/// Enrollment's pieces (issue 18): the score mapping onto the rule's bar, the prototypes'
/// bytes, the rule's selector taking enrolled labels, and the pipeline applying positive and
/// ignore enrollments to the real sound model's scores.
final class EnrollmentTests: XCTestCase {
    func enrollment(_ kind: Enrollment.Kind, label: String, prototypes: [[Float]], threshold: Double) -> Enrollment {
        Enrollment(pipeline: "p", label: label, kind: kind, modelVersion: "1", prototypes: prototypes, threshold: threshold, source: "t")
    }

    func testTheThresholdLandsOnTheRulesBarAndScoresStayInZeroToOne() {
        let e = enrollment(.positive, label: "kettle", prototypes: [[1, 0]], threshold: 0.8)
        XCTAssertEqual(e.score(similarity: 0.8, minScore: 0.97), 0.97, accuracy: 1e-12)
        XCTAssertEqual(e.score(similarity: 1, minScore: 0.97), 1, accuracy: 1e-12)
        XCTAssertLessThan(e.score(similarity: 0.799, minScore: 0.97), 0.97)
        XCTAssertEqual(e.score(similarity: -0.5, minScore: 0.97), 0)
        XCTAssertEqual(e.score(similarity: 0.4, minScore: 0.5), 0.25, accuracy: 1e-12)
        XCTAssertEqual(e.similarity([0.6, 0.8]), 0.6, accuracy: 1e-6)
        XCTAssertEqual(e.similarity([0.6, 0.8, 0]), -.infinity, "another embedding size never matches")
    }

    /// The floor follows how alike the enrolled clips are (median match to the others - 0.1,
    /// within 0.6-0.8), as enroll_online_eval.floor_of computes it: alike clips (toilet flushes)
    /// get a high floor, varied ones (clock alarms) a low one; one clip, the top.
    func testAPositiveFloorFollowsHowAlikeTheClipsAre() {
        XCTAssertEqual(Enroller.positiveFloor(clipMatches: [0.85, 0.9, 0.79, 0.88, 0.86]), 0.76, accuracy: 1e-12, "median 0.86")
        XCTAssertEqual(Enroller.positiveFloor(clipMatches: [0.64, 0.54, 0.64, 0.64, 0.54]), 0.6, accuracy: 1e-12, "median 0.64 - 0.1 is under the range")
        XCTAssertEqual(Enroller.positiveFloor(clipMatches: [0.99, 0.98, 0.97]), 0.8, accuracy: 1e-12, "capped")
        XCTAssertEqual(Enroller.positiveFloor(clipMatches: [0.7, 0.8, 0.75, 0.9]), 0.675, accuracy: 1e-12, "even count: mean of the middle two")
        XCTAssertEqual(Enroller.positiveFloor(clipMatches: []), 0.8, "one clip: nothing says how varied the sound is")
        XCTAssertEqual(Enroller.positiveFloor(clipMatches: [.nan, 0.8]), 0.7, accuracy: 1e-12, "a NaN match is left out")
    }

    func testPrototypesRoundTripThroughTheirBytes() {
        let e = enrollment(.ignore, label: "x", prototypes: [[1.5, -2, 0.25], [0, 1, -0]], threshold: 0.5)
        XCTAssertEqual(Enrollment.prototypes(from: e.prototypeBytes, dim: 3), e.prototypes)
        XCTAssertNil(Enrollment.prototypes(from: Array(e.prototypeBytes.dropLast()), dim: 3))
    }

    func testEnrolledLabelsAlertWhateverTheAlertLabelsList() {
        var a = AlertSettings()
        a.labels = ["glass_breaking"]
        let sel = ScoreSelector(settings: a, modelLabels: ["normal", "glass_breaking", "smoke_alarm"])
        let scores = [("normal", 0.1), ("glass_breaking", 0.2), ("smoke_alarm", 0.9), ("kettle", 0.5)]
        XCTAssertEqual(sel.pick(scores)?.label, "glass_breaking")
        XCTAssertEqual(sel.pick(scores, enrolledFrom: 3)?.label, "kettle")
    }

    func testThePipelineAppliesPositiveAndIgnoreEnrollmentsToTheSoundModel() throws {
        let path = Paths.repo.appendingPathComponent("Models/sound.onnx").path
        let c = try Config.parse(Array("""
            { "node": "n", "models": { "m": { "path": "\(path)" } },
              "pipelines": [ { "name": "p", "topic": "s/{device}/a", "format": "wav", "model": "m",
                               "alert": { "labels": ["smoke_alarm"], "min_score": 0.9 } } ] }
            """.utf8))
        let book = EnrollmentBook()
        let p = try Pipeline.build(c.pipelines[0], model: Model(name: "m", path: path), enrollments: book)
        let bytes = try Data(contentsOf: Paths.repo.appendingPathComponent("Models/fixtures/sound_smoke.f32"))
        let smoke = ModelInput(values: bytes.withUnsafeBytes { raw in (0..<bytes.count / 4).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } },
                               shape: [1, 15600], ts: 0)
        let plain = try p.detect(smoke, device: "d")
        XCTAssertEqual(plain.label, "smoke_alarm")
        XCTAssertNil(plain.enrolledFrom)
        let embedding = try p.model.run(smoke).embedding
        // Enrolled on this very window: similarity 1, so the label wins at score 1 from the
        // second window (DeviceCalibration.chosen: 2 windows in a row; the first scores just under the bar).
        book.replace([enrollment(.positive, label: "beeper", prototypes: [embedding], threshold: 0.9)], version: 1)
        XCTAssertEqual(DeviceCalibration.chosen(hopSeconds: 0.5).forFrames, 2)
        let first = try p.detect(smoke, device: "d")
        XCTAssertEqual(first.scores.last?.1 ?? 1, 0.9.nextDown, accuracy: 1e-9, "one window at the bar is not yet 2 in a row")
        let enrolled = try p.detect(smoke, device: "d")
        XCTAssertEqual(enrolled.enrolledFrom, 4)
        XCTAssertEqual(enrolled.scores.last?.0, "beeper")
        XCTAssertEqual(enrolled.scores.last?.1 ?? 0, 1, accuracy: 1e-5)
        // Ignored: every alerting label scores 0, the background keeps its score.
        book.replace([enrollment(.ignore, label: "smoke_alarm", prototypes: [embedding], threshold: 0.9)], version: 2)
        let ignored = try p.detect(smoke, device: "d")
        XCTAssertEqual(ignored.scores.dropFirst().map(\.1), [0, 0, 0])
        XCTAssertEqual(ignored.scores[0].1, plain.scores[0].1)
        XCTAssertEqual(ignored.label, "normal")
        // An enrolled sound's false alarm is ignored too: beside a positive enrollment the same
        // window matches, the enrolled label scores 0 with the model's (it kept its 1 before).
        book.replace([enrollment(.positive, label: "beeper", prototypes: [embedding], threshold: 0.9),
                      enrollment(.ignore, label: "beeper", prototypes: [embedding], threshold: 0.9)], version: 3)
        let both = try p.detect(smoke, device: "d")
        XCTAssertEqual(both.scores.last?.0, "beeper")
        XCTAssertEqual(both.scores.dropFirst().map(\.1), [0, 0, 0, 0], "an ignore silences the enrolled label as well")
        // An ignore that does not match (threshold above any cosine) changes nothing.
        book.replace([enrollment(.ignore, label: "smoke_alarm", prototypes: [embedding.map { -$0 }], threshold: 0.5)], version: 4)
        XCTAssertEqual(try p.detect(smoke, device: "d").scores.map(\.1), plain.scores.map(\.1))
    }

    /// A positive enrollment whose clips match a background window too closely for the margin to
    /// fit under the highest threshold is refused: cut by the cap, the threshold would sit under
    /// that everyday window (before: an all-zero clip, background match 0.997, stored at 0.995).
    /// An ignore like the background only silences, so it is stored; a --margin above the default
    /// may be cut. The real model runs the clip; the background set is made here.
    func testAPositiveEnrollmentThatWouldAlertOnTheBackgroundIsRefused() throws {
        let p = try shippedPipeline(for: "sound.onnx")
        let tone = (0..<32000).map { Float(0.3 * sin(2 * Double.pi * 700 * Double($0) / 16000)) }
        let clip = [(name: "tone.wav", wav: WAV.pcm16(sampleRate: 16000, samples: tone))]
        let own = try Enroller(pipeline: p, background: [], alarms: []).enroll(label: "t", kind: .positive, clips: clip, source: "t")
        let proto = own.enrollment.prototypes[0]
        // A background window at cosine 0.97 to the clip: 0.97 + 0.03 > 0.995.
        var other = [Float](repeating: 0, count: proto.count)
        let k = proto.indices.min { abs(proto[$0]) < abs(proto[$1]) }!
        other[k] = 1
        let sideways = zip(proto, other).map { Float(0.97) * $0 + Float((1 - 0.97 * 0.97).squareRoot()) * $1 }
        let near = Enroller.unit(sideways)
        XCTAssertEqual(Double(Enrollment.dot(near, proto)), 0.97, accuracy: 0.01)
        let enroller = try Enroller(pipeline: p, background: [near], alarms: [])
        XCTAssertThrowsError(try enroller.enroll(label: "kettle", kind: .positive, clips: clip, source: "t")) {
            XCTAssertTrue("\($0)".contains("the clips sound like the model's everyday background audio (best match 0.97"), "\($0)")
            XCTAssertTrue("\($0)".contains("\"kettle\" would alert on ordinary sound"), "\($0)")
        }
        let ignore = try enroller.enroll(label: "hum", kind: .ignore, clips: clip, source: "t")
        XCTAssertEqual(ignore.enrollment.threshold, Enroller.maxThreshold)
        // Farther from the background the same clip enrolls; a big --margin is cut, not refused.
        let far = try Enroller(pipeline: p, background: [other], alarms: [])
        let strict = try far.enroll(label: "kettle", kind: .positive, clips: clip, source: "t", margin: 1)
        XCTAssertEqual(strict.enrollment.threshold, Enroller.maxThreshold)
        // And a silent clip is refused before anything is compared.
        let silent = [(name: "muted.wav", wav: WAV.pcm16(sampleRate: 16000, samples: [Float](repeating: 0, count: 32000)))]
        XCTAssertThrowsError(try far.enroll(label: "kettle", kind: .ignore, clips: silent, source: "t")) {
            XCTAssertTrue("\($0)".hasPrefix("muted.wav: no sound in it"), "\($0)")
        }
    }

    /// The altered copies are exp_enroll_augment.py's arithmetic: linear interpolation for speed
    /// (np.interp, the last sample held), y[i] = (1 - a) x[i] + a y[i-1] for the low-pass (a unit
    /// step gives 1 - a^(i+1)), x - y for the high-pass; a 6 kHz tone passes the high-pass and
    /// is softened by the low-pass (one pole: -6 dB an octave), a 100 Hz tone the other way.
    func testAlteredCopiesChangeSpeedAndToneAsTheTrainingScriptDoes() {
        let ramp = (0..<100).map(Float.init)
        XCTAssertEqual(ClipAlteration.speed(2).apply(ramp, rate: 16000), stride(from: 0, to: 100, by: 2).map(Float.init))
        let slow = ClipAlteration.speed(0.5).apply(ramp, rate: 16000)
        XCTAssertEqual(slow.count, 200)
        XCTAssertEqual(slow[3], 1.5)
        XCTAssertEqual(slow.suffix(2), [99, 99], "past the last sample it is held")
        XCTAssertEqual(ClipAlteration.speed(1.08).apply([Float](repeating: 0, count: 16000), rate: 16000).count, 14815)

        let a = exp(-2 * Double.pi * 2000 / 16000)
        let step = ClipAlteration.lowPass(hz: 2000).apply([Float](repeating: 1, count: 5), rate: 16000)
        for (i, y) in step.enumerated() { XCTAssertEqual(Double(y), 1 - pow(a, Double(i + 1)), accuracy: 1e-6) }
        let high = ClipAlteration.highPass(hz: 2000).apply([Float](repeating: 1, count: 5), rate: 16000)
        for (i, y) in high.enumerated() { XCTAssertEqual(Double(y), pow(a, Double(i + 1)), accuracy: 1e-6) }

        func rms(_ x: [Float]) -> Float { (x.dropFirst(1000).map { $0 * $0 }.reduce(0, +) / Float(x.count - 1000)).squareRoot() }
        func tone(_ hz: Double) -> [Float] { (0..<16000).map { Float(sin(2 * Double.pi * hz * Double($0) / 16000)) } }
        XCTAssertLessThan(rms(ClipAlteration.lowPass(hz: 2000).apply(tone(6000), rate: 16000)), 0.45 * rms(tone(6000)))
        XCTAssertGreaterThan(rms(ClipAlteration.lowPass(hz: 2000).apply(tone(100), rate: 16000)), 0.95 * rms(tone(100)))
        XCTAssertLessThan(rms(ClipAlteration.highPass(hz: 500).apply(tone(100), rate: 16000)), 0.25 * rms(tone(100)))
        XCTAssertGreaterThan(rms(ClipAlteration.highPass(hz: 500).apply(tone(6000), rate: 16000)), 0.85 * rms(tone(6000)))
    }

    /// A positive enrollment keeps a prototype per clip and one per altered copy of it, so the
    /// same sound a little faster (another kettle, another day) comes closer to it than to the
    /// clip alone; an ignore keeps its clips alone. The real model runs the clips.
    func testAPositiveEnrollmentAddsPrototypesOfAlteredCopiesAndAnIgnoreDoesNot() throws {
        let p = try shippedPipeline(for: "sound.onnx")
        // A chirp with a harmonic, rising 900 -> 1500 Hz over 2 s.
        func chirp(_ seconds: Double) -> [Float] {
            var phase = 0.0
            return (0..<Int(seconds * 16000)).map { i in
                phase += 2 * .pi * (900 + 600 * Double(i) / (seconds * 16000)) / 16000
                return Float(0.3 * sin(phase) + 0.1 * sin(2 * phase))
            }
        }
        let clips = [chirp(2), chirp(2.4)].enumerated().map { (name: "c\($0.offset).wav", wav: WAV.pcm16(sampleRate: 16000, samples: $0.element)) }
        let far = [Float](repeating: 0, count: 64).enumerated().map { $0.offset == 0 ? Float(1) : 0 }
        let enroller = try Enroller(pipeline: p, background: [far], alarms: [])
        let positive = try enroller.enroll(label: "chirp", kind: .positive, clips: clips, source: "t").enrollment
        XCTAssertEqual(positive.prototypes.count, 2 * (1 + ClipAlteration.positive.count))
        let ignore = try enroller.enroll(label: "chirp", kind: .ignore, clips: clips, source: "t").enrollment
        XCTAssertEqual(ignore.prototypes.count, 2)

        // The first clip played 8 % faster: the clip-only prototypes (the ignore's) and the
        // positive's, which hold a copy at that speed.
        let faster = try enroller.embeddings(wav: WAV.pcm16(sampleRate: 16000, samples: ClipAlteration.speed(1.08).apply(chirp(2), rate: 16000)), name: "f")
        let loud = faster.filter(\.loud).map(\.embedding)
        let byClips = loud.map { ignore.similarity($0) }.max()!, byCopies = loud.map { positive.similarity($0) }.max()!
        XCTAssertGreaterThan(byCopies, 0.95, "a copy at that speed is in the enrollment")
        XCTAssertGreaterThan(byCopies, byClips + 0.005, "clips alone \(byClips), with copies \(byCopies)")
    }

    /// `vigilctl enrolled --try`'s verdicts, on unit vectors whose similarities are known: a
    /// sound at the bar on 2 windows in a row alerts; on 1 it is too brief (vigild needs 2); a
    /// window an ignore matches scores 0 however close; the alert rule's own for_frames counts
    /// on top; a device whose near miss is the sound itself holds it back, up to the cap.
    func testATrialSaysWhetherARecordingWouldAlertAndWhyNot() {
        func v(_ x: Float, _ y: Float) -> [Float] { Enroller.unit([x, y, 0]) }
        let kettle = Enrollment(pipeline: "a", label: "kettle", kind: .positive, modelVersion: "1", prototypes: [[1, 0, 0]], threshold: 0.8, source: "t")
        let hum = Enrollment(pipeline: "a", label: "hum", kind: .ignore, modelVersion: "1", prototypes: [Enroller.unit([0.8, 0, 0.6])], threshold: 0.9, source: "t")
        let settings = DeviceCalibration.chosen(hopSeconds: 0.5)
        let trial = EnrollmentTrial(settings: settings)
        let near = v(0.9, Float(0.19).squareRoot()), far = v(0, 1)      // cosine to the kettle 0.9, 0; to the hum 0.72, 0
        func verdict(_ windows: [[Float]], _ t: EnrollmentTrial = trial, _ c: [String: DeviceCalibration] = [:]) -> EnrollmentTrial.Outcome {
            t.run([kettle, hum], windows: windows, calibrations: c)[0]
        }
        XCTAssertTrue(verdict([far, near, near, far]).fires)
        let brief = verdict([far, near, far, far])
        XCTAssertFalse(brief.fires)
        XCTAssertEqual(brief.windowsAtBar, 1)
        XCTAssertEqual(brief.best, 0.9, accuracy: 1e-5)
        XCTAssertFalse(verdict([far, near, near, far], EnrollmentTrial(settings: settings, ruleFrames: 2)).fires, "2 at the bar, then 2 more for the rule")
        XCTAssertTrue(verdict([far, near, near, near, far], EnrollmentTrial(settings: settings, ruleFrames: 2)).fires)
        // A window at the kettle's bar that the ignore matches too (cosines 0.89 and 0.98): silenced.
        let both = Enroller.unit([0.9, 0, 0.45])
        let ignored = verdict([both, both, both])
        XCTAssertFalse(ignored.fires)
        XCTAssertEqual(ignored.windowsAtBar, 3)
        XCTAssertEqual(ignored.ignoredAtBar, 3)
        XCTAssertTrue(trial.run([kettle, hum], windows: [both], calibrations: [:])[1].fires, "the ignore silences it")
        // A device that remembered this very sound as a near miss: bar = near miss + margin, capped.
        var learnt = DeviceCalibration()
        let nearMiss = v(0.75, Float(1 - 0.5625).squareRoot())          // cosine 0.75: under 0.8, within admit
        for _ in 0..<(settings.guardWindows + 2) { _ = learnt.observe(0.75, embedding: nearMiss, enrolled: 0.8, settings) }
        XCTAssertEqual(learnt.nearMisses.count, 1)
        let held = verdict([far, near, near, far], trial, [kettle.uuid: learnt])
        XCTAssertFalse(held.fires)
        XCTAssertGreaterThan(held.barAtBest, 0.9, "the near miss lifts the bar for sounds like it")
        XCTAssertTrue(verdict([far, v(1, 0), v(1, 0), far], trial, [kettle.uuid: learnt]).fires, "the kettle itself, at the cap or above, still alerts")
    }
}
