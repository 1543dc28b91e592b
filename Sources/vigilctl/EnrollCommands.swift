import Foundation
import VigilCore
import VigilTools

/// `vigilctl enroll / enrolled / unenroll`: teach a sound pipeline a household's own sounds,
/// or a recurring false alarm to ignore (issue 18; Enrollment/ in VigilCore).
enum EnrollCommands {
    static let label = Option(name: "--label", short: "-l", value: "NAME", help: "what the sound is called (the alert's label)")
    static let ignore = Option(name: "--ignore", help: "a recurring false alarm: windows like these never alert")
    static let fromAlert = Option(name: "--from-alert", value: "UUID", help: "take the clip from an alert's evidence (its WAV)")
    static let margin = Option(name: "--margin", value: "X", help: "threshold = highest background similarity + X (default \(Enroller.defaultMargin)), at least a floor that follows how alike the clips are (\(Enroller.positiveFloorRange.lowerBound)-\(Enroller.positiveFloorRange.upperBound); --ignore: \(Enroller.ignoreFloor))")
    static let pipeline = Option(name: "--pipeline", short: "-p", value: "NAME", help: "the sound pipeline (default: the only one, or the alert's)")
    static let force = Option(name: "--force", help: "--ignore: store it even though it would also silence real alarm sounds the model ships")
    static let add = Option(name: "--add", help: "add these clips to the sound already enrolled under --label (from its kept clips), in its place; with no clips, enroll the kept ones again")

    static let enroll = Command(
        name: "enroll", summary: "Teach a sound pipeline a sound from a few clips (WAV), or a false alarm to ignore.",
        positionals: "[WAV|TAR...]", positionalRange: 0...64,
        options: [label, pipeline, ignore, add, fromAlert, margin, force, Shared.db, Shared.config],
        details: """
            Each clip goes through the pipeline's decoder and model as vigild would hear it; the
            prototype of a clip is the mean embedding of its loud windows; a sound to alert on
            also gets one per altered copy of each clip (faster, slower, other tones). The threshold is set
            just above the best match among the model's background sounds. A running vigild picks
            the enrollment up within 2 s. An enrolled sound alerts through the pipeline's alert
            rule (min_score, for_frames, cooldown), whatever alert.labels lists; --ignore makes
            every alerting label score 0 on windows like the clips. An ignore that would also
            silence a real alarm (the smoke-alarm windows shipped beside the model,
            vigil.embedding_alarms) is refused unless --force.
            examples:
              vigilctl enroll --label kettle kettle1.wav kettle2.wav kettle3.wav
              vigilctl enroll --ignore --label microwave-beep beep.wav
              vigilctl enroll --ignore --from-alert 0190f3c2-...   # it was a false alarm
              vigilctl enroll --label cat-flap --from-alert 0190f3c2-...
              vigilctl enroll --label kettle --add kettle-tuesday.wav   # one it missed (enrolled --try)
              vigilctl enroll --label kettle --add   # made again from its kept clips, as this vigilctl makes it
              vigilctl enroll --label kettle kettle.tar   # another node's (vigilctl enrolled --clips kettle --output kettle.tar)
            """,
        run: runEnroll)

