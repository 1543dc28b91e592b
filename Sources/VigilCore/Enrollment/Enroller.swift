import Foundation

/// Turns a few WAV clips into an `Enrollment` for one pipeline: each clip goes through the
/// pipeline's own decoder and window adapter (as vigild would feed it; a clip at another rate
/// is resampled with vigild's resampler), the model gives every window's embedding, and its
/// loud windows (a 25 ms frame within 10 dB of the clip's loudest: the sound itself, not the
/// quiet around it) make the prototypes: their mean, one per clip (chosen on the tuning draws
/// and tuning audio: Models/training/results/enroll_eval.txt; with v1.2.0's unprojected
/// embedding every loud window was a prototype of a sound to alert on). A positive enrollment
/// adds one prototype per altered copy of each clip (`ClipAlteration.positive`: faster, slower,
/// other tones), made the same way; the clips' match to each other and the background's best
/// match are then taken over all of them.
///
/// The threshold is calibrated against the model's background set
/// (`vigil.embedding_background`: embeddings of real non-event audio shipped beside the
/// model): the highest similarity any background window has to a prototype, plus `margin`,
/// and at least the floor of its kind (a positive enrollment's floor follows its clips:
/// `positiveFloor(clipMatches:)`). Margin and floors were chosen on tuning draws and the
/// tuning audio only (Models/training/enroll_eval.py, sound.onnx v1.3.0's projected
/// embedding): the background best match alone let noise-like sounds in (toilet flushes:
/// 10 false alarms/h on tuning audio even at the floor). That threshold is where each device
/// starts: vigild raises it per device above the similarity the device's own everyday audio
/// reaches (`DeviceCalibration`), which is why the positive floor is low (0.6-0.8, chosen with
/// that calibration: Models/training/enroll_online_eval.py). Results: Models/sound.md, "Enrollment".
public struct Enroller {
    public static let defaultMargin = 0.03
    /// The range of a positive enrollment's floor (`positiveFloor(clipMatches:)`): where each
    /// device's online calibration (`DeviceCalibration`) starts from, before its own audio
    /// raises it (chosen with it on tune, enroll_online_eval.py; enroll_eval.py's 0.75 was for
    /// one threshold everywhere, the fixed 0.6 shipped before for one floor for every sound).
    public static let positiveFloorRange = 0.6...0.8
    /// How far below the clips' typical match to each other the floor sits.
    public static let positiveFloorBelowClips = 0.1

    /// A positive enrollment's floor, from how alike its clips are: the median over the clips of
    /// each one's best match to the other clips' prototypes (`Clip.matchByOthers`), less 0.1,
    /// within 0.6-0.8. Five toilet flushes match each other at 0.8-0.9 and a window of everyday
    /// audio can come near them; five clock alarms match each other at 0.54-0.64, so a floor
    /// that suits the flushes would miss the alarms (one global floor: at 0.7, tune recall 0.00
    /// for clock alarms; 0.6 let flushes through at 2.2/h). Chosen on tune
    /// (enroll_online_eval.py, ADAPTIVE_FLOORS; mean recall of held-out clips 0.78 against 0.62
    /// for the best fixed floor at the same 0.55 false alarms/h). With one clip nothing says
    /// how varied the sound is: the top of the range.
    public static func positiveFloor(clipMatches: [Double]) -> Double {
        let m = clipMatches.filter(\.isFinite).sorted()
        guard !m.isEmpty else { return positiveFloorRange.upperBound }
        let median = m.count % 2 == 1 ? m[m.count / 2] : (m[m.count / 2 - 1] + m[m.count / 2]) / 2
        return min(positiveFloorRange.upperBound, max(positiveFloorRange.lowerBound, median - positiveFloorBelowClips))
    }
    /// The lowest threshold of an ignore enrollment (enroll_eval.py: on `tune`, every glass and
    /// smoke recording still raising, then the fewest false alarms; 0.6 lost one recording).
    public static let ignoreFloor = 0.7
    public static let loudDB: Float = 10
    /// A clip whose loudest 25 ms stays under this (dBFS) holds no sound to learn: a muted or
    /// unplugged microphone. Its windows look like the quiet in the background set (an all-zero
    /// clip matched a background window at 0.997), so it would alert on silence. The quietest
    /// of the 382 ESC-50 clips peaks at -43 dBFS; 16-bit dither sits near -90.
    public static let silenceDB: Float = -60
    /// The highest threshold a cosine can usefully have; a positive enrollment whose background
    /// best match + margin lies above it is refused (`enroll`).
    public static let maxThreshold = 0.995
    let pipeline: Pipeline
    let background: [[Float]]
    /// Embeddings of real alarm windows an ignore must not silence (`vigil.embedding_alarms`;
    /// empty for a model that ships none: then nothing is checked).
    let alarms: [[Float]]

