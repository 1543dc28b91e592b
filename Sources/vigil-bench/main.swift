import Foundation
import SQLite
import VigilCore

/// vigil-bench: sustained insert rate of the SQLite log, batched (the Store as vigild runs it)
/// against one transaction per row, on the same schema, pragmas and disk. Prints figures;
/// asserts nothing (machines are noisy). Usage: vigil-bench [--rows N] [--dir DIR]
/// `--evidence [--frames N]`: the cost of alert evidence instead (EvidenceBench.swift);
/// `--wav`: what each WAV sample format costs the decoder (WAVBench.swift).
var rows = 50_000
var base = NSTemporaryDirectory()
var evidenceOnly = false
var benchFrames = 4000
var args = CommandLine.arguments.dropFirst()
if args.first == "--baseline" {
    // The anomaly baseline's per-device cost (issue #17 targets: < 1 KB per field, < 5 µs per reading).
    for fields in [1, 2, 8, 32] {
        _ = BaselineCost.measure(fields: fields, readings: 20_000)   // warm-up
        let r = BaselineCost.measure(fields: fields, readings: 200_000)
        print(String(format: "baseline, %2d fields: %6.0f ns per reading (%.0f ns per field); memory %d B per field + %d B per device (budget histogram); saved as %d B of JSON",
                     fields, r.nsPerReading, r.nsPerReading / Double(fields), r.bytesPerField, r.bytesPerDevice, r.jsonBytes))
    }
    exit(0)
}
if args.first == "--wav" {
    try wavBench()
    exit(0)
}
while let a = args.popFirst() {
    switch a {
    case "--rows": rows = Int(args.popFirst() ?? "") ?? rows
    case "--dir": base = args.popFirst() ?? base
    case "--evidence": evidenceOnly = true
    case "--frames": benchFrames = Int(args.popFirst() ?? "") ?? benchFrames
    default:
        FileHandle.standardError.write(Data("usage: vigil-bench [--rows N] [--dir DIR] [--evidence [--frames N]] | --baseline | --wav\n".utf8))
        exit(2)
    }
}
log.setLevel(.warning)
let dir = URL(fileURLWithPath: base).appendingPathComponent("vigil-bench-\(UUID().uuidString.prefix(8))").path
try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: dir) }
if evidenceOnly {
    try evidenceBench(dir: dir, frames: benchFrames)
    try? FileManager.default.removeItem(atPath: dir)
    exit(0)
}

func detection(_ i: Int) -> Detection {
    Detection(ts: 1_700_000_000 + Double(i) * 0.01, pipeline: "camera", device: "cam\(i % 8)", model: "motion",
              label: i % 3 == 0 ? "motion" : "still", score: 0.8, scores: [("still", 0.2), ("motion", 0.8)], latencyMs: 3.2)
}

func settings(_ name: String) -> StorageSettings {
    var s = StorageSettings()
    s.path = dir + "/\(name).db"
    s.maxSizeMB = 4096
    return s
}

let made = (0..<rows).map(detection)   // built before the clock starts

// Batched: the Store with its defaults (a commit every 100 ms or 500 rows).
let batchedSettings = settings("batched")
let store = try Store(settings: batchedSettings)
var start = Date()
for d in made { store.append(d) }
store.flush()
let batchedSeconds = Date().timeIntervalSince(start)
// A sync batch as the cloud receives it, and what gzip makes of it.
let batch = Array(JSONValue.array(try store.unsynced(limit: 100, node: "gateway-01").map(\.record)).serialized.utf8)
start = Date()
var gz: [UInt8] = []
for _ in 0..<20 { gz = Gzip.compress(batch) }
let gzipSeconds = Date().timeIntervalSince(start) / 20
store.close()

// One transaction per row: the same schema and pragmas (opened by a Store), the same SQL.
let perRowCount = max(1, rows / 5)
let perRowStore = try Store(settings: settings("per-row"))
let perRowSeconds = try perRowStore.withDatabase { db -> Double in
    let insert = try db.prepare("""
        INSERT OR IGNORE INTO detections(uuid, ts, pipeline, device, model, label, score, scores, latency_ms)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        """)
    let t0 = Date()
    for d in made.prefix(perRowCount) {
        try db.transaction {
            try insert.run([.text(d.uuid), .real(d.ts), .text(d.pipeline), .text(d.device), .text(d.model),
                            .text(d.label), .real(d.score), .text(d.scoresJSON), .real(d.latencyMs)])
        }
    }
    return Date().timeIntervalSince(t0)
}
perRowStore.close()

let batchedRate = Double(rows) / batchedSeconds
let perRowRate = Double(perRowCount) / perRowSeconds
print("SQLite \(Database.libraryVersion), WAL, synchronous=NORMAL, \(dir)")
print(String(format: "batched (commit every %d ms or %d rows): %9.0f rows/s  (%d rows in %.2f s)",
             batchedSettings.commitIntervalMs, batchedSettings.commitRows, batchedRate, rows, batchedSeconds))
print(String(format: "one transaction per row:                   %9.0f rows/s  (%d rows in %.2f s)",
             perRowRate, perRowCount, perRowSeconds))
print(String(format: "ratio: batched is %.1fx one transaction per row", batchedRate / perRowRate))
print(String(format: "sync batch of 100 detections: %d bytes JSON, %d gzipped (%.1fx), %.1f MB/s",
             batch.count, gz.count, Double(batch.count) / Double(gz.count), Double(batch.count) / gzipSeconds / 1e6))

// The intake journal (issue 14): what one message costs before it may be acknowledged, per
// payload size and durability level, on the disk under --dir. The frame hash is included
// (the engine computes it anyway, for row ids).
print("intake journal (one write per message; power: and one fdatasync), on \(dir):")
let payloads: [(String, Int)] = [("env reading", 120), ("audio chunk 0.5 s", 16_044), ("camera frame 160x120", 19_217)]
for (name, size) in payloads {
    let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    let topic = "sensors/dev1/x"
    var perLevel: [String] = []
    for level in [Durability.process, .power] {
        let n = level == .power ? 300 : (size < 1000 ? 50_000 : 5_000)
        let jdir = dir + "/intake-\(level.rawValue)-\(size)"
        let journal = try IntakeJournal(directory: jdir, durability: level, maxBytes: 1 << 30)
        _ = journal.recover(retired: [])
        let t0 = Date()
        for i in 0..<n {
            let hash = FrameHash.frame(topic: topic, payload: payload)
            _ = try journal.append(topic: topic, payload: payload, mid: Int32(i & 0xFFFF), receivedAt: Double(i), hash: hash)
        }
        let us = Date().timeIntervalSince(t0) / Double(n) * 1e6
        perLevel.append(String(format: "%@ %.1f µs", level.rawValue, us))
        try? FileManager.default.removeItem(atPath: jdir)
    }
    let t0 = Date()
    var h: UInt64 = 0
    for _ in 0..<2000 { h ^= FrameHash.frame(topic: "sensors/dev1/x", payload: payload) }
    let hashUs = Date().timeIntervalSince(t0) / 2000 * 1e6
    print(String(format: "  %-22@ %6d bytes: %@ per message (of which the frame hash %.2f µs)%@",
                 name, size, perLevel.joined(separator: ", "), hashUs, h == 42 ? " " : ""))
}