    static let enrolled = Command(
        name: "enrolled", summary: "List the sounds enrolled with vigilctl enroll.",
        options: [Shared.pipeline, devices, trial, trialDevice, clipsOf, clipsOutput, Shared.format] + Shared.tableOptions + [Shared.db, Shared.config],
        details: """
            --devices lists, per device and sound, the near misses the device
            remembers (windows that came close without reaching the bar) and the
            bar a window like an enrolled clip meets there, as vigild last saved
            them (every baseline.snapshot_s if they changed, and at stop).
            --try plays a recording through the sound pipeline as vigild would hear
            it in one message, and says per enrollment whether it would alert (or
            silence): its best window's similarity, the bar in force there, and how
            many windows reached it. A device that heard nothing yet has the enrolled
            threshold as its bar; --device starts from what that device has learnt.
            --clips writes out the clips kept with one enrollment (a tar of 16 kHz
            WAVs, as the pipeline heard them): to hear what was enrolled, or to
            enroll the same sound on another node. On a terminal without --output
            they are listed.
            examples:
              vigilctl enrolled --try kettle-tuesday.wav
              vigilctl enrolled --try kettle-tuesday.wav --device kitchen
              vigilctl enrolled --clips kettle --output kettle.tar && tar xf kettle.tar
            """,
        run: runEnrolled)
    static let devices = Option(name: "--devices", help: "per device: how close its everyday sound comes, and the threshold in force")
    static let trial = Option(name: "--try", value: "WAV", help: "would this recording alert? each enrollment's verdict on it")
    static let clipsOf = Option(name: "--clips", value: "ID|LABEL", help: "write out the clips kept with this enrollment (a tar of WAVs; --output FILE)")
    // No -o: here it is --format's, as in every listing.
    static let clipsOutput = Option(name: "--output", value: "FILE", help: "with --clips: write here (- for stdout); default: stdout when it is not a terminal")
    static let trialDevice = Option(name: "--device", value: "NAME", help: "with --try: at the bar this device has learnt (its saved near misses)")

    static let unenroll = Command(
        name: "unenroll", summary: "Remove enrollments by uuid (or its first 8+ characters) or by label.",
        positionals: "ID|LABEL", positionalRange: 1...1,
        options: [Shared.pipeline, Shared.db, Shared.config], run: runUnenroll)

