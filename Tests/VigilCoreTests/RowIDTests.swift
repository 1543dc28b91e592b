import Foundation
@testable import VigilCore
import XCTest

final class RowIDTests: XCTestCase {
    func testUUIDsAreVersion7TextThatFoundationParses() throws {
        let id = RowID.make()
        XCTAssertEqual(id.count, 36)
        XCTAssertEqual(id, id.lowercased())
        let parsed = try XCTUnwrap(UUID(uuidString: id), id)
        let bytes = withUnsafeBytes(of: parsed.uuid) { Array($0) }
        XCTAssertEqual(bytes[6] >> 4, 7, "version 7: \(id)")
        XCTAssertEqual(bytes[8] >> 6, 0b10, "RFC 9562 variant: \(id)")
    }

    func testTheFirst48BitsAreTheTimeInMilliseconds() throws {
        let t = Date(timeIntervalSince1970: 1_764_000_000.123)
        let id = RowID.make(now: t)
        let ms = UInt64(id.replacingOccurrences(of: "-", with: "").prefix(12), radix: 16)
        XCTAssertEqual(ms, 1_764_000_000_123)
        // Later rows sort after earlier ones (index locality, cloud ordering).
        let later = RowID.make(now: t.addingTimeInterval(0.002))
        XCTAssertLessThan(id, later)
    }

    func testNoDuplicatesAcrossThreads() {
        final class Bag: @unchecked Sendable {
            // @unchecked Sendable: `ids` is guarded by `lock`.
            let lock = NSLock()
            var ids = Set<String>()
        }
        let bag = Bag()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            var mine: [String] = []
            for _ in 0..<50_000 { mine.append(RowID.make()) }
            bag.lock.withLock { bag.ids.formUnion(mine) }
        }
        XCTAssertEqual(bag.ids.count, 200_000)
    }

    func testFormatPlacesTheDashes() {
        XCTAssertEqual(RowID.format(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210), "01234567-89ab-cdef-fedc-ba9876543210")
    }
}
