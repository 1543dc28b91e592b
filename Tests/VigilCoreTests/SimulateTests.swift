import Foundation
import MQTT
import TestSupport
@testable import VigilCore
@testable import VigilTools
import XCTest

final class SimulateTests: XCTestCase {
    /// Parses a binary PGM: (width, height, pixels).
    func pgm(_ bytes: [UInt8]) throws -> (Int, Int, [UInt8]) {
        var fields: [String] = []
        var i = 0
        while fields.count < 4 {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A { i += 1 }
            let s = i
            while i < bytes.count, bytes[i] != 0x20, bytes[i] != 0x0A { i += 1 }
            fields.append(String(decoding: bytes[s..<i], as: UTF8.self))
        }
        i += 1
        XCTAssertEqual(fields[0], "P5")
        XCTAssertEqual(fields[3], "255")
        let w = Int(fields[1])!, h = Int(fields[2])!
        XCTAssertEqual(bytes.count - i, w * h, "header then exactly w×h bytes")
        return (w, h, Array(bytes[i...]))
    }

    func testCameraFramesAreValidPGMWithAMovingObjectAndLightingSteps() throws {
        for (w, h) in [(160, 120), (320, 240), (16, 16), (1280, 720)] {
            let (fw, fh, _) = try pgm(CameraSource(width: w, height: h, fps: 10, seed: 1).next(wallTime: 0))
            XCTAssertEqual([fw, fh], [w, h])
        }
        let cam = CameraSource(width: 160, height: 120, fps: 10, seed: 42, meanObjectGap: 3, meanLightingGap: 20)
        var frames: [[UInt8]] = []
        var events: [String?] = []
        for _ in 0..<1200 {
            frames.append(try pgm(cam.next(wallTime: 0)).2)
            events.append(cam.event)
        }
        // Frame-to-frame change: large where the object moves, small (noise only) where nothing happens.
        func change(_ k: Int) -> Double {
            var n = 0
            for i in 0..<frames[k].count where abs(Int(frames[k][i]) - Int(frames[k - 1][i])) > 25 { n += 1 }
            return Double(n)
        }
        let moving = (1..<frames.count).filter { events[$0] == "motion" && events[$0 - 1] == "motion" }
        let still = (1..<frames.count).filter { events[$0] == nil && events[$0 - 1] == nil }
        XCTAssertGreaterThan(moving.count, 50, "objects cross the view")
        XCTAssertGreaterThan(still.count, 50, "and the room is empty at other times")
        let movingChange = moving.map(change).reduce(0, +) / Double(moving.count)
        let stillChange = still.map(change).reduce(0, +) / Double(still.count)
        XCTAssertGreaterThan(movingChange, 30, "an object changes many pixels between frames")
        XCTAssertLessThan(stillChange, 5, "noise alone rarely changes a pixel by more than 25")
        // Lighting steps: the mean brightness jumps at a step and not otherwise.
        let steps = events.indices.filter { events[$0] == "lighting" && $0 > 0 }
        XCTAssertFalse(steps.isEmpty, "lights switch during two minutes of video")
        let mean = { (f: [UInt8]) in Double(f.reduce(0) { $0 + Int($1) }) / Double(f.count) }
        XCTAssertTrue(steps.contains { abs(mean(frames[$0]) - mean(frames[$0 - 1])) > 10 }, "a lighting step moves the mean")
    }

    func testSameSeedSameFrames() {
        let a = CameraSource(fps: 5, seed: 9), b = CameraSource(fps: 5, seed: 9), c = CameraSource(fps: 5, seed: 10)
        for _ in 0..<20 { XCTAssertEqual(a.next(wallTime: 0), b.next(wallTime: 0)) }
        XCTAssertNotEqual(a.next(wallTime: 0), c.next(wallTime: 0))
        let x = AudioSource(seed: 3), y = AudioSource(seed: 3)
        XCTAssertEqual(x.next(wallTime: 0), y.next(wallTime: 0))
    }

    /// Power of `f` Hz in `s` (Goertzel), normalised by length.
    func power(_ s: [Float], _ f: Double, _ sr: Double = 16000) -> Double {
        let k = 2 * cos(2 * .pi * f / sr)
        var a = 0.0, b = 0.0
        for x in s { let c = Double(x) + k * a - b; b = a; a = c }
        return (a * a + b * b - k * a * b) / Double(s.count * s.count)
    }