    static func runEnroll(_ a: Arguments) throws -> Int32 {
        let alertUUID = a.string("--from-alert")?.lowercased()
        if let alertUUID, !RowID.isUUID(alertUUID) { throw UsageError("--from-alert: expected an alert uuid, got \"\(alertUUID)\"") }
        // --add with no clips enrolls the kept clips again: an enrollment made by an older
        // vigilctl (before altered copies) is then made the way this one makes it.
        if alertUUID == nil && a.positionals.isEmpty && !a.flag("--add") { throw UsageError("give WAV files, or --from-alert UUID") }
        var margin = try a.double("--margin", in: 0...1) ?? Enroller.defaultMargin
        let kind: Enrollment.Kind = a.flag("--ignore") ? .ignore : .positive
        let path = try Shared.databasePath(a)
        var clips: [(name: String, wav: [UInt8])] = []
        var pipelineName = a.string("--pipeline")
        var label = a.string("--label")
        if let alertUUID {
            let reader = try Shared.openLog(a)
            guard let alertLabel = try reader.alertLabel(alertUUID) else { throw Failure("no raised alert \(alertUUID) in \(reader.path)") }
            guard let row = try reader.evidence(alertUUID) else {
                throw Failure("alert \(alertUUID) has no evidence (none kept, or evicted): nothing to learn from")
            }
            guard let data = FileManager.default.contents(atPath: row.file), let entries = Tar.entries(Array(data)) else {
                throw Failure("cannot read the evidence of alert \(alertUUID) at \(row.file) (permission, or evicted)")
            }
            guard let wav = entries.first(where: { $0.name.hasSuffix(".wav") }) else {
                throw Failure("alert \(alertUUID)'s evidence holds no sound (\(entries.map(\.name).joined(separator: ", ")))")
            }
            if let p = pipelineName, p != row.pipeline { throw UsageError("--pipeline \(p), but alert \(alertUUID) is from pipeline \(row.pipeline)") }
            pipelineName = row.pipeline
            // An ignore is named after the false alarm it stops, unless told otherwise.
            if label == nil, kind == .ignore { label = alertLabel }
            clips.append(("alert \(alertUUID)", wav.bytes))
        }
        guard let label, !label.isEmpty else { throw UsageError("--label NAME is needed (what the sound is called)") }
        // Only a sound to alert on becomes an alert's label; an ignore is named after any alert
        // (AudioSet's "Vehicle horn, car horn, honking" included).
        if kind == .positive, let problem = Enrollment.labelProblem(label) { throw UsageError("--label \"\(label.prefix(80))\" \(problem)") }
        for file in a.positionals {
            let bytes = try Shared.readFile(file)
            // A tar from `enrolled --clips` (another node's kept clips) stands for its WAVs.
            if file.hasSuffix(".tar") {
                guard let entries = Tar.entries(bytes), case let wavs = entries.filter({ $0.name.hasSuffix(".wav") }), !wavs.isEmpty else {
                    throw Failure("\(file): not a tar of WAV clips (vigilctl enrolled --clips writes one)")
                }
                clips += wavs.map { ("\(file):\($0.name)", $0.bytes) }
            } else {
                clips.append((file, bytes))
            }
        }
        let pipeline = try soundPipeline(a, named: pipelineName)
        if kind == .positive, pipeline.labels.contains(label) {
            throw UsageError("--label \(label) is one of the model's own labels; enroll under another name (or --ignore)")
        }
        // --add: the clips kept with what is enrolled under this label come first, and the
        // result takes its place (one enrollment, with one threshold over all the clips).
        var replacing: [Enrollment] = []
        if a.flag("--add") {
            replacing = try logged { try EnrollmentLog.all(path: path) }.filter { $0.pipeline == pipeline.name && $0.label == label && $0.kind == kind }
            guard !replacing.isEmpty else { throw UsageError("--add: nothing enrolled\(kind == .ignore ? " to ignore" : "") as \"\(label)\" on pipeline \(pipeline.name) to add to") }
            var before: [(name: String, wav: [UInt8])] = []
            for e in replacing {
                guard let kept = try logged({ try EnrollmentLog.keptClips(e.uuid, path: path) }) else {
                    throw Failure("--add: \"\(label)\" (\(e.uuid)) has no kept clips (\(EnrollmentLog.KeptClips.whyNoneKept)): enroll all its clips again in one command, then unenroll \(e.uuid)")
                }
                before += kept.clips.map { ("kept \($0.name) of \(e.uuid.prefix(13))", $0.wav) }
                if a.string("--margin") == nil { margin = kept.margin }
            }
            clips = before + clips
        }
        let enroller: Enroller
        let result: Enroller.Result
        do {
            enroller = try Enroller(pipeline: pipeline)
            result = try enroller.enroll(label: label, kind: kind, clips: clips,
                                         source: (replacing.map(\.source) + [alertUUID.map { "alert:" + $0 } ?? a.positionals.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ",")])
                                             .filter { !$0.isEmpty }.joined(separator: ","),
                                         margin: margin)
        } catch let e as EnrollError {
            throw Failure(e.message)
        }
        if result.alarmWindowsSilenced > 0 && !a.flag("--force") {
            throw Failure(String(format: "not enrolled: this ignore (threshold %.3f) would also silence %d of the %d real smoke-alarm windows shipped with model %@ (best match %.3f): an alarm that sounds like this would never alert. Ignore a sound further from an alarm, or pass --force to store it anyway",
                                 result.enrollment.threshold, result.alarmWindowsSilenced, result.alarmWindows, pipeline.model.name, result.alarmBestMatch ?? 0))
        }
        let kept: Bool
        if replacing.isEmpty {
            kept = try logged { try EnrollmentLog.insert(result.enrollment, path: path, kept: result.kept) }
        } else {
            try logged { try EnrollmentLog.replace(replacing.map(\.uuid), with: result.enrollment, kept: result.kept, path: path) }
            kept = result.kept != nil
        }
        let e = result.enrollment
        out("enrolled \(e.kind == .ignore ? "to ignore" : "sound") \"\(e.label)\" on pipeline \(e.pipeline): uuid \(e.uuid)"
            + (replacing.isEmpty ? "" : " (in place of \(replacing.map(\.uuid).joined(separator: ", ")))") + "\n")
        if !kept {
            warn(result.kept == nil
                 ? "the clips are not kept in the log (over \(EnrollmentLog.KeptClips.maxBytes >> 20) MB as heard): after a model upgrade, enroll them again"
                 : "the clips are not kept: \(path) predates that (start this version of vigild once); after a model upgrade, enroll them again")
        }
        for c in result.clips {
            let match = c.matchByOthers.map { String(format: ", best match by the other clips %.3f%@", $0, $0 >= e.threshold ? "" : " (below the threshold: this clip would not be recognised from the others)") } ?? ""
            out("  \(c.name): \(c.windows) windows, \(c.loudWindows) loud\(match)\n")
        }
        let range = "\(Enroller.positiveFloorRange.lowerBound)-\(Enroller.positiveFloorRange.upperBound)"
        let floorWhy = kind == .ignore ? ""
            : result.clips.count == 1 ? ": one clip says nothing of how varied the sound is, the top of \(range)"
            : ": the clips' median match to each other - \(Enroller.positiveFloorBelowClips), within \(range)"
        let copies = e.prototypes.count - result.clips.count
        let made = copies > 0 ? " (\(result.clips.count) clip\(result.clips.count == 1 ? "" : "s") and \(copies) altered cop\(copies == 1 ? "y" : "ies"), faster, slower, other tones)" : ""
        out(String(format: "  %d prototype%@%@, threshold %.3f (cosine: background best match %.3f over %d windows + margin %.3f, at least %.3f%@), model %@ version %@\n",
                   e.prototypes.count, e.prototypes.count == 1 ? "" : "s", made, e.threshold, result.backgroundMax, result.backgroundWindows, margin, result.floor,
                   floorWhy, pipeline.model.name, e.modelVersion))
        if e.kind == .ignore && result.alarmWindows > 0 {
            out(String(format: "  checked against the %d real smoke-alarm windows shipped with the model: %@ (best match %.3f)\n", result.alarmWindows,
                       result.alarmWindowsSilenced == 0 ? "none silenced" : "\(result.alarmWindowsSilenced) silenced (--force)", result.alarmBestMatch ?? 0))
        }
        out(e.kind == .ignore ? "  windows matching it score 0 on every alerting label of \(e.pipeline)\n"
                              : "  \"\(e.label)\" alerts through pipeline \(e.pipeline)'s alert rule\(pipeline.settings.alert == nil ? " (this pipeline has no alert: detections only)" : "")\n")
        return ExitCode.ok
    }

    /// The sound pipeline of the config: the named one, else the only one.
    static func soundPipeline(_ a: Arguments, named: String?) throws -> Pipeline {
        let file = a.string("--config") ?? Config.defaultPath
        let config: Config
        do { config = try Config.load(path: file) } catch { throw Failure("\(error)") }
        let sound = config.pipelines.filter { [.wav, .pcm_s16le].contains($0.format) }
        let settings: PipelineSettings
        if let named {
            guard let s = config.pipelines.first(where: { $0.name == named }) else {
                throw UsageError("--pipeline \(named): no such pipeline in \(file) (sound pipelines: \(sound.map(\.name).joined(separator: ", ")))")
            }
            settings = s
        } else {
            guard sound.count == 1 else {
                throw UsageError("\(file) has \(sound.count) sound pipelines: name one with --pipeline (\(sound.map(\.name).joined(separator: ", ")))")
            }
            settings = sound[0]
        }
        guard let m = config.model(named: settings.model) else { throw Failure("pipeline \(settings.name): no model \(settings.model)") }
        do {
            return try Pipeline.build(settings, model: try Model(name: m.name, path: m.path), limits: config.limits)
        } catch {
            throw Failure("\(error)")
        }
    }

    /// A log that cannot be opened is exit status 3, as for every query.
    static func logged<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as QueryError { throw Failure(e.message, status: ExitCode.database) }
    }

    static func runEnrolled(_ a: Arguments) throws -> Int32 {
        let format = try Shared.format(a)
        let path = try Shared.databasePath(a)
        let pipelines = a.list("--pipeline")
        let list = try logged { try EnrollmentLog.all(path: path) }.filter { pipelines.isEmpty || pipelines.contains($0.pipeline) }
        if let file = a.string("--try") { return try runTry(a, file: file, list: list, path: path) }
        if let key = a.string("--clips") { return try runClips(a, key: key, path: path) }
        if a.string("--output") != nil { throw UsageError("--output goes with --clips") }
        if format == .table, list.isEmpty {
            warn("nothing enrolled (vigilctl enroll --label NAME clip.wav ...)")
            return ExitCode.ok
        }
        if a.string("--device") != nil { throw UsageError("--device goes with --try (for every device's state: --devices)") }
        if a.flag("--devices") {
            let settings = DeviceCalibration.chosen(hopSeconds: 0)
            let byUUID = Dictionary(list.map { ($0.uuid, $0) }, uniquingKeysWith: { x, _ in x })
            let rows = try logged { try EnrollmentLog.calibrations(path: path) }.compactMap { k, c -> (EnrollmentBook.Key, Enrollment, DeviceCalibration)? in
                byUUID[k.uuid].map { (k, $0, c) }
            }.sorted { ($0.0.pipeline, $0.1.label, $0.0.device) < ($1.0.pipeline, $1.1.label, $1.0.device) }
            // in_force: the bar a window exactly like one of the enrolled clips meets on that device
            // (with near misses remembered the bar depends on the window).
            let table = ResultTable(columns: [Column("pipeline", .text), Column("label", .text), Column("device", .text),
                                              Column("enrolled", .real(decimals: 3)), Column("everyday", .real(decimals: 3)),
                                              Column("near_misses", .integer), Column("in_force", .real(decimals: 3)), Column("uuid", .text)],
                                    rows: rows.map { k, e, c in
                                        let own = e.prototypes.map { c.threshold(enrolled: e.threshold, embedding: $0, settings) }.min() ?? e.threshold
                                        return [.text(k.pipeline), .text(e.label), .text(k.device), .real(e.threshold), c.level.map { .real($0) } ?? .null,
                                                .integer(Int64(c.nearMisses.count)), .real(own), .text(e.uuid)]
                                    })
            if format == .table, rows.isEmpty { warn("no device calibration saved yet (vigild saves them every baseline.snapshot_s once a device has a near miss)") }
            out(table.render(format, style: Shared.style(a)))
            return ExitCode.ok
        }
        // kept: clips kept beside it (a model upgrade enrolls them again; 0: it would be skipped).
        // prototypes: 7 a clip for a sound to alert on (its altered copies), 1 for an ignore or one
        // made before copies; --wide only, so the uuid that unenroll takes fits 80 columns.
        let kept = try logged { try EnrollmentLog.keptCounts(path: path) }
        let table = ResultTable(columns: [Column("created", .time), Column("pipeline", .text), Column("label", .text), Column("kind", .text),
                                          Column("prototypes", .integer, inTable: false), Column("threshold", .real(decimals: 3)), Column("model_version", .text, inTable: false),
                                          Column("kept", .integer, inTable: false), Column("source", .text, inTable: false, maxWidth: 40), Column("uuid", .text)],
                                rows: list.map { e in [.real(e.created), .text(e.pipeline), .text(e.label), .text(e.kind.rawValue),
                                                       .integer(Int64(e.prototypes.count)), .real(e.threshold), .text(e.modelVersion),
                                                       .integer(Int64(kept[e.uuid] ?? 0)), .text(e.source), .text(e.uuid)] })
        out(table.render(format, style: Shared.style(a)))
        return ExitCode.ok
    }

    /// `enrolled --try WAV [--device NAME]`: EnrollmentTrial on the recording's windows.
    static func runTry(_ a: Arguments, file: String, list: [Enrollment], path: String) throws -> Int32 {
        if a.flag("--devices") { throw UsageError("--try and --devices are two views: give one") }
        let data = try Shared.readFile(file)
        let pipeline = try soundPipeline(a, named: a.string("--pipeline"))
        let version = pipeline.model.version
        let mine = list.filter { $0.pipeline == pipeline.name }
        let usable = mine.filter { $0.modelVersion == version }
        if usable.count < mine.count {
            warn("\(mine.count - usable.count) enrollment(s) made with another version of model \(pipeline.model.name) left out: vigild enrolls them again from their kept clips when it next loads them (SIGHUP, or a restart), and skips those without")
        }
        guard !usable.isEmpty else { throw Failure("nothing enrolled on pipeline \(pipeline.name) that model \(pipeline.model.name) version \(version) can use") }
        let windows: [[Float]]
        do {
            windows = try Enroller(pipeline: pipeline).embeddings(wav: data, name: file).map(\.embedding)
        } catch let e as EnrollError {
            throw Failure(e.message)
        }
        var calibrations: [String: DeviceCalibration] = [:]
        if let device = a.string("--device") {
            let saved = try logged { try EnrollmentLog.calibrations(path: path) }
            for (k, c) in saved where k.pipeline == pipeline.name && k.device == device { calibrations[k.uuid] = c }
            if calibrations.isEmpty { warn("no calibration saved for device \(device) on pipeline \(pipeline.name): judged as a device that heard nothing yet") }
        }
        let outcomes = EnrollmentTrial(pipeline: pipeline).run(usable, windows: windows, calibrations: calibrations)
        let table = ResultTable(columns: [Column("label", .text), Column("kind", .text), Column("verdict", .text), Column("best", .real(decimals: 3)),
                                          Column("bar", .real(decimals: 3)), Column("at_bar", .integer), Column("windows", .integer),
                                          Column("uuid", .text, inTable: false)],
                                rows: outcomes.map { o in
                                    [.text(o.enrollment.label), .text(o.enrollment.kind.rawValue), .text(verdict(o)), .real(o.best), .real(o.barAtBest),
                                     .integer(Int64(o.windowsAtBar)), .integer(Int64(o.windows)), .text(o.enrollment.uuid)]
                                })
        out(table.render(try Shared.format(a), style: Shared.style(a)))
        return ExitCode.ok
    }

    /// `enrolled --clips ID|LABEL [--output FILE]`: the kept clips of one enrollment, as a tar.
    static func runClips(_ a: Arguments, key: String, path: String) throws -> Int32 {
        let found: [Enrollment]
        do { found = try logged { try EnrollmentLog.matching(key, pipeline: a.list("--pipeline").first, path: path) } } catch let e as EnrollmentLog.AmbiguousKey {
            throw Failure(e.description)
        }
        guard let e = found.first else { throw Failure("no enrollment has uuid or label \(key) (vigilctl enrolled lists them)") }
        guard found.count == 1 else {
            throw Failure("\"\(key)\" names \(found.count) enrollments (\(found.map(\.uuid).joined(separator: ", "))): give one uuid")
        }
        guard let kept = try logged({ try EnrollmentLog.keptClips(e.uuid, path: path) }) else {
            throw Failure("\"\(e.label)\" (\(e.uuid)) has no kept clips: \(EnrollmentLog.KeptClips.whyNoneKept)")
        }
        let names = kept.clips.map(\.name)
        if a.string("--output") == nil && isatty(1) == 1 {
            out("\(e.kind.rawValue) \"\(e.label)\" (\(e.uuid)): \(names.count) clip\(names.count == 1 ? "" : "s") kept, \(kept.bytes) bytes: \(names.joined(separator: ", "))\n")
            warn("not writing binary data to a terminal: use --output FILE (or --output - to force stdout)")
            return ExitCode.ok
        }
        try EvidenceCommand.write(kept.archive(), to: a.string("--output") ?? "-", what: names.joined(separator: ", "))
        return ExitCode.ok
    }

    /// One phrase a user acts on: it alerts, or why not.
    static func verdict(_ o: EnrollmentTrial.Outcome) -> String {
        if o.enrollment.kind == .ignore { return o.fires ? "silences \(o.windowsAtBar)" : "no match" }
        if o.fires { return "alerts" }
        if o.windowsAtBar == 0 { return o.barAtBest > o.enrollment.threshold && o.best >= o.enrollment.threshold ? "held back by device" : "too unlike" }
        if o.ignoredAtBar == o.windowsAtBar { return "ignored" }
        return "too brief"
    }

    static func runUnenroll(_ a: Arguments) throws -> Int32 {
        let path = try Shared.databasePath(a)
        let gone: [Enrollment]
        do { gone = try logged { try EnrollmentLog.delete(a.positionals[0], pipeline: a.string("--pipeline"), path: path) } } catch let e as EnrollmentLog.AmbiguousKey {
            throw Failure(e.description)
        }
        guard !gone.isEmpty else {
            warn("no enrollment has uuid or label \(a.positionals[0]) (vigilctl enrolled lists them)")
            return ExitCode.failure
        }
        for e in gone { out("removed \(e.kind.rawValue) \"\(e.label)\" on pipeline \(e.pipeline) (\(e.uuid))\n") }
        return ExitCode.ok
    }
}
