import Foundation

/// A configured pipeline bound to its model: how to decode its payloads, how to make the
/// per-device stream state that turns frames into model inputs, and how to name scores.
public final class Pipeline: Sendable {
    public let settings: PipelineSettings
    public let model: Model
    public let decoder: any PayloadDecoder
    /// Names of the model's scores (its `vigil.labels`, or the pipeline's `labels_file`).
    public let labels: [String]
    /// `label_groups` as indices into `labels`; when set, detections carry group scores only.
    public let groups: [(name: String, members: [Int])]
    /// What one model input looks like, for logs and `vigilctl`: e.g. "windows of 16000
    /// samples at 16000 Hz, hop 8000".
    public let inputDescription: String
    let adapterFactory: @Sendable (_ device: String) -> any StreamAdapter
    /// Sounds a household taught this pipeline (Enrollment/), scored from each window's
    /// embedding; nil when the model has no embedding output or nothing is wired in.
    let enrollments: EnrollmentBook?
    /// The score at which the pipeline's rule raises: an enrolled sound's threshold is mapped onto it.
    let enrolledBar: Double
    /// How each device adapts an enrolled sound's threshold to its own audio (`DeviceCalibration`).
    public let calibration: DeviceCalibration.Settings

    /// A fresh stream adapter for one device (a stateful model's adapter starts from the
    /// device's saved baseline, when there is one; a camera's masks and min_area can be per device).
    func makeAdapter(device: String = "") -> any StreamAdapter { adapterFactory(device) }

    public var name: String { settings.name }

    /// The label of a one-score model's detection whose score is under the model's threshold.
    public static let belowThresholdLabel = "normal"

    /// The names detections of this pipeline carry scores for, in order: the groups when
    /// `label_groups` is set, else the labels. (What alert rules should read as the
    /// pipeline's labels; the first is the background when there are several.)
    public var scoreLabels: [String] { groups.isEmpty ? labels : groups.map(\.name) }

    /// The labels alert rules see, first the background they skip when `alert.labels` is
    /// empty (the model's first label: `still`, `normal`). Every group is something the user
    /// asked to detect, so a grouped pipeline has no background: an empty name stands first.
    public var ruleLabels: [String] { groups.isEmpty ? labels : [""] + groups.map(\.name) }

    init(settings: PipelineSettings, model: Model, decoder: any PayloadDecoder, labels: [String],
         groups: [(name: String, members: [Int])], inputDescription: String,
         makeAdapter: @escaping @Sendable (String) -> any StreamAdapter, enrollments: EnrollmentBook? = nil) {
        self.settings = settings; self.model = model; self.decoder = decoder; self.labels = labels
        self.groups = groups; self.inputDescription = inputDescription; self.adapterFactory = makeAdapter
        self.enrollments = model.embedding == nil ? nil : enrollments
        enrolledBar = settings.alert?.applying(modelThreshold: model.threshold).minScore ?? model.threshold ?? 0.5
        let window = model.metadataInt("vigil.window") ?? model.inputShape.last ?? 15600
        let rate = model.metadataInt("vigil.sample_rate") ?? settings.sampleRate ?? 16000
        let hop = settings.hop?.samples(window: window) ?? max(1, window / 2)
        calibration = DeviceCalibration.chosen(hopSeconds: Double(hop) / Double(max(1, rate)))
    }

    /// Tasks each kind of pipeline can feed; `classifier` and `score` fit anything.
    static func tasks(for format: PayloadFormat) -> Set<String>? {
        switch format {
        case .pgm, .gray8: ["motion", "classifier", "score"]
        case .wav, .pcm_s16le: ["sound", "classifier", "score"]
        case .json: ["anomaly", "classifier", "score"]
        case .f32le: nil
        }
    }

