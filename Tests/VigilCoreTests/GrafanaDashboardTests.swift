import Foundation
import TestSupport
import VigilCore
import XCTest

/// docs/grafana/vigil-dashboard.json: a dashboard Grafana imports (the fields its schema
/// requires, panels that do not overlap on the 24-column grid, one datasource variable) that
/// only asks for metrics vigild exports (issue 19 item 11).
final class GrafanaDashboardTests: XCTestCase {
    func testTheDashboardIsWellFormedAndUsesOnlyMetricsVigildExports() throws {
        let path = Paths.repo.appendingPathComponent("docs/grafana/vigil-dashboard.json").path
        let dash = try JSONParser.parse(Array(try XCTUnwrap(FileManager.default.contents(atPath: path))))
        XCTAssertNotNil(dash["title"]?.string)
        XCTAssertNotNil(dash["uid"]?.string)
        XCTAssertGreaterThanOrEqual(dash["schemaVersion"]?.double ?? 0, 36, "the schema of Grafana 9 and later")
        guard case .array(let variables)? = dash["templating"]?["list"] else { return XCTFail("no templating.list") }
        XCTAssertTrue(variables.contains { $0["name"]?.string == "datasource" && $0["type"]?.string == "datasource" })
        guard case .array(let panels)? = dash["panels"] else { return XCTFail("no panels") }
        var ids = Set<Int>(), cells = Set<Int>(), exprs: [String] = []
        for p in panels {
            let title = p["title"]?.string ?? "?"
            XCTAssertTrue(ids.insert(Int(p["id"]?.double ?? -1)).inserted, "\(title): panel ids are unique")
            XCTAssertTrue(["timeseries", "stat"].contains(p["type"]?.string ?? ""), title)
            XCTAssertEqual(p["datasource"]?["uid"]?.string, "${datasource}", title)
            let x = Int(p["gridPos"]?["x"]?.double ?? -1), y = Int(p["gridPos"]?["y"]?.double ?? -1)
            let w = Int(p["gridPos"]?["w"]?.double ?? 0), h = Int(p["gridPos"]?["h"]?.double ?? 0)
            XCTAssertTrue(x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 24, "\(title): gridPos on the 24-column grid")
            for cx in x..<(x + max(w, 0)) { for cy in y..<(y + max(h, 0)) { XCTAssertTrue(cells.insert(cy * 24 + cx).inserted, "\(title) overlaps") } }
            guard case .array(let targets)? = p["targets"], !targets.isEmpty else { XCTFail("\(title): no targets"); continue }
            for t in targets {
                XCTAssertNotNil(t["refId"]?.string, title)
                exprs.append(try XCTUnwrap(t["expr"]?.string, title))
            }
        }
        // Every panel the issue asks for.
        let all = exprs.joined(separator: "\n")
        for metric in ["vigil_frames_processed_total", "vigil_inference_duration_seconds_bucket", "vigil_queued_frames", "vigil_alerts_total",
                       "vigil_frames_dropped_total", "vigil_frames_rejected_total", "vigil_unsynced_rows", "vigil_database_bytes",
                       "vigil_last_frame_timestamp_seconds", "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
                       "vigil_evidence_dropped_total", "vigil_motion_states_dropped_total"] {
            XCTAssertTrue(all.contains(metric), "a panel for \(metric)")
        }
        // Every metric asked for is one vigild names in its source (Service/Metrics.swift and the stages that count).
        var source = ""
        let root = Paths.repo.appendingPathComponent("Sources/VigilCore")
        for case let file as String in FileManager.default.enumerator(atPath: root.path)! where file.hasSuffix(".swift") {
            source += (try? String(contentsOfFile: root.appendingPathComponent(file).path, encoding: .utf8)) ?? ""
        }
        let regex = try NSRegularExpression(pattern: "(vigil|process)_[a-z_]+")
        let names = Set(regex.matches(in: all, range: NSRange(all.startIndex..., in: all)).map { String(all[Range($0.range, in: all)!]) })
        XCTAssertGreaterThan(names.count, 15)
        for name in names {
            var base = name
            for suffix in ["_bucket", "_sum", "_count"] where base.hasSuffix(suffix) { base = String(base.dropLast(suffix.count)) }
            XCTAssertTrue(source.contains("\"\(base)\""), "\(name): vigild exports no \(base)")
        }
    }
}