    func samples(_ wav: [UInt8]) -> [Float] {
        stride(from: 44, to: wav.count, by: 2).map { Float(Int16(bitPattern: UInt16(wav[$0]) | UInt16(wav[$0 + 1]) << 8)) / 32768 }
    }

    func testAudioChunksAreWAVWithAlarmsGlassAndBells() {
        let src = AudioSource(sampleRate: 16000, chunkSeconds: 0.5, seed: 5, meanEventGap: 4)
        let first = src.next(wallTime: 0)
        XCTAssertEqual(first.count, 44 + 16000)
        XCTAssertEqual(Array(first[0..<4]), Array("RIFF".utf8))
        XCTAssertEqual(Array(first[8..<16]), Array("WAVEfmt ".utf8))
        XCTAssertEqual(Int(first[22]), 1, "mono")
        XCTAssertEqual(Int(first[24]) | Int(first[25]) << 8, 16000, "sample rate")
        XCTAssertEqual(Int(first[34]), 16, "16-bit")
        var byEvent: [String: [[Float]]] = [:]
        for _ in 0..<600 {
            let chunk = samples(src.next(wallTime: 0))
            byEvent[src.event ?? "quiet", default: []].append(chunk)
        }
        XCTAssertEqual(Set(byEvent.keys), ["quiet", "smoke_alarm", "glass_breaking", "door_bell"])
        let quiet3k = byEvent["quiet"]!.map { power($0, 3100) }.max()!
        let alarm3k = byEvent["smoke_alarm"]!.map { power($0, 3100) }.max()!
        XCTAssertGreaterThan(alarm3k, 1000 * quiet3k, "alarm chunks carry a strong 3.1 kHz tone")
        let rms = { (s: [Float]) in (s.reduce(0) { $0 + Double($1 * $1) } / Double(s.count)).squareRoot() }
        XCTAssertLessThan(byEvent["quiet"]!.map(rms).max()!, 0.1, "background stays quiet")
        XCTAssertGreaterThan(byEvent["glass_breaking"]!.map(rms).max()!, 3 * byEvent["quiet"]!.map(rms).max()!)
        XCTAssertGreaterThan(byEvent["door_bell"]!.map { power($0, 660) }.max()!, 1000 * byEvent["quiet"]!.map { power($0, 660) }.max()!)
    }

    func testEnvReadingsFollowADailyCurveWithInjectedAnomalies() throws {
        // One reading per simulated minute for two days.
        let start = 1_795_910_400.0   // midnight UTC
        let env = EnvSource(rate: 1, timeScale: 60, startEpoch: start, seed: 8, anomalyEvery: 100)
        var temps: [Double] = []
        var events: [String?] = []
        for i in 0..<2880 {
            let v = try JSONParser.parse(env.next(wallTime: start + Double(i)))
            temps.append(v["temperature"]!.double!)
            let h = v["humidity"]!.double!
            XCTAssertTrue((0...100).contains(h))
            XCTAssertEqual(v["ts"]?.double, start + Double(i))
            events.append(env.event)
        }
        let normal = temps.indices.filter { events[$0] == nil }
        func meanTemp(hour: Int) -> Double {
            let idx = normal.filter { ($0 / 60) % 24 == hour }
            return idx.map { temps[$0] }.reduce(0, +) / Double(idx.count)
        }
        XCTAssertGreaterThan(meanTemp(hour: 15) - meanTemp(hour: 3), 3, "afternoons are warmer than nights")
        let kinds = Set(events.compactMap { $0 })
        XCTAssertEqual(kinds, ["spike", "drift", "stuck"])
        for i in temps.indices where events[i] == "spike" {
            XCTAssertGreaterThan(abs(temps[i] - temps[max(0, i - 3)]), 4, "a spike stands out from the readings before it")
        }
    }

    func testHeapReturnsStreamsInDueOrder() {
        var heap = DueHeap([(0, 0.5), (1, 0.1), (2, 0.3)])
        XCTAssertEqual(heap.peek()?.0, 1)
        heap.replaceTop(0.7)
        XCTAssertEqual(heap.peek()?.0, 2)
        heap.pop()
        XCTAssertEqual(heap.peek()?.0, 0)
        heap.replaceTop(0.9)
        XCTAssertEqual(heap.peek()?.0, 1)
    }

