import Foundation
import MQTT
import TestSupport
import XCTest

final class MQTTClientTests: XCTestCase {
    func testPublishSubscribeAgainstARealBroker() throws {
        let broker = try Broker()
        let sub = try TestClient(port: broker.port, subscribe: ["sensors/+/env"])
        let pub = try TestClient(port: broker.port)
        var mids: [Int32] = []
        for i in 0..<50 { mids.append(try pub.publish("sensors/dev\(i % 3)/env", "{\"i\":\(i)}")) }
        mids.append(try pub.publish("other/topic", "x"))
        XCTAssertTrue(pub.waitForAcks(mids), "broker acknowledged every QoS 1 publish")
        XCTAssertTrue(waitUntil { sub.messages.count >= 50 })
        XCTAssertTrue(sub.sync(), "anything the broker had for the subscriber has arrived")
        let got = sub.messages
        XCTAssertEqual(got.count, 50, "the unmatched topic is not delivered")
        XCTAssertEqual(String(decoding: got[7].payload, as: UTF8.self), "{\"i\":7}", "order is kept")
        XCTAssertEqual(got[7].topic, "sensors/dev1/env")
        sub.close(); pub.close()
    }

    func testBinaryPayloadsArriveIntact() throws {
        let broker = try Broker()
        let sub = try TestClient(port: broker.port, subscribe: ["bin"])
        let pub = try TestClient(port: broker.port)
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try pub.publish("bin", payload)
        XCTAssertTrue(waitUntil { sub.messages.count == 1 })
        XCTAssertEqual(sub.messages[0].payload, payload)
    }

    func testReconnectsWhenTheBrokerComesBack() throws {
        let broker = try Broker()
        let connects = Counter()
        var h = MQTTHandlers()
        h.connected = { rc, _ in if rc == 0 { connects.add() } }
        let c = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "reconnect-test", reconnectMinDelay: 1, reconnectMaxDelay: 2), handlers: h)
        try c.start()
        XCTAssertTrue(waitUntil { connects.value == 1 })
        broker.stop()
        XCTAssertTrue(waitUntil(timeout: 5) { !c.isConnected })
        try broker.start()
        XCTAssertTrue(waitUntil(timeout: 10) { connects.value == 2 }, "reconnected after the broker returned")
        c.stop()
    }

    func testUnreachableBrokerIsReportedNotFatal() throws {
        let port = freePort()
        let c = try MQTTClient(options: MQTTOptions(port: port, clientID: "nobody"), handlers: MQTTHandlers())
        let first = try c.start()
        // Connection refused is seen at once on loopback; either way the client keeps retrying.
        if let first { XCTAssertTrue(first.description.contains("127.0.0.1:\(port)"), first.description) }
        XCTAssertFalse(c.isConnected)
        c.stop()
    }

    func testTopicMatching() {
        XCTAssertTrue(MQTTClient.topic("sensors/cam1/camera", matches: "sensors/+/camera"))
        XCTAssertFalse(MQTTClient.topic("sensors/cam1/x/camera", matches: "sensors/+/camera"))
        XCTAssertTrue(MQTTClient.topic("a/b/c", matches: "a/#"))
        XCTAssertTrue(MQTTClient.isValidSubscription("a/+/b"))
        XCTAssertFalse(MQTTClient.isValidSubscription("a/b+/c"))
        XCTAssertFalse(MQTTClient.isValidTopic("a/+/c"))
    }

    func testUnreadableTLSFileIsNamed() {
        XCTAssertThrowsError(try MQTTClient(options: MQTTOptions(tls: MQTTTLS(caFile: "/nonexistent/ca.pem")), handlers: MQTTHandlers())) {
            XCTAssertTrue("\($0)".contains("/nonexistent/ca.pem"), "\($0)")
        }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}

final class LateBrokerTests: XCTestCase {
    func testConnectsToABrokerThatStartsLater() throws {
        let port = freePort()
        let connects = Counter()
        var h = MQTTHandlers()
        h.connected = { rc, _ in if rc == 0 { connects.add() } }
        let c = try MQTTClient(options: MQTTOptions(port: port, clientID: "late", reconnectMinDelay: 1, reconnectMaxDelay: 2), handlers: h)
        _ = try c.start()
        Thread.sleep(forTimeInterval: 0.5)   // the point: the client tries (and fails) while no broker listens
        let broker = try Broker(port: port)
        XCTAssertTrue(waitUntil(timeout: 10) { connects.value == 1 }, "connected once the broker was up")
        c.stop()
        _ = broker
    }
}
