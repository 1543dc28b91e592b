import Foundation
import MQTT
import VigilCore

/// `vigil-bench --evidence`: what evidence costs (issue 21), in one run, as ratios to the work a
/// frame costs anyway. Per frame: the engine (route, hash, decode, adapt, the shipped model,
/// rules sink) with and without the evidence ring, and the ring's `keep` alone. Per alert: making
/// and writing its evidence (encode, archive, file, row), in frames' worth of work.
func evidenceBench(dir: String, frames: Int) throws {
    let models = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Models").standardizedFileURL.path
    var limits = LimitSettings()
    limits.workers = 1

    struct Kind {
        let name: String
        let settings: PipelineSettings
        let model: String
        let payload: (Int) -> [UInt8]
    }
    func pgm(_ i: Int) -> [UInt8] {
        var p = Array("P5\n160 120\n255\n".utf8)
        var x = UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15
        for y in 0..<120 {
            for c in 0..<160 {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17
                p.append(UInt8(truncatingIfNeeded: (c + y) / 2 + Int(x % 8) + (i % 50 == 0 && c > 60 && c < 100 ? 90 : 0)))
            }
        }
        return p
    }
    func wav(_ i: Int) -> [UInt8] {
        func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xff) } }
        var data: [UInt8] = []
        for k in 0..<8000 {
            let v = Int16(2000 * sin(Double(i * 8000 + k) * 0.05))
            let u = UInt16(bitPattern: v)
            data += [UInt8(u & 0xff), UInt8(u >> 8)]
        }
        return Array("RIFF".utf8) + le32(36 + data.count) + Array("WAVEfmt ".utf8) + le32(16) + [1, 0, 1, 0] + le32(16000) + le32(32000)
            + [2, 0, 16, 0] + Array("data".utf8) + le32(data.count) + data
    }
    func json(_ i: Int) -> [UInt8] { Array("{\"temperature\":\(20 + Double(i % 17) / 10),\"humidity\":\(45 + Double(i % 7))}".utf8) }

    let kinds = [
        Kind(name: "camera 160x120", settings: PipelineSettings(name: "camera", topic: TopicPattern("s/{device}/camera")!, format: .pgm, model: "motion"),
             model: "motion", payload: pgm),
        Kind(name: "audio 0.5 s 16 kHz", settings: PipelineSettings(name: "audio", topic: TopicPattern("s/{device}/audio")!, format: .wav, model: "sound"),
             model: "sound", payload: wav),
        Kind(name: "env reading", settings: PipelineSettings(name: "env", topic: TopicPattern("s/{device}/env")!, format: .json, model: "anomaly",
                                                              fields: ["temperature", "humidity"]),
             model: "anomaly", payload: json),
    ]
    print("evidence (issue 21): engine per frame with 1 worker, the shipped models, 4 devices; the ring's keep alone; one alert's evidence written to \(dir)")
    for k in kinds {
        let model = try Model(name: k.model, path: models + "/\(k.model).onnx", threads: 1)
        let pipeline = try Pipeline.build(k.settings, model: model, limits: limits)
        let n = k.model == "anomaly" ? frames * 10 : frames
        let payloads = (0..<64).map(k.payload)
        // The engine as vigild runs it, without then with evidence; run alternately, best of 3 each.
        func engineRun(evidence: EvidenceRecorder?) -> Double {
            let engine = Engine(pipelines: [pipeline], limits: limits, counters: Counters(), evidence: evidence) { _ in }
            let t0 = Date()
            for i in 0..<n {
                engine.submit(MQTTMessage(topic: "s/dev\(i % 4)/\(k.settings.name)", payload: payloads[i % payloads.count],
                                          receivedAt: 1_800_000_000 + Double(i) * 0.1))
            }
            engine.stop()
            return Date().timeIntervalSince(t0) / Double(n)
        }
        var without = Double.infinity, with = Double.infinity
        let recorder = EvidenceRecorder(pipelines: [k.settings], deviceTTL: 3600) { _ in }
        for _ in 0..<3 {
            without = min(without, engineRun(evidence: nil))
            with = min(with, engineRun(evidence: recorder))
        }
        // keep() alone, on decoded frames.
        let decoded = try payloads.map { try pipeline.decoder.decode($0, receivedAt: 1_800_000_000) }
        let keeper = EvidenceRecorder(pipelines: [k.settings], deviceTTL: 3600) { _ in }
        let m = n * 4
        let t0 = Date()
        for i in 0..<m {
            var f = decoded[i % decoded.count]
            f.ts = 1_800_000_000 + Double(i) * 0.1
            keeper.keep(f, pipeline: k.settings.name, device: "dev\(i % 4)")
        }
        let keep = Date().timeIntervalSince(t0) / Double(m)
        // One alert's evidence: the window the defaults keep at 5 camera frames/s, 2 audio chunks/s, 1 reading/s.
        let ev = k.settings.evidenceSettings
        let rate = k.model == "motion" ? 5.0 : k.model == "sound" ? 2.0 : 1.0
        let count = Int(((ev.beforeSeconds + ev.afterSeconds) * rate).rounded()) + 1
        let window = (0..<count).map { i -> TimedFrame in
            var f = decoded[i % decoded.count]
            f.ts = 1_800_000_000 + Double(i) / rate
            return f
        }
        var storage = StorageSettings()
        storage.path = dir + "/evidence-\(k.model).db"
        storage.evidenceMB = 512
        let store = try Store(settings: storage)
        let kept = EvidenceStore(settings: storage, store: store)
        let alerts = 20
        let t1 = Date()
        for a in 0..<alerts {
            let e = AlertEvent(ts: 1_800_000_000 + ev.beforeSeconds, node: "bench", pipeline: k.settings.name, device: "dev\(a)",
                               state: .raised, label: "x", score: 0.9, severity: "warning")
            kept.write(EvidenceCapture(alert: e, kind: k.settings.kind, fields: k.settings.fields, frames: window,
                                       beforeSeconds: ev.beforeSeconds, afterSeconds: ev.afterSeconds))
            kept.flush()
        }
        let perAlert = Date().timeIntervalSince(t1) / Double(alerts)
        let bytes = kept.usage.bytes / max(1, kept.usage.alerts)
        store.close()
        print(String(format: "  %-20@ frame %7.1f µs without evidence, %7.1f µs with (%+.1f%%); keep() alone %.2f µs = %.2f%% of a frame; "
                     + "one alert's evidence (%d frames, %d KB) %.2f ms = %.0f frames' worth",
                     k.name, without * 1e6, with * 1e6, (with / without - 1) * 100, keep * 1e6, keep / without * 100,
                     count, bytes / 1024, perAlert * 1e3, perAlert / without))
    }
}