    public struct Clip: Sendable {
        public var name: String
        public var windows: Int
        public var loudWindows: Int
        /// Highest similarity of this clip's loud windows to the other clips' prototypes (nil with one clip).
        public var matchByOthers: Double?
    }

    public struct Result: Sendable {
        public var enrollment: Enrollment
        public var clips: [Clip]
        public var backgroundWindows: Int
        /// Highest similarity of a background window to a prototype.
        public var backgroundMax: Double
        /// The floor the threshold was held to (positive: from the clips; ignore: `ignoreFloor`).
        public var floor: Double
        /// The clips as heard, to keep beside the enrollment (nil: over `KeptClips.maxBytes`).
        public var kept: EnrollmentLog.KeptClips?
        /// Ignore only: how many of the model's real alarm windows (`vigil.embedding_alarms`) the
        /// ignore would silence, of how many, and the best similarity of one to it. An ignore
        /// zeroes every window like it, real events included: a bird call in a smoke alarm's band,
        /// ignored, silenced 1 of 4 real alarm recordings (Models/sound.md). vigilctl refuses
        /// one that silences any, without --force.
        public var alarmWindowsSilenced = 0
        public var alarmWindows = 0
        public var alarmBestMatch: Double?
    }

    public init(pipeline: Pipeline) throws {
        try self.init(pipeline: pipeline, background: nil, alarms: nil)
    }

    /// `background` and `alarms` stand in for the model's files (a unit test's sets); nil loads them.
    init(pipeline: Pipeline, background: [[Float]]?, alarms: [[Float]]?) throws {
        guard pipeline.model.embedding != nil else {
            throw EnrollError("pipeline \(pipeline.name): model \(pipeline.model.name) has no embedding output (vigil.embedding), so it cannot learn new sounds")
        }
        guard [.wav, .pcm_s16le].contains(pipeline.settings.format) else {
            throw EnrollError("pipeline \(pipeline.name): enrollment takes sound clips; this is a \(pipeline.settings.format.rawValue) pipeline")
        }
        self.pipeline = pipeline
        self.background = try background ?? Enroller.loadBackground(pipeline.model)
        self.alarms = try alarms ?? (pipeline.model.metadata["vigil.embedding_alarms"] == nil ? [] : Enroller.loadRows(pipeline.model, key: "vigil.embedding_alarms", what: "alarm reference set"))
    }

    /// The model's background embeddings: int8 rows (value x 127) of the embedding's size, in
    /// the file `vigil.embedding_background` names beside the model.
    static func loadBackground(_ model: Model) throws -> [[Float]] {
        guard model.metadata["vigil.embedding_background"] != nil else {
            throw EnrollError("model \(model.name) names no background set (vigil.embedding_background) to calibrate a threshold against")
        }
        return try loadRows(model, key: "vigil.embedding_background", what: "background set")
    }

