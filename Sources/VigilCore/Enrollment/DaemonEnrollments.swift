import Foundation

extension Daemon {
    /// Loads the log's enrollments into the book the pipelines score against, when the log's
    /// change counter moved since the last load (vigilctl enroll / unenroll wrote), or always
    /// when `force` (start, SIGHUP). An enrollment made with another version of its pipeline's
    /// model, or by a vigilctl before altered copies, is made again from its kept clips
    /// (`reenrolled`); one that cannot be, or for a pipeline whose model has no embedding, is
    /// skipped with a warning (one from before altered copies stays in use as it is). One
    /// whose label the enroll command now refuses (stored by an older vigilctl, or written into
    /// the log by hand) stays in use, with a warning: skipping it would silently end the alerts
    /// the user set up, and the warning says how to mend it.
    func refreshEnrollments(force: Bool = false) {
        do {
            if !force, try store.enrollmentChangeCounter() == enrollments.version { return }
            let (version, loaded, bad) = try store.loadEnrollments()
            for uuid in bad { log.warning("enrollment \(uuid): unreadable row in the log; skipped") }
            let pipelines = Dictionary(engine.pipelines.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            // A sound to alert on with one prototype per kept clip was made before altered
            // copies (vigilctl makes at least 3 a clip now: the speed copies never fall silent).
            // (Unreadable kept clips do not stop the enrollments loading: none is remade then.)
            let kept = (try? store.withDatabase { db in try EnrollmentLog.keptCounts(db) }) ?? [:]
            let all = loaded.map { e in
                guard let p = pipelines[e.pipeline], p.model.embedding != nil else { return e }
                if e.modelVersion != p.model.version { return reenrolled(e, on: p, because: .modelVersion) ?? e }
                if e.kind == .positive, let n = kept[e.uuid], n > 0, e.prototypes.count == n { return reenrolled(e, on: p, because: .beforeAlteredCopies) ?? e }
                return e
            }
            let usable = all.filter { e in
                guard let p = pipelines[e.pipeline] else {
                    log.warning("enrollment \(e.label) (\(e.uuid)): no pipeline \(e.pipeline) in the config; skipped")
                    return false
                }
                guard p.model.embedding != nil else {
                    log.warning("enrollment \(e.label) (\(e.uuid)): pipeline \(e.pipeline)'s model \(p.model.name) has no embedding output; skipped")
                    return false
                }
                let version = p.model.version
                guard e.modelVersion == version else {
                    log.warning("enrollment \(e.label) (\(e.uuid)): made with model version \(e.modelVersion), pipeline \(e.pipeline) runs \(version); enroll it again (skipped)")
                    return false
                }
                return true
            }
            for e in usable where e.kind == .positive {
                guard let problem = Enrollment.labelProblem(e.label) else { continue }
                log.warning("enrollment \(e.label.debugDescription) (\(e.uuid)): the label \(problem); it still alerts, but an action's topic or command may misread it: enroll the clips again under another label, then vigilctl unenroll \(e.uuid)")
            }
            enrollments.replace(usable, version: version)
            log.notice("enrollments: \(usable.count) in use (\(usable.filter { $0.kind == .positive }.count) sounds to alert on, \(usable.filter { $0.kind == .ignore }.count) to ignore)")
        } catch {
            log.limited(.warning, key: "enrollments", "store \(store.path): cannot read enrollments (keeping the ones in use): \(error)")
        }
    }

    /// Why vigild makes an enrollment again from its kept clips.
    enum Remake {
        /// Made with another version of the pipeline's model: a model upgrade keeps the household's sounds.
        case modelVersion
        /// Made by a vigilctl before altered copies (`ClipAlteration`): it gets them.
        case beforeAlteredCopies
    }

    /// An enrollment enrolled again from the clips vigilctl kept beside it (with the margin it
    /// was made with) and put in its place in the log. Nil when no clips were kept or the model
    /// refuses them (logged; one of another model version is then skipped as before, one from
    /// before altered copies stays as it is). A log that cannot be written to does not stop it:
    /// the re-enrollment is used, and stored at a later start.
    func reenrolled(_ e: Enrollment, on pipeline: Pipeline, because why: Remake) -> Enrollment? {
        let kept: EnrollmentLog.KeptClips
        do {
            guard let k = try store.withDatabase({ db in try EnrollmentLog.keptClips(e.uuid, in: db) }) else { return nil }
            kept = k
        } catch {
            log.warning("enrollment \(e.label) (\(e.uuid)): cannot read its kept clips: \(error)")
            return nil
        }
        let version = pipeline.model.version
        let r: Enroller.Result
        do {
            r = try Enroller(pipeline: pipeline).enroll(label: e.label, kind: e.kind, clips: kept.clips, source: e.source, margin: kept.margin)
        } catch {
            let problem = (error as? EnrollError)?.message ?? "\(error)"
            switch why {
            case .modelVersion:
                log.warning("enrollment \(e.label) (\(e.uuid)): made with model version \(e.modelVersion); its kept clips cannot be enrolled for version \(version): \(problem) (skipped: enroll it again)")
            case .beforeAlteredCopies:
                log.warning("enrollment \(e.label) (\(e.uuid)): made before altered copies; its kept clips cannot be enrolled again: \(problem) (in use as it is)")
            }
            return nil
        }
        // Remade with no more prototypes than it had, it would be remade at every reload: keep it.
        if why == .beforeAlteredCopies && r.enrollment.prototypes.count <= e.prototypes.count { return nil }
        do {
            try store.withDatabase { db in try EnrollmentLog.replace([e.uuid], with: r.enrollment, kept: r.kept ?? kept, in: db) }
        } catch {
            // In use all the same (the sound still alerts); stored at the next start that can write.
            log.warning("enrollment \(e.label): cannot store its re-enrollment in \(store.path): \(error) (in use until vigild stops)")
        }
        // Logged once stored: what the log says is what the enrollments table holds.
        let clips = "\(kept.clips.count) kept clip\(kept.clips.count == 1 ? "" : "s")"
        switch why {
        case .modelVersion:
            log.notice(String(format: "enrollment %@ (%@): made with model version %@; enrolled again from its %@ for version %@: uuid %@, threshold %.3f (was %.3f)",
                              e.label, e.uuid, e.modelVersion, clips, version, r.enrollment.uuid, r.enrollment.threshold, e.threshold))
        case .beforeAlteredCopies:
            log.notice(String(format: "enrollment %@ (%@): made before altered copies; enrolled again from its %@ with them: uuid %@, %d prototypes (was %d), threshold %.3f (was %.3f)",
                              e.label, e.uuid, clips, r.enrollment.uuid, r.enrollment.prototypes.count, e.prototypes.count, r.enrollment.threshold, e.threshold))
        }
        if r.alarmWindowsSilenced > 0 {
            // vigilctl would have asked for --force; the user chose this ignore before, so it stands.
            log.warning("ignore \(e.label) (\(r.enrollment.uuid)): with model version \(version) it also silences \(r.alarmWindowsSilenced) of the \(r.alarmWindows) real smoke-alarm windows shipped with the model (vigilctl unenroll \(r.enrollment.uuid) if alarms matter more)")
        }
        return r.enrollment
    }
}
