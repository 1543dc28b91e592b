import Foundation
import Sockets
import VigilCore

/// `vigilctl evidence UUID`: writes out what an alert kept (Evidence/ in VigilCore).
enum EvidenceCommand {
    static let output = Option(name: "--output", short: "-o", value: "FILE", help: "write here (- for stdout); default: stdout when it is not a terminal")
    static let item = Option(name: "--item", short: "-i", value: "NAME", help: "one item instead of the whole archive (frame-03-trigger.png, audio.wav, readings.csv, alert.json)")
    static let list = Option(name: "--list", help: "print the items and exit")

    static let command = Command(
        name: "evidence", summary: "Write out the evidence an alert kept: its frames (PNG), sound (WAV) or readings (CSV), as one tar archive or one item.",
        positionals: "UUID", positionalRange: 1...1,
        options: [output, item, list, Option(name: "--format", value: "FMT", help: "--list as table, jsonl or csv"), Shared.db, Shared.config],
        details: """
            UUID is the alert's uuid (vigilctl alerts --format jsonl shows it; the EVIDENCE column
            says which alerts have evidence). On a terminal without -o the items are listed.
            examples:
              vigilctl evidence 0190f3c2-... -o alert.tar && tar xf alert.tar
              vigilctl evidence 0190f3c2-... --item audio.wav -o glass.wav
              vigilctl evidence 0190f3c2-... --item frame-05-trigger.png > trigger.png
            """,
        run: run)

    static func run(_ a: Arguments) throws -> Int32 {
        let uuid = a.positionals[0].lowercased()
        guard RowID.isUUID(uuid) else { throw UsageError("UUID: expected an alert uuid (8-4-4-4-12 hex digits), got \"\(a.positionals[0])\"") }
        let reader = try Shared.openLog(a)
        guard let row = try reader.evidence(uuid) else {
            let known = try reader.alertExists(uuid)
            throw Failure(known ? "alert \(uuid) has no evidence: none was kept (evidence: false, or storage.evidence_mb 0), or it was evicted to stay under storage.evidence_mb"
                                : "no alert \(uuid) in \(reader.path)")
        }
        let toTerminal = isatty(1) == 1
        if a.flag("--list") || (a.string("--output") == nil && toTerminal) {
            let format = try Shared.format(a)
            let table = row.itemTable
            if format == .table {
                out("alert \(row.uuid): \(row.pipeline)/\(row.device), \(row.kind), \(row.bytes) bytes in \(row.file)\n")
            }
            out(table.render(format))
            if !a.flag("--list") { warn("not writing binary data to a terminal: use -o FILE (or -o - to force stdout)") }
            return ExitCode.ok
        }
        guard let data = FileManager.default.contents(atPath: row.file) else {
            let why = FileManager.default.fileExists(atPath: row.file) ? "permission denied (members of the vigil group may read it; or sudo)" : "the file is gone (evicted or deleted)"
            throw Failure("cannot read \(row.file): \(why)")
        }
        var bytes = Array(data)
        if let name = a.string("--item") {
            guard let entries = Tar.entries(bytes) else { throw Failure("\(row.file) is not a readable archive (damaged?)") }
            guard let e = entries.first(where: { $0.name == name }) else {
                throw Failure("alert \(uuid) has no item \(name) (items: \(entries.map(\.name).joined(separator: ", ")))")
            }
            bytes = e.bytes
        }
        // Camera frames are private: the copy is the user's only (0600), like the original is the vigil group's.
        try write(bytes, to: a.string("--output") ?? "-", what: a.string("--item") == nil ? row.items.map(\.name).joined(separator: ", ") : nil)
        return ExitCode.ok
    }

    /// Binary output to stdout ("-") or to a file the user alone may read (0600), as evidence and
    /// kept clips (sound or pictures of a home) are private; a file written is reported on stderr.
    static func write(_ bytes: [UInt8], to target: String, what: String?) throws {
        if target == "-" {
            Output.shared.flush()
            do { try FileDescriptor.writeAll(FileDescriptor.standardOutput, bytes) } catch {
                throw Failure("cannot write to stdout: \(error)")
            }
            return
        }
        guard FileManager.default.createFile(atPath: target, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
            throw Failure("cannot write \(target)")
        }
        warn("wrote \(target) (\(bytes.count) bytes\(what.map { ": " + $0 } ?? ""))")
    }
}