    /// Unit rows of the int8 file (value x 127, rows of the embedding's size) that the metadata
    /// `key` names beside the model.
    static func loadRows(_ model: Model, key: String, what: String) throws -> [[Float]] {
        guard let name = model.metadata[key], let dim = model.embedding?.shape.last, dim > 0 else {
            throw EnrollError("model \(model.name) names no \(what) (\(key))")
        }
        let path = name.hasPrefix("/") ? name : URL(fileURLWithPath: model.path).deletingLastPathComponent().appendingPathComponent(name).path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EnrollError("model \(model.name): cannot read its \(what) \(path) (installed with the model)")
        }
        guard !data.isEmpty, data.count % dim == 0 else {
            throw EnrollError("model \(model.name): \(what) \(path) holds \(data.count) bytes, not rows of \(dim)")
        }
        let bytes = [UInt8](data)
        return stride(from: 0, to: bytes.count, by: dim).map { start in
            Enroller.unit((start..<start + dim).map { Float(Int8(bitPattern: bytes[$0])) / 127 })
        }
    }

    static func unit(_ v: [Float]) -> [Float] {
        let n = Enrollment.dot(v, v).squareRoot()
        return n > 0 ? v.map { $0 / n } : v
    }

    /// Every window's embedding and whether it is loud, through the pipeline's decoder and adapter.
    public func embeddings(wav bytes: [UInt8], name: String) throws -> [(embedding: [Float], loud: Bool)] {
        let (rate, samples) = try heard(wav: bytes, name: name)
        return try embeddings(samples: samples, rate: rate, name: name)
    }

    /// A clip as the pipeline hears it: decoded, and resampled to the model's rate.
    func heard(wav bytes: [UInt8], name: String) throws -> (rate: Int, samples: [Float]) {
        let frame: TimedFrame
        do { frame = try pipeline.decoder.decode(bytes, receivedAt: 0) } catch {
            throw EnrollError("\(name): \(error.message)")
        }
        guard case .audio(let inRate, var samples) = frame.frame, inRate > 0 else { throw EnrollError("\(name): not audio") }
        let rate = pipeline.model.metadataInt("vigil.sample_rate") ?? inRate
        if inRate != rate {
            var r = Resampler(from: inRate, to: rate)
            samples = r.process(samples)
        }
        return (rate, samples)
    }

    func embeddings(samples heard: [Float], rate: Int, name: String) throws -> [(embedding: [Float], loud: Bool)] {
        var samples = heard
        let window = pipeline.model.metadataInt("vigil.window") ?? pipeline.model.inputShape.last ?? samples.count
        // A clip shorter than a window is heard as the sound followed by silence.
        if samples.count < window { samples += [Float](repeating: 0, count: window - samples.count) }
        let adapter = pipeline.makeAdapter(device: "enroll")
        var inputs: [ModelInput]
        do { inputs = try adapter.inputs(for: TimedFrame(frame: .audio(sampleRate: rate, samples: samples), ts: 0)) } catch {
            throw EnrollError("\(name): \(error.message)")
        }
        while adapter.hasMoreInputs {
            let more = adapter.moreInputs()
            if more.isEmpty { break }
            inputs += more
        }
        guard !inputs.isEmpty else { throw EnrollError("\(name): too short for one window of \(window) samples") }
        var out: [(embedding: [Float], loud: Bool)] = []
        let dbs = inputs.map { Enroller.loudestFrameDB($0.values) }
        let top = dbs.max() ?? -100
        guard top >= Enroller.silenceDB else {
            throw EnrollError(String(format: "%@: no sound in it (its loudest 25 ms reach %.0f dBFS, under %.0f): check that the microphone is on and record closer to the sound",
                                     name, top, Enroller.silenceDB))
        }
        for start in stride(from: 0, to: inputs.count, by: 4) {
            let part = Array(inputs[start..<min(inputs.count, start + 4)])
            let run = try pipeline.model.run(batch: part)
            for (i, e) in run.embeddings.enumerated() { out.append((e, dbs[start + i] >= top - Enroller.loudDB)) }
        }
        return out
    }

    /// The loudest 25 ms frame's energy in dB (as Models/training/sound_data.frame_db).
    static func loudestFrameDB(_ x: [Float]) -> Float {
        var best: Float = -100
        var i = 0
        while i + 400 <= x.count {
            var s: Float = 0
            for j in i..<i + 400 { s += x[j] * x[j] }
            best = max(best, 10 * log10(s / 400 + 1e-10))
            i += 400
        }
        return best
    }

    /// The unit mean of a clip's loud windows (all its windows if none is loud).
    static func prototype(_ ws: [(embedding: [Float], loud: Bool)]) -> [Float] {
        let loud = ws.filter(\.loud).map(\.embedding)
        let use = loud.isEmpty ? ws.map(\.embedding) : loud
        var mean = [Float](repeating: 0, count: use[0].count)
        for e in use { for i in mean.indices { mean[i] += e[i] } }
        return Enroller.unit(mean)
    }

    /// The enrollment of `clips` (name, WAV bytes) under `label`.
    public func enroll(label: String, kind: Enrollment.Kind, clips: [(name: String, wav: [UInt8])], source: String,
                       margin: Double = Enroller.defaultMargin) throws -> Result {
        guard !clips.isEmpty else { throw EnrollError("no clips given") }
        var windows: [[(embedding: [Float], loud: Bool)]] = []
        var heard: [(name: String, wav: [UInt8])] = []
        // Per clip: its prototype, then one per altered copy (a positive enrollment's only).
        var byClip: [[[Float]]] = []
        let alterations = kind == .positive ? ClipAlteration.positive : []
        for c in clips {
            let (rate, samples) = try self.heard(wav: c.wav, name: c.name)
            let own = try embeddings(samples: samples, rate: rate, name: c.name)
            windows.append(own)
            heard.append((c.name, WAV.pcm16(sampleRate: rate, samples: samples)))
            var protos = [Enroller.prototype(own)]
            for alteration in alterations {
                // A copy the alteration left without sound (a high-pass of a low hum) is skipped:
                // the clip itself passed the silence check, and a silent copy would match silence.
                if let copy = try? embeddings(samples: alteration.apply(samples, rate: rate), rate: rate, name: c.name) {
                    protos.append(Enroller.prototype(copy))
                }
            }
            byClip.append(protos)
        }
        var e = Enrollment(pipeline: pipeline.name, label: label, kind: kind,
                           modelVersion: pipeline.model.version, prototypes: byClip.flatMap { $0 }, threshold: 1, source: source)
        let report = clips.indices.map { k -> Clip in
            var others = e
            others.prototypes = byClip.enumerated().filter { $0.offset != k }.flatMap(\.element)
            let loud = windows[k].filter(\.loud)
            let match = others.prototypes.isEmpty ? nil : loud.map { others.similarity($0.embedding) }.max()
            return Clip(name: clips[k].name, windows: windows[k].count, loudWindows: loud.count, matchByOthers: match)
        }
        let bgMax = background.map { e.similarity($0) }.max() ?? 0
        let floor = kind == .ignore ? Enroller.ignoreFloor : Enroller.positiveFloor(clipMatches: report.compactMap(\.matchByOthers))
        // A threshold cut by the cap would sit under the margin above everyday audio (an all-zero
        // clip: background best match 0.997, threshold 0.995): the label would alert on the
        // background itself. (A --margin above the default may be cut: the threshold still clears
        // the background by the default.) An ignore like the background only silences, so it may stand.
        let needed = bgMax + min(margin, Enroller.defaultMargin)
        if kind == .positive && needed > Enroller.maxThreshold {
            throw EnrollError(String(format: "the clips sound like the model's everyday background audio (best match %.3f with one of its %d windows; a threshold needs %.3f, over the highest, %.3f): \"%@\" would alert on ordinary sound. Record the sound itself, closer, with less else around it",
                                     bgMax, background.count, needed, Enroller.maxThreshold, label))
        }
        e.threshold = min(Enroller.maxThreshold, max(bgMax + margin, floor))
        var result = Result(enrollment: e, clips: report, backgroundWindows: background.count, backgroundMax: bgMax, floor: floor)
        let kept = EnrollmentLog.KeptClips(margin: margin, clips: heard)
        result.kept = kept.bytes <= EnrollmentLog.KeptClips.maxBytes ? kept : nil
        if kind == .ignore && !alarms.isEmpty {
            let sims = alarms.map { e.similarity($0) }
            result.alarmWindows = sims.count
            result.alarmWindowsSilenced = sims.filter { $0 >= e.threshold }.count
            result.alarmBestMatch = sims.max()
        }
        return result
    }
}

public struct EnrollError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
