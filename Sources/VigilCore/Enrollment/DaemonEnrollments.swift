import Foundation

extension Daemon {
    /// Loads the log's enrollments into the book the pipelines score against, when the log's
    /// change counter moved since the last load (vigilctl enroll / unenroll wrote), or always
    /// when `force` (start, SIGHUP). An enrollment made with another version of its pipeline's
    /// model, or for a pipeline whose model has no embedding, is skipped with a warning. One
    /// whose label the enroll command now refuses (stored by an older vigilctl, or written into
    /// the log by hand) stays in use, with a warning: skipping it would silently end the alerts
    /// the user set up, and the warning says how to mend it.
    func refreshEnrollments(force: Bool = false) {
        do {
            if !force, try store.enrollmentChangeCounter() == enrollments.version { return }
            let (version, loaded, bad) = try store.loadEnrollments()
            for uuid in bad { log.warning("enrollment \(uuid): unreadable row in the log; skipped") }
            let pipelines = Dictionary(engine.pipelines.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            let all = loaded.map { e in
                guard let p = pipelines[e.pipeline], p.model.embedding != nil, e.modelVersion != p.model.version else { return e }
                return reenrolled(e, on: p) ?? e
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

    /// An enrollment made with another version of `pipeline`'s model, enrolled again from the
    /// clips vigilctl kept beside it (with the margin it was made with) and put in its place in
    /// the log: a model upgrade keeps the household's sounds. Nil when no clips were kept or the
    /// new model refuses them (logged; the old one is then skipped as before). A log that cannot
    /// be written to does not stop it: the re-enrollment is used, and stored at a later start.
    func reenrolled(_ e: Enrollment, on pipeline: Pipeline) -> Enrollment? {
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
            log.warning("enrollment \(e.label) (\(e.uuid)): made with model version \(e.modelVersion); its kept clips cannot be enrolled for version \(version): \((error as? EnrollError)?.message ?? "\(error)") (skipped: enroll it again)")
            return nil
        }
        do {
            try store.withDatabase { db in try EnrollmentLog.replace([e.uuid], with: r.enrollment, kept: r.kept ?? kept, in: db) }
        } catch {
            // In use all the same (the sound still alerts); stored at the next start that can write.
            log.warning("enrollment \(e.label): cannot store its re-enrollment for model version \(version) in \(store.path): \(error) (in use until vigild stops)")
        }
        // Logged once stored: what the log says is what the enrollments table holds.
        log.notice(String(format: "enrollment %@ (%@): made with model version %@; enrolled again from its %d kept clip%@ for version %@: uuid %@, threshold %.3f (was %.3f)",
                          e.label, e.uuid, e.modelVersion, kept.clips.count, kept.clips.count == 1 ? "" : "s", version, r.enrollment.uuid,
                          r.enrollment.threshold, e.threshold))
        if r.alarmWindowsSilenced > 0 {
            // vigilctl would have asked for --force; the user chose this ignore before, so it stands.
            log.warning("ignore \(e.label) (\(r.enrollment.uuid)): with model version \(version) it also silences \(r.alarmWindowsSilenced) of the \(r.alarmWindows) real smoke-alarm windows shipped with the model (vigilctl unenroll \(r.enrollment.uuid) if alarms matter more)")
        }
        return r.enrollment
    }
}
