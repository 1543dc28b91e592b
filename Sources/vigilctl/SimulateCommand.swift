import Foundation
import VigilCore
import VigilTools

/// `vigilctl simulate`: synthetic sensor traffic for demos and benchmarks.
enum SimulateCommand {
    static let command = Command(
        name: "simulate",
        summary: "Publish synthetic sensor traffic to a broker: camera frames (PGM), audio chunks (WAV), environment readings (JSON), float vectors (f32le).",
        options: [
            Option(name: "--broker", short: "-b", value: "HOST:PORT", help: "the broker (default: mqtt.host and mqtt.port of --config, else 127.0.0.1:1883)"),
            Option(name: "--config", short: "-c", value: "FILE", help: "vigild's config, for the broker address (default \(Config.defaultPath))"),
            Option(name: "--username", value: "USER", help: "broker user name"),
            Option(name: "--password-file", value: "FILE", help: "read the broker password from FILE"),
            Option(name: "--devices", short: "-D", value: "N", help: "simulated devices (default 1)"),
            Option(name: "--kinds", short: "-k", value: "LIST", help: "camera,audio,env,vector (default camera,audio,env)"),
            Option(name: "--rate", short: "-r", value: "RATE", help: "messages/s per device and kind: one number for all, or camera=5,audio=2,env=1 (defaults: camera 5, audio 2, env 1, vector 10)"),
            Option(name: "--duration", short: "-t", value: "TIME", help: "stop after TIME (seconds, or 90s, 15m, 2h; default: until Ctrl-C)"),
            Option(name: "--count", value: "N", help: "stop after N messages per device and kind"),
            Option(name: "--topic-prefix", value: "PREFIX", help: "publish to PREFIX/DEVICE/KIND (default sensors)"),
            Option(name: "--device-prefix", value: "NAME", help: "devices are NAME-001, NAME-002... (default sim)"),
            Option(name: "--size", value: "WxH", help: "camera frame size: 160x120 (default) or 320x240, or any WxH"),
            Option(name: "--chunk", value: "SECONDS", help: "audio chunk length (default 0.5)"),
            Option(name: "--sample-rate", value: "HZ", help: "audio sample rate (default 16000; mono 16-bit)"),
            Option(name: "--time-scale", value: "X", help: "env: simulated seconds per real second, so the daily curve shows in a demo (default 1)"),
            Option(name: "--vector-size", value: "N", help: "vector: floats per message (default 4)"),
            Option(name: "--object-every", value: "SECONDS", help: "camera: mean gap between objects crossing (default 8)"),
            Option(name: "--sound-every", value: "SECONDS", help: "audio: mean gap between alarm, glass and bell events (default 20)"),
            Option(name: "--anomaly-every", value: "N", help: "env: mean readings between injected spikes, drifts and stuck runs (default 300)"),
            Option(name: "--seed", value: "N", help: "random seed: the same seed sends the same traffic (default 1)"),
            Option(name: "--qos", value: "Q", help: "MQTT QoS 0, 1 (default) or 2"),
            Option(name: "--max-inflight", value: "N", help: "unacknowledged QoS 1/2 messages in flight (default 1000)"),
            Option(name: "--truth", value: "FILE", help: "write the injected events as JSON lines: device, kind, event, first and last message index, start and end in sensor seconds"),
            Option(name: "--dump", value: "DIR", help: "write the payloads into DIR (one file each, in send order) instead of publishing; needs --count or --duration"),
            Option(name: "--quiet", short: "-q", help: "no progress lines, only the summary"),
        ],
        details: """
            Camera frames show a textured room with noise, lighting steps (lights switched) and now and
            then a person-sized blob crossing; audio chunks hold room noise with occasional smoke-alarm
            beeps (3.1 kHz, T3 pattern), breaking glass or a door bell; env readings follow a daily curve
            with noise and injected spikes, drifts and stuck values: {"temperature":..,"humidity":..,"ts":..}.
            Sends are paced against absolute deadlines; progress goes to stderr each second and a summary
            to stdout at the end. Exit status 0 when every message was acknowledged, 1 when some were not,
            4 when the broker could not be reached.

            examples:
              vigilctl simulate --devices 3 --duration 60
              vigilctl simulate --kinds camera --size 160x120 --rate 100 --devices 20 -t 30s
            """,
        run: run)