    /// Checks the pipeline against its model and builds it; the error names pipeline,
    /// model and mismatch, so vigild can refuse to start with one clear line.
    /// `limits` bound what one payload may cost (JSON keys, clock skew, audio windows per run).
    /// `book`: where a stateful anomaly model's per-device baselines are loaded from and
    /// published to (nil: they live only in memory).
    public static func build(_ s: PipelineSettings, model: Model, limits: LimitSettings = LimitSettings(),
                             book: BaselineBook? = nil, enrollments: EnrollmentBook? = nil) throws -> Pipeline {
        func mismatch(_ why: String) -> PipelineError {
            PipelineError(pipeline: s.name, model: model.name, message: why)
        }
        if let allowed = tasks(for: s.format), !allowed.contains(model.task) {
            throw mismatch("the model's vigil.task is \(model.task), which a \(s.format.rawValue) pipeline cannot feed (needs one of \(allowed.sorted().joined(separator: ", ")))")
        }
        let (labels, groups) = try resolveLabels(s, model: model, mismatch)
        // An alert label that no score carries would silently never fire.
        let named = groups.isEmpty ? labels : groups.map(\.name)
        if named.contains(EventGate.summaryLabel) {
            throw mismatch("the label \"\(EventGate.summaryLabel)\" is reserved for the summary rows of store \"events\" (rename it in labels_file or label_groups)")
        }
        for (i, l) in (s.alert?.labels ?? []).enumerated() where !named.contains(l) {
            throw mismatch("alert.labels[\(i)] \"\(l)\" is not one of the pipeline's \(groups.isEmpty ? "labels" : "label_groups") (\(named.prefix(12).joined(separator: ", "))\(named.count > 12 ? ", ..." : ""))")
        }
        func make(_ decoder: any PayloadDecoder, _ description: String,
                  _ adapter: @escaping @Sendable (String) -> any StreamAdapter) -> Pipeline {
            Pipeline(settings: s, model: model, decoder: decoder, labels: labels, groups: groups,
                     inputDescription: description, makeAdapter: adapter, enrollments: enrollments)
        }
        let shape = model.inputShape
        switch s.format {
        case .f32le:
            let input: [Int]
            if let given = s.shape {
                input = [1] + given
                if let n = model.inputElementCount, n != given.reduce(1, *) {
                    throw mismatch("shape \(given) holds \(given.reduce(1, *)) values but the model's input \(model.input) takes \(n)")
                }
            } else {
                guard model.inputElementCount != nil else {
                    throw mismatch("the model's input \(model.input) has free dimensions: set \"shape\" in the pipeline")
                }
                input = shape
            }
            let count = input.reduce(1, *)
            return make(F32LEDecoder(expectedCount: count), "vectors of \(count) values as \(input)") { _ in DirectAdapter(shape: input) }

        case .json:
            let f = s.fields.count
            let window: Int
            switch shape.count {
            case 2:
                if shape[1] >= 0, shape[1] != f {
                    throw mismatch("\(f) fields but the model's input \(model.input) takes \(shape[1]) values")
                }
                if let w = s.window, w != 1 {
                    throw mismatch("window \(w) but the model's input \(model.input) takes one reading")
                }
                window = 1
            case 3:
                if shape[2] >= 0, shape[2] != f {
                    throw mismatch("\(f) fields but the model's input \(model.input) takes \(shape[2]) per reading")
                }
                let meta = model.metadataInt("vigil.window")
                if shape[1] >= 0 {
                    for (what, w) in [("window", s.window), ("vigil.window", meta)] {
                        if let w, w != shape[1] { throw mismatch("\(what) \(w) but the model's input \(model.input) takes \(shape[1]) readings") }
                    }
                    window = shape[1]
                } else if let w = s.window ?? meta, w > 0 {
                    window = w
                } else {
                    throw mismatch("the model's input \(model.input) leaves the number of readings free: set \"window\" in the pipeline")
                }
            default:
                throw mismatch("a json pipeline feeds [1, fields] or [1, window, fields], the model's input is \(model.input)")
            }
            let input = shape.count == 2 ? [1, f] : [1, window, f]
            let skew = limits.maxClockSkew
            guard let state = model.stateInput else {
                if s.baseline != nil { throw mismatch("\"baseline\" is set but the model takes no baseline (no vigil.state input)") }
                return make(JSONFieldsDecoder(fields: s.fields, maxClockSkew: skew, maxKeys: limits.maxJSONKeys), "windows of \(window) readings of \(f) fields") { _ in
                    SensorWindowAdapter(shape: input, window: window, fields: f, maxClockSkew: skew)
                }
            }
            if state.shape[2] >= 0, state.shape[2] != f {
                throw mismatch("\(f) fields but the model's baseline input \(state) takes \(state.shape[2])")
            }
            let settings = s.baseline ?? BaselineSettings()
            for k in settings.minScale.keys where !s.fields.contains(k) {
                throw mismatch("baseline.min_scale.\(k) is not one of the pipeline's fields")
            }
            let layout = model.stateLayout, names = s.fields, pipelineName = s.name
            let perDay = s.alert?.maxFalseAlarmsPerDay ?? AlertSettings.defaultFalseAlarmsPerDay
            let description = "windows of \(window) readings of \(f) fields, with each device's baseline (horizon \(Int(settings.horizonSeconds)) s, warm-up \(Int(settings.warmupSeconds)) s, budget \(perDay) false alarms a day)"
            return make(JSONFieldsDecoder(fields: s.fields, maxClockSkew: skew, maxKeys: limits.maxJSONKeys), description) { device in
                SensorWindowAdapter(shape: input, window: window, fields: f, maxClockSkew: skew, anomaly: AnomalyState(
                    settings: settings, layout: layout, fieldNames: names, window: window, falseAlarmsPerDay: perDay,
                    book: book, key: BaselineBook.Key(pipeline: pipelineName, device: device)))
            }

        case .wav, .pcm_s16le:
            // One dimension holds the samples; every other is 1 (batch, channel).
            let long = shape.indices.filter { shape[$0] != 1 }
            guard long.count == 1, let at = long.first else {
                throw mismatch("an audio pipeline feeds a window of mono samples ([1, N]), the model's input is \(model.input)")
            }
            let meta = model.metadataInt("vigil.window")
            let window: Int
            if shape[at] > 0 {
                if let meta, meta != shape[at] { throw mismatch("vigil.window \(meta) but the model's input \(model.input) takes \(shape[at]) samples") }
                window = shape[at]
            } else if let meta, meta > 0 {
                window = meta
            } else {
                throw mismatch("the model's input \(model.input) leaves the window length free and vigil.window does not set it")
            }
            guard let rate = model.metadataInt("vigil.sample_rate") ?? s.sampleRate else {
                throw mismatch("the model does not state vigil.sample_rate: set \"sample_rate\" in the pipeline to the rate it takes")
            }
            if s.format == .pcm_s16le, let given = s.sampleRate, given != rate, !s.resample {
                throw mismatch("sample_rate \(given) Hz but the model takes \(rate) Hz: send \(rate) Hz or set \"resample\": true")
            }
            let hop = s.hop?.samples(window: window) ?? max(1, window / 2)
            guard hop <= window else { throw mismatch("hop of \(hop) samples is longer than the model's window of \(window)") }
            var audioShape = shape
            audioShape[at] = window
            let input = audioShape
            let resample = s.resample
            let decoder: any PayloadDecoder = s.format == .wav ? WAVDecoder() : PCMS16LEDecoder(sampleRate: s.sampleRate!)
            // A long chunk is windowed ~1 MB of windows at a time (AudioWindowAdapter says why).
            let maxWindows = max(1, (4 * Pipeline.batchInputBytes) / (window * 4))
            return make(decoder, "windows of \(window) samples at \(rate) Hz, hop \(hop)") { _ in
                AudioWindowAdapter(shape: input, window: window, hop: hop, rate: rate, resample: resample, maxWindows: maxWindows)
            }

        case .pgm, .gray8:
            // [1, C, H, W] with C = 2 (previous, current), 1 or 3 (grey repeated); or [1, H, W].
            guard shape.count == 4 || shape.count == 3 else {
                throw mismatch("a camera pipeline feeds [1, C, H, W] or [1, H, W], the model's input is \(model.input)")
            }
            let channels = shape.count == 4 ? shape[1] : 1
            guard [1, 2, 3].contains(channels) || (model.metadata["vigil.channels"] != nil && (1...8).contains(channels)) else {
                throw mismatch("the model's input \(model.input) has \(channels) channels; a camera pipeline feeds 1 (grey), 2 (previous, current) or 3 (grey as RGB), or what vigil.channels names")
            }
            var h = shape[shape.count - 2], w = shape[shape.count - 1]
            if let frame = model.metadata["vigil.frame"] {
                let parts = frame.lowercased().split(separator: "x").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard parts.count == 2, parts[0] > 0, parts[1] > 0 else { throw mismatch("vigil.frame \"\(frame)\" is not HxW") }
                if (h >= 0 && h != parts[0]) || (w >= 0 && w != parts[1]) {
                    throw mismatch("vigil.frame \(frame) but the model's input is \(model.input)")
                }
                (h, w) = (parts[0], parts[1])
            }
            guard h > 0, w > 0 else {
                throw mismatch("the model's input \(model.input) leaves the image size free and vigil.frame (HxW) does not set it")
            }
            var imageShape = shape
            imageShape[imageShape.count - 2] = h
            imageShape[imageShape.count - 1] = w
            let input = imageShape, width = w, height = h
            let decoder: any PayloadDecoder = s.format == .pgm
                ? PGMDecoder(maxWidth: s.maxWidth, maxHeight: s.maxHeight)
                : Gray8Decoder(width: s.width!, height: s.height!)
            let roles = try cameraChannels(model, count: channels, mismatch)
            let motion = (s.motion ?? MotionSettings()).applying(model: model.metadata)
            let weightValue = try motionWeight(model, roles: roles, motion: motion, mismatch)
            if roles.contains(.background), s.alert != nil, s.alert!.labels.isEmpty, labels.contains(ImageAdapter.lightingLabel) {
                throw mismatch("set alert.labels (e.g. [\"motion\"]): this model's \(ImageAdapter.lightingLabel) label marks whole-frame changes it re-baselines on, not events")
            }
            let what = roles == [.previous, .current] ? "pairs of \(w)x\(h) grey frames (area-averaged)"
                : roles == CameraChannel.defaults(channels) ? "\(w)x\(h) grey frames (area-averaged)"
                : "\(w)x\(h) grey frames (area-averaged) as \(roles.map(\.rawValue).joined(separator: ", "))"
                  + (roles.contains(.background) ? "; background over \(JSONValue.format(motion.backgroundSeconds!)) s"
                    + (motion.backgroundHold! > 1 ? " (x\(JSONValue.format(motion.backgroundHold!)) where the frame differs)" : "")
                    + (motion.ghostSeconds! != MotionSettings.defaultGhostSeconds ? ", ghosts healed after \(JSONValue.format(motion.ghostSeconds!)) s" : "")
                    + (motion.align! ? ", view aligned" + (motion.alignBand > 0 ? " (its invented border, \(motion.alignBand) px, unweighted)" : "") : "")
                    + (motion.movingThroughLighting && roles.contains(.moving) ? ", moving held through one lighting frame" : "")
                    + ", activity over \(JSONValue.format(motion.activitySeconds!)) s" : "")
            return make(decoder, what) { device in
                ImageAdapter(shape: input, width: width, height: height, channels: roles, motion: motion, pipeline: s.name, device: device,
                             weightValue: weightValue(device))
            }
        }
    }

