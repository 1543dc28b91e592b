@testable import VigilCore
import XCTest

/// The broker's answers to vigild's subscriptions (SubscriptionAcks): when a connection's
/// subscriptions are all answered, and which topic filter a broker refused (granted 0x80).
final class SubscriptionAcksTests: XCTestCase {
    func testAConnectionIsReadyWhenEverySubscriptionIsAnsweredAndARefusalNamesItsTopic() {
        let acks = SubscriptionAcks()
        XCTAssertEqual(acks.connectionStarts(expecting: 3), [])
        XCTAssertEqual(acks.sent(1, "sensors/+/cam"), [])
        XCTAssertEqual(acks.sent(2, "sensors/+/audio"), [])
        XCTAssertEqual(acks.sent(3, "homeassistant/#"), [])
        XCTAssertEqual(acks.answered(2, granted: [1]), [])
        XCTAssertEqual(acks.answered(1, granted: [0x80]), [.refused(topic: "sensors/+/cam")])
        XCTAssertEqual(acks.answered(3, granted: [1]), [.connectionReady(granted: 2, of: 3)])
        // Answered twice (a broker bug, or a stale mid after a reconnect): nothing more is said.
        XCTAssertEqual(acks.answered(3, granted: [1]), [])
    }

    /// A reload subscribes from another thread: the broker's answer can come back before the
    /// message id is recorded. It is still matched to its topic, and does not count toward the
    /// connection's own subscriptions.
    func testAnAnswerThatOvertakesItsSendIsMatchedWhenTheSendIsRecorded() {
        let acks = SubscriptionAcks()
        XCTAssertEqual(acks.connectionStarts(expecting: 1), [])
        XCTAssertEqual(acks.sent(7, "sensors/+/vec"), [])
        XCTAssertEqual(acks.answered(7, granted: [1]), [.connectionReady(granted: 1, of: 1)])
        XCTAssertEqual(acks.answered(8, granted: [0x80]), [])
        XCTAssertEqual(acks.sent(8, "sensors/+/new"), [.refused(topic: "sensors/+/new")])
        XCTAssertEqual(acks.answered(9, granted: [0]), [])
        XCTAssertEqual(acks.sent(9, "sensors/+/other"), [])
    }

    /// A new connection starts over: what the last one left unanswered is forgotten.
    func testANewConnectionStartsOver() {
        let acks = SubscriptionAcks()
        XCTAssertEqual(acks.connectionStarts(expecting: 2), [])
        XCTAssertEqual(acks.sent(1, "a/#"), [])
        XCTAssertEqual(acks.connectionStarts(expecting: 1), [])
        XCTAssertEqual(acks.answered(1, granted: [1]), [])   // the old connection's: unknown now
        XCTAssertEqual(acks.sent(2, "a/#"), [])
        XCTAssertEqual(acks.answered(2, granted: [1]), [.connectionReady(granted: 1, of: 1)])
        // A config with nothing to subscribe to is ready as soon as it connects.
        XCTAssertEqual(acks.connectionStarts(expecting: 0), [.connectionReady(granted: 0, of: 0)])
    }
}