    static func run(_ a: Arguments) throws -> Int32 {
        var s = SimulatorSettings()
        // The daemon's broker, so `vigilctl simulate` on a gateway feeds its own vigild.
        if a.string("--broker") == nil, let (_, root) = try Shared.rawConfig(a) {
            if let host = root["mqtt"]?["host"]?.string { s.host = host }
            if let port = root["mqtt"]?["port"]?.double, (1...65535).contains(port) { s.port = Int(port) }
        }
        if let b = a.string("--broker") {
            guard let colon = b.lastIndex(of: ":"), let port = Int(b[b.index(after: colon)...]), (1...65535).contains(port),
                  colon != b.startIndex else {
                throw UsageError("--broker: expected HOST:PORT, got \"\(b)\"")
            }
            s.host = String(b[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            s.port = port
        }
        s.username = a.string("--username")
        if let pf = a.string("--password-file") {
            guard let data = FileManager.default.contents(atPath: pf) else { throw Failure("--password-file: cannot read \(pf)") }
            s.password = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
        }
        // Each camera keeps its own background (19 KB at 160x120): 10000 devices is ~190 MB.
        s.devices = try a.int("--devices", in: 1...10_000) ?? 1
        if a.string("--kinds") != nil {
            var kinds: [SensorKind] = []
            for k in a.list("--kinds") {
                guard let kind = SensorKind(rawValue: k) else {
                    throw UsageError("--kinds: unknown kind \"\(k)\" (expected \(SensorKind.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                if !kinds.contains(kind) { kinds.append(kind) }
            }
            guard !kinds.isEmpty else { throw UsageError("--kinds: name at least one kind") }
            s.kinds = kinds
        }
        if let r = a.string("--rate") {
            for part in r.split(separator: ",") {
                let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                let valueText = kv.count == 2 ? kv[1] : kv[0]
                guard let v = Double(valueText), v.isFinite, v > 0, v <= 1_000_000 else {
                    throw UsageError("--rate: expected messages per second above 0, got \"\(valueText)\"")
                }
                if kv.count == 2 {
                    guard let kind = SensorKind(rawValue: kv[0]) else {
                        throw UsageError("--rate: unknown kind \"\(kv[0])\" (expected \(SensorKind.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    s.rates[kind] = v
                } else {
                    for k in SensorKind.allCases { s.rates[k] = v }
                }
            }
        }
        s.duration = try a.seconds("--duration")
        if let d = s.duration, d <= 0 { throw UsageError("--duration: must be above 0") }
        s.count = try a.int("--count", in: 1...Int(Int32.max))
        if let p = a.string("--topic-prefix") {
            guard !p.isEmpty, !p.contains(where: { $0 == "+" || $0 == "#" }) else {
                throw UsageError("--topic-prefix: must be a topic without + or #, got \"\(p)\"")
            }
            s.topicPrefix = p.hasSuffix("/") ? String(p.dropLast()) : p
        }
        if let p = a.string("--device-prefix") {
            guard !p.isEmpty, !p.contains(where: { "/+#".contains($0) }) else {
                throw UsageError("--device-prefix: must be a name without /, + or #, got \"\(p)\"")
            }
            s.devicePrefix = p
        }
        if let size = a.string("--size") {
            let wh = size.lowercased().split(separator: "x").compactMap { Int($0) }
            guard wh.count == 2, (16...4096).contains(wh[0]), (16...4096).contains(wh[1]) else {
                throw UsageError("--size: expected WIDTHxHEIGHT such as 160x120 or 320x240, each from 16 to 4096, got \"\(size)\"")
            }
            (s.cameraWidth, s.cameraHeight) = (wh[0], wh[1])
        }
        s.audioChunkSeconds = try a.double("--chunk", in: 0.01...10) ?? s.audioChunkSeconds
        s.sampleRate = try a.int("--sample-rate", in: 8000...192_000) ?? s.sampleRate
        s.envTimeScale = try a.double("--time-scale", in: 0.001...1_000_000) ?? s.envTimeScale
        s.vectorSize = try a.int("--vector-size", in: 1...1_000_000) ?? s.vectorSize
        s.meanObjectGap = try a.double("--object-every", in: 0.1...1_000_000) ?? s.meanObjectGap
        s.meanSoundGap = try a.double("--sound-every", in: 0.1...1_000_000) ?? s.meanSoundGap
        s.envAnomalyEvery = try a.double("--anomaly-every", in: 1...1_000_000_000) ?? s.envAnomalyEvery
        if let seed = a.string("--seed") {
            guard let v = UInt64(seed) else { throw UsageError("--seed: expected a whole number ≥ 0, got \"\(seed)\"") }
            s.seed = v
        }
        s.qos = Int32(try a.int("--qos", in: 0...2) ?? 1)
        s.maxInflight = try a.int("--max-inflight", in: 1...1_000_000) ?? s.maxInflight

        var truthFile: FileHandle?
        if let t = a.string("--truth") {
            guard FileManager.default.createFile(atPath: t, contents: nil), let h = FileHandle(forWritingAtPath: t) else {
                throw Failure("--truth: cannot write \(t)")
            }
            truthFile = h
        }
        let quiet = a.flag("--quiet")
        let stop = stopOnSignals()
        let sim = Simulator(settings: s)
        if !quiet && a.string("--dump") == nil {
            sim.progress = { r in FileHandle.standardError.write(Data((r.progressLine + "\n").utf8)) }
            let kinds = s.kinds.map { "\($0.rawValue) \(fmt(s.rates[$0] ?? 0))/s" }.joined(separator: ", ")
            warn("simulating \(s.devices) device(s) (\(kinds) each) to \(s.address) under \(s.topicPrefix)/\(s.deviceName(0))/…, \(fmt(s.totalRate)) msg/s in total")
        }
        if let truthFile {
            sim.truth = { e in truthFile.write(Data((e.json.serialized + "\n").utf8)) }
        }
        if let dir = a.string("--dump") {
            guard s.count != nil || s.duration != nil else { throw UsageError("--dump needs --count or --duration") }
            let report: SimulatorReport
            do { report = try sim.dump(to: dir) } catch { throw Failure("\(error)") }
            try? truthFile?.close()
            out("wrote \(report.sent) payloads (\(String(format: "%.1f", Double(report.bytes) / 1_048_576)) MB) to \(dir)\n")
            out(report.machineLine + "\n")
            return ExitCode.ok
        }
        let report: SimulatorReport
        do {
            report = try sim.run(stop: stop)
        } catch let e as SimulatorError {
            throw Failure(e.message, status: ExitCode.broker)
        } catch {
            throw Failure("\(error)", status: ExitCode.broker)
        }
        try? truthFile?.close()
        out(report.summary(address: s.address))
        if s.duration != nil || s.count != nil, report.rate < 0.95 * s.totalRate, report.elapsed > 1 {
            warn(String(format: "could not keep up: %.1f of %.1f msg/s (lag up to %.0f ms)", report.rate, s.totalRate, report.maxLag * 1000))
        }
        return (s.qos == 0 || report.acked == report.sent) && report.failed == 0 ? ExitCode.ok : ExitCode.failure
    }
}