    /// The role of each input channel of a camera model: its `vigil.channels`, else the
    /// defaults by count (1 grey, 2 previous + current, 3 grey as RGB).
    static func cameraChannels(_ model: Model, count: Int, _ mismatch: (String) -> PipelineError) throws -> [CameraChannel] {
        guard let text = model.metadata["vigil.channels"] else { return CameraChannel.defaults(count)! }
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard names.count == count else {
            throw mismatch("vigil.channels names \(names.count) channels but the model's input \(model.input) has \(count)")
        }
        return try names.map { n in
            guard let c = CameraChannel(rawValue: n) else {
                throw mismatch("vigil.channels: \"\(n)\" is not one of \(CameraChannel.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return c
        }
    }

    /// The weight channel's value per device: the model's `vigil.min_area` over the
    /// device's `min_area` (1 without one). Masks and min_area need a weight channel.
    static func motionWeight(_ model: Model, roles: [CameraChannel], motion: MotionSettings,
                             _ mismatch: (String) -> PipelineError) throws -> @Sendable (String) -> Float {
        guard roles.contains(.weight) else {
            if motion.usesWeight {
                throw mismatch("motion.masks and motion.min_area need a model with a weight channel (vigil.channels), this one takes \(roles.map(\.rawValue).joined(separator: ", "))")
            }
            return { _ in 1 }
        }
        let base = model.metadata["vigil.min_area"].flatMap(Double.init)
        if motion.usesWeight, motion.minArea != nil || motion.devices.values.contains(where: { $0.minArea != nil }) {
            guard let base, base > 0 else { throw mismatch("motion.min_area needs the model's vigil.min_area (its own minimum area), which it does not state") }
        }
        return { device in
            guard let base, let m = motion.resolved(for: device).minArea else { return 1 }
            return Float(base / m)
        }
    }

    /// The labels scores are named by, and `label_groups` as indices into them.
    static func resolveLabels(_ s: PipelineSettings, model: Model, _ mismatch: (String) -> PipelineError) throws
        -> ([String], [(name: String, members: [Int])]) {
        var labels = model.labels
        if let file = s.labelsFile {
            do { labels = try LabelsFile.read(file) } catch { throw mismatch("\(error)") }
            if let n = model.outputCount, labels.count != n {
                throw mismatch("labels_file \(file) names \(labels.count) labels but the model's output \(model.outputs[0]) has \(n) scores")
            }
        }
        var groups: [(name: String, members: [Int])] = []
        for g in s.labelGroups {
            var members: [Int] = []
            for m in g.members {
                guard let i = labels.firstIndex(of: m) else {
                    let near = labels.filter { $0.lowercased().contains(m.lowercased()) }.prefix(3)
                    throw mismatch("label_groups.\(g.name): \"\(m)\" is not one of the model's \(labels.count) labels"
                                   + (near.isEmpty ? "" : " (did you mean \(near.map { "\"\($0)\"" }.joined(separator: ", "))?)"))
                }
                members.append(i)
            }
            groups.append((g.name, members))
        }
        return (labels, groups)
    }

    /// Runs the model on one input and names the winning label (or group).
    func detect(_ input: ModelInput, device: String) throws -> Detection {
        let r = try model.run(input)
        return try detection(r.scores, embedding: r.embedding, latencyMs: r.latencyMs, input: input, device: device)
    }

    /// Input bytes one batched run may hold. ONNX Runtime keeps the intermediate tensors of
    /// the largest run it has seen, and they grow with the batch: sound in runs of 32 added
    /// 27 MB of peak RSS per concurrent run (runs of 4: 3 MB) and was no faster per window
    /// than runs of 8 (228 against 204 µs), while 32 anomaly windows are only 16 KB.
    static let batchInputBytes = 256 << 10

    /// Runs the model on several inputs (of any devices) and names each one's winner, in
    /// order. When the model has a free batch dimension the inputs share runs of at most
    /// `maxBatch` inputs and `batchInputBytes`; a run that fails is retried one input at a
    /// time, so an error is charged to the input that caused it and never to its neighbours.
    func detect(batch: [(input: ModelInput, device: String)], maxBatch: Int = 32) -> [Result<Detection, FrameError>] {
        func one(_ item: (input: ModelInput, device: String)) -> Result<Detection, FrameError> {
            do { return .success(try detect(item.input, device: item.device)) } catch { return .failure(Pipeline.frameError(error, model: model)) }
        }
        let perRun = min(maxBatch, Pipeline.batchInputBytes / max(1, (batch.first?.input.values.count ?? 1) * 4))
        guard model.batchable, batch.count > 1, perRun > 1 else { return batch.map(one) }
        var results: [Result<Detection, FrameError>] = []
        results.reserveCapacity(batch.count)
        var start = 0
        while start < batch.count {
            let part = batch[start..<min(batch.count, start + perRun)]
            start += part.count
            guard let run = try? model.run(batch: part.map(\.input)) else {
                results += part.map(one)
                continue
            }
            for (k, item) in part.enumerated() {
                do { results.append(.success(try detection(run.scores[k], embedding: run.embeddings[k], latencyMs: run.latencyMs, input: item.input, device: item.device))) }
                catch { results.append(.failure(Pipeline.frameError(error, model: model))) }
            }
        }
        return results
    }

    static func frameError(_ error: any Error, model: Model) -> FrameError {
        (error as? FrameError) ?? FrameError(.inferenceFailed, "model \(model.name): \(error)")
    }

    /// Names the winning label (or group) of one input's raw scores.
    ///
    /// A group scores the highest of its members' scores: members are alternative names
    /// for one event in a multi-label classifier, so the group fires exactly when one of
    /// them would have fired alone and the model's calibrated threshold keeps its meaning;
    /// a sum would exceed 1 and grow with the number of members, a mean would dilute one
    /// confident member among quiet ones.
    func detection(_ raw: [Float], embedding: [Float] = [], latencyMs ms: Double, input: ModelInput, device: String) throws(FrameError) -> Detection {
        guard !raw.isEmpty else { throw FrameError(.inferenceFailed, "model \(model.name) returned no scores") }
        guard allFinite(raw) else { throw FrameError(.inferenceFailed, "model \(model.name) returned NaN or Inf scores") }
        var named: [(String, Double)]
        if groups.isEmpty {
            named = raw.enumerated().map { i, v in (i < labels.count ? labels[i] : "class\(i)", Double(v)) }
        } else {
            named = groups.map { g in
                var best = -Float.infinity
                for i in g.members where i < raw.count { best = max(best, raw[i]) }
                return (g.name, Double(best.isFinite ? best : 0))
            }
        }
        let oneScore = named.count == 1
        var enrolledFrom: Int?
        if let enrollments, !embedding.isEmpty {
            let list = enrollments.enrollments(pipeline: name)
            if !list.isEmpty { enrolledFrom = applyEnrollments(list, embedding: embedding, device: device, to: &named) }
        }
        var best = 0
        for i in named.indices where named[i].1 > named[best].1 { best = i }
        // A one-score model (anomaly) would name every row after its only label; below the
        // model's own threshold the row says `normal`, so `--label anomaly` finds anomalies.
        // The score and `scores` are unchanged, and rules read scores, not this label.
        let label = oneScore && named[0].1 < (model.threshold ?? 0.5) ? Pipeline.belowThresholdLabel : named[best].0
        let uuid = input.identity == 0 ? RowID.make() : RowID.derived(ts: input.ts, identity: input.identity)
        var d = Detection(uuid: uuid, ts: input.ts, pipeline: name, device: device, model: model.name,
                          label: label, score: named[best].1, scores: named, latencyMs: ms)
        d.enrolledFrom = enrolledFrom
        return d
    }

    /// Scores one window's embedding against the pipeline's enrollments: a matching `ignore`
    /// enrollment sets every score the rule could alert on to 0, the enrolled labels' too (the
    /// log keeps what the rule saw); each `positive` label is appended with its similarity mapped
    /// onto the rule's bar (`Enrollment.score`) at the threshold in force on `device` (its online
    /// calibration, `DeviceCalibration`). Returns where the appended scores start, nil when none was.
    func applyEnrollments(_ list: [Enrollment], embedding: [Float], device: String, to named: inout [(String, Double)]) -> Int? {
        let ignored = list.contains(where: { $0.kind == .ignore && $0.similarity(embedding) >= $0.threshold })
        if ignored {
            // Without groups the first label is the background ("normal"), which stays.
            for i in named.indices where !(groups.isEmpty && i == 0) { named[i].1 = 0 }
        }
        let from = named.count
        for e in list where e.kind == .positive {
            let sim = e.similarity(embedding)
            let (bar, run) = enrollments?.observe(e, pipeline: name, device: device, similarity: sim, embedding: embedding, calibration) ?? (e.threshold, calibration.forFrames)
            var s = e.score(similarity: sim, minScore: enrolledBar, threshold: bar)
            // Not yet forFrames windows in a row at the bar: scored just under it.
            if run < calibration.forFrames { s = min(s, enrolledBar.nextDown) }
            // A false alarm of an enrolled sound is ignored like one of the model's
            // (`vigilctl enroll --ignore --from-alert` on a "kettle" alert): it was not, before.
            if ignored { s = 0 }
            if let i = named[from...].firstIndex(where: { $0.0 == e.label }) { named[i].1 = max(named[i].1, s) } else { named.append((e.label, s)) }
        }
        return named.count > from ? from : nil
    }
}

public struct PipelineError: Error, CustomStringConvertible, Sendable {
    public let pipeline: String
    public let model: String
    public let message: String
    public var description: String { "pipeline \"\(pipeline)\" with model \"\(model)\": \(message)" }
}
