import Foundation
import VigilCore

/// A runtime failure with the exit status it maps to (see docs/vigilctl.md).
struct Failure: Error, CustomStringConvertible {
    let message: String
    let status: Int32
    init(_ message: String, status: Int32 = ExitCode.failure) { self.message = message; self.status = status }
    var description: String { message }
}

enum ExitCode {
    static let ok: Int32 = 0
    /// The command ran and found a problem (invalid config, a model off contract, messages not delivered).
    static let failure: Int32 = 1
    /// Bad command line: unknown subcommand or option, missing or malformed value.
    static let usage: Int32 = 2
    /// The database is missing, unreadable or not a Vigil log.
    static let database: Int32 = 3
    /// The broker could not be reached.
    static let broker: Int32 = 4
}