    func testSimulatorPublishesEveryKindToEveryDeviceThroughARealBroker() throws {
        let broker = try Broker()
        let sub = try TestClient(port: broker.port, subscribe: ["sensors/#"])
        var s = SimulatorSettings()
        s.port = broker.port
        s.devices = 3
        s.kinds = [.camera, .audio, .env, .vector]
        s.rates = [.camera: 20, .audio: 20, .env: 20, .vector: 20]
        s.count = 5
        s.meanObjectGap = 0.05   // an object in view from the first frames: ground truth to check
        var truth: [String] = []
        let sim = Simulator(settings: s)
        var events: [TruthEvent] = []
        sim.truth = { e in truth.append("\(e.device)/\(e.kind.rawValue)/\(e.event)"); events.append(e) }
        let report = try sim.run(stop: StopFlag())
        XCTAssertEqual(Set(truth.filter { $0.contains("/camera/") }), ["sim-001/camera/motion", "sim-002/camera/motion", "sim-003/camera/motion"],
                       "every camera saw its object, and the events are reported: \(truth)")
        XCTAssertEqual(report.events["motion"], 3)
        for e in events where e.kind == .camera {
            XCTAssertEqual(e.last, 4, "the object is still in view at the last frame")
            XCTAssertEqual(e.end, 5 * 0.05, accuracy: 1e-9, "5 frames at 20 fps")
            XCTAssertEqual(e.start, Double(e.first) * 0.05, accuracy: 1e-9)
        }
        for e in events where e.kind == .audio { XCTAssertEqual(e.end - e.start, Double(e.last - e.first + 1) * 0.5, accuracy: 1e-9) }
        XCTAssertEqual(report.sent, 60)
        XCTAssertEqual(report.acked, 60)
        XCTAssertEqual(report.sentByKind[.camera], 15)
        XCTAssertTrue(waitUntil { sub.messages.count == 60 }, "received \(sub.messages.count)")
        let topics = Set(sub.messages.map(\.topic))
        XCTAssertEqual(topics.count, 12)
        XCTAssertTrue(topics.contains("sensors/sim-002/camera"))
        for m in sub.messages {
            switch m.topic.split(separator: "/").last! {
            case "camera": XCTAssertEqual(m.payload.count, 15 + 160 * 120)
            case "audio": XCTAssertEqual(m.payload.count, 44 + 16000)
            case "env": XCTAssertNotNil(try JSONParser.parse(m.payload)["temperature"]?.double)
            default: XCTAssertEqual(m.payload.count, 16)
            }
        }
        XCTAssertEqual(report.summary(address: s.address).split(separator: "\n").first,
                       "sent 60 messages (camera 15, audio 15, env 15, vector 15) to 127.0.0.1:\(broker.port) in \(String(format: "%.2f", report.elapsed)) s: \(String(format: "%.1f", report.rate)) msg/s (target 240.0), \(String(format: "%.2f", Double(report.bytes) / 1_048_576 / report.elapsed)) MB/s")
    }

    func testBrokerLostMidRunIsCountedAndTheRunStillEnds() throws {
        let broker = try Broker()
        var s = SimulatorSettings()
        s.port = broker.port
        s.kinds = [.env]
        s.rates = [.env: 50]
        s.duration = 2
        let sim = Simulator(settings: s)
        var stopped = false
        sim.progress = { r in
            // One second in: the broker goes away under the publisher.
            if !stopped { stopped = true; broker.stop() }
        }
        let report = try sim.run(stop: StopFlag(), drainTimeout: 2)
        XCTAssertTrue(stopped)
        XCTAssertGreaterThan(report.sent, 0)
        XCTAssertGreaterThan(report.failed, 0, "publishes without a connection fail and are counted")
        XCTAssertLessThanOrEqual(report.acked, report.sent)
        // What the progress line and bench.py read: in flight is sent minus acknowledged.
        XCTAssertTrue(report.progressLine.contains("acked \(report.acked)  inflight \(report.sent - report.acked)"), report.progressLine)
        XCTAssertTrue(report.machineLine.hasPrefix("sent=\(report.sent) acked=\(report.acked) failed=\(report.failed) "), report.machineLine)
        XCTAssertTrue(report.summary(address: s.address).contains("failed \(report.failed), unacknowledged \(report.sent - report.acked)"))
    }

    func testSimulatorNamesAnUnreachableBroker() {
        var s = SimulatorSettings()
        s.port = freePort()
        s.count = 1
        XCTAssertThrowsError(try Simulator(settings: s).run(stop: StopFlag())) { e in
            XCTAssertTrue("\(e)".contains("cannot connect to broker 127.0.0.1:\(s.port)"), "\(e)")
        }
    }
}
