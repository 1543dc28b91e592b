import Foundation
import SQLite

/// The `baselines` table, written through the store's one writer (its queue).
extension LogWriter {
    /// Upserts snapshots; `reset_at` (set by `vigilctl baseline reset`) is left as it is.
    public func saveBaselines(_ rows: [(key: BaselineBook.Key, snapshot: BaselineSnapshot)], now: Double = Date().timeIntervalSince1970) {
        guard !rows.isEmpty else { return }
        queue.async { [self] in
            do {
                try db.transaction {
                    for r in rows {
                        let s = r.snapshot
                        _ = try db.query("""
                            INSERT INTO baselines(pipeline, device, updated_at, readings, warm, warmup, threshold, stuck, state)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                            ON CONFLICT(pipeline, device) DO UPDATE SET updated_at = excluded.updated_at,
                                readings = excluded.readings, warm = excluded.warm, warmup = excluded.warmup,
                                threshold = excluded.threshold, stuck = excluded.stuck, state = excluded.state
                            """, [.text(r.key.pipeline), .text(r.key.device), .real(now), .integer(Int64(s.baseline.readings)),
                                  .integer(s.warm ? 1 : 0), .real(s.warmupProgress), s.threshold.map { .real($0) } ?? .null,
                                  .text(s.stuckFields.joined(separator: ",")), .text(s.json)])
                    }
                }
            } catch {
                log.limited(.error, key: "store-baselines", "store \(path): cannot save \(rows.count) baselines: \(error)")
            }
        }
    }

    /// Every saved baseline; rows whose reset was asked for while vigild was down are deleted
    /// instead (their devices start afresh).
    public func loadBaselines() -> [(key: BaselineBook.Key, snapshot: BaselineSnapshot)] {
        queue.sync {
            do {
                _ = try db.query("DELETE FROM baselines WHERE reset_at IS NOT NULL")
                return try db.query("SELECT pipeline, device, state FROM baselines").compactMap { row in
                    guard let p = row[0].string, let d = row[1].string, let text = row[2].string,
                          let s = BaselineSnapshot.decode(text) else { return nil }
                    return (BaselineBook.Key(pipeline: p, device: d), s)
                }
            } catch {
                log.error("store \(path): cannot read the saved baselines (devices start afresh): \(error)")
                return []
            }
        }
    }

    /// Resets asked for by `vigilctl baseline reset`: handed to `book`, then marked done.
    public func takeBaselineResets(into book: BaselineBook) {
        queue.async { [self] in
            do {
                let rows = try db.query("SELECT pipeline, device, reset_at FROM baselines WHERE reset_at IS NOT NULL")
                for row in rows {
                    guard let p = row[0].string, let d = row[1].string, let at = row[2].double else { continue }
                    book.requestReset(BaselineBook.Key(pipeline: p, device: d))
                    // Only the request seen: one made since stays for the next poll.
                    _ = try db.query("UPDATE baselines SET reset_at = NULL WHERE pipeline = ? AND device = ? AND reset_at <= ?",
                                     [.text(p), .text(d), .real(at)])
                    log.notice("pipeline \(p), device \(d): baseline reset asked for (vigilctl baseline reset)")
                }
            } catch {
                log.limited(.warning, key: "store-baseline-resets", "store \(path): cannot read baseline resets: \(error)")
            }
        }
    }
}
