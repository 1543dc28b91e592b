import SQLite

/// The SQLite log's schema: the contract `vigilctl` and `sqlite3` users rely on.
/// Append migrations; never edit one that has shipped.
public enum Schema {
    public static let migrator = Migrator([
        // 1: detections and alerts (DESIGN.md), with the indexes vigilctl and sync use.
        """
        CREATE TABLE detections(
            id INTEGER PRIMARY KEY,
            uuid TEXT NOT NULL UNIQUE,
            ts REAL NOT NULL,
            pipeline TEXT NOT NULL,
            device TEXT NOT NULL,
            model TEXT NOT NULL,
            label TEXT NOT NULL,
            score REAL NOT NULL,
            scores TEXT NOT NULL,
            latency_ms REAL,
            synced_at REAL
        );
        CREATE INDEX detections_ts ON detections(ts);
        CREATE INDEX detections_pipeline_device_ts ON detections(pipeline, device, ts);
        CREATE INDEX detections_unsynced ON detections(id) WHERE synced_at IS NULL;
        CREATE TABLE alerts(
            id INTEGER PRIMARY KEY,
            uuid TEXT NOT NULL UNIQUE,
            ts REAL NOT NULL,
            pipeline TEXT NOT NULL,
            device TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('raised', 'cleared')),
            label TEXT,
            score REAL,
            severity TEXT,
            actions TEXT,
            synced_at REAL
        );
        CREATE INDEX alerts_ts ON alerts(ts);
        CREATE INDEX alerts_unsynced ON alerts(id) WHERE synced_at IS NULL;
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
        """,
        // 2: alerts by pipeline and device (vigilctl alerts --pipeline/--device), as detections have.
        """
        CREATE INDEX alerts_pipeline_device_ts ON alerts(pipeline, device, ts);
        """,
        // 3: intake journal entries whose rows are committed (Intake/IntakeJournal.swift), written
        // in the same transaction as those rows; pruned when the journal deletes their segment.
        """
        CREATE TABLE intake_retired(seq INTEGER PRIMARY KEY);
        """,
        // 4: baselines (issue 17): each device's learned baseline for stateful anomaly models,
        // so a restart keeps it; `vigilctl baseline` reads it, `vigilctl baseline reset` sets
        // `reset_at` for vigild to act on. IF NOT EXISTS: this step stays harmless whatever
        // place it takes when migrations from parallel branches are merged.
        """
        CREATE TABLE IF NOT EXISTS baselines(
            pipeline TEXT NOT NULL,
            device TEXT NOT NULL,
            updated_at REAL NOT NULL,
            readings INTEGER NOT NULL,
            warm INTEGER NOT NULL,
            warmup REAL NOT NULL,
            threshold REAL,
            stuck TEXT NOT NULL,
            state TEXT NOT NULL,
            reset_at REAL,
            PRIMARY KEY (pipeline, device)
        );
        """,
        // 5 (evidence index): the evidence a raised alert kept (Evidence/EvidenceStore.swift), one
        // row per alert uuid, written only once its file is complete under its final name.
        """
        CREATE TABLE evidence(
            alert_uuid TEXT PRIMARY KEY,
            ts REAL NOT NULL,
            pipeline TEXT NOT NULL,
            device TEXT NOT NULL,
            kind TEXT NOT NULL,
            file TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            items TEXT NOT NULL,
            synced_at REAL
        );
        CREATE INDEX evidence_ts ON evidence(ts);
        """,
        // 6 (enrollments, issue 18): sounds a household taught a pipeline (Enrollment/): prototype
        // embeddings (float32 LE rows of `dim`), the calibrated cosine threshold, and where the
        // clips came from.
        """
        CREATE TABLE IF NOT EXISTS enrollments(
            id INTEGER PRIMARY KEY,
            uuid TEXT NOT NULL UNIQUE,
            created REAL NOT NULL,
            pipeline TEXT NOT NULL,
            label TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('positive', 'ignore')),
            model_version TEXT NOT NULL,
            dim INTEGER NOT NULL,
            prototypes BLOB NOT NULL,
            threshold REAL NOT NULL,
            source TEXT NOT NULL,
            synced_at REAL
        );
        """,
        // 7 (issue 18): the clips an enrollment was made from, as the pipeline heard them (a tar
        // of 16 kHz PCM16 WAVs) and the margin it was calibrated with, so a new model version
        // enrolls them again instead of skipping the household's sounds. Local only: not synced.
        """
        CREATE TABLE IF NOT EXISTS enrollment_clips(
            enrollment_uuid TEXT PRIMARY KEY,
            margin REAL NOT NULL,
            clips BLOB NOT NULL
        );
        """,
    ])
}
