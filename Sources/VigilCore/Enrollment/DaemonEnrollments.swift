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
            let (version, all, bad) = try store.loadEnrollments()
            for uuid in bad { log.warning("enrollment \(uuid): unreadable row in the log; skipped") }
            let pipelines = Dictionary(engine.pipelines.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            let usable = all.filter { e in
                guard let p = pipelines[e.pipeline] else {
                    log.warning("enrollment \(e.label) (\(e.uuid)): no pipeline \(e.pipeline) in the config; skipped")
                    return false
                }
                guard p.model.embedding != nil else {
                    log.warning("enrollment \(e.label) (\(e.uuid)): pipeline \(e.pipeline)'s model \(p.model.name) has no embedding output; skipped")
                    return false
                }
                let version = p.model.metadata["vigil.version"] ?? ""
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
}
