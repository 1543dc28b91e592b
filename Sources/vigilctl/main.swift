import Foundation
import VigilCore
import VigilTools

/// vigilctl: query the local log, follow it, check configs and models, simulate sensors.
/// Exit status: 0 ok, 1 the command found a problem, 2 bad command line, 3 database
/// unavailable, 4 broker unreachable (docs/vigilctl.md).
let commands: [Command] = [
    QueryCommands.detections, QueryCommands.alerts, TailCommand.command, QueryCommands.stats,
    QueryCommands.sync, QueryCommands.export, ReportCommand.command, BaselineCommand.command, EvidenceCommand.command, SimulateCommand.command, NodeCommands.checkConfig, NodeCommands.models,
    EnrollCommands.enroll, EnrollCommands.enrolled, EnrollCommands.unenroll,
]

let usage = """
    usage: vigilctl COMMAND [options]

    commands:
      detections    list detections (--since --until --pipeline --device --label)
      alerts        list alert transitions (same filters, and --state)
      tail          print the newest detections and alerts, then follow new ones
      stats         per pipeline and device: counts, labels, latency, alerts
      sync          cloud sync backlog, last sync, rows dropped by the size cap
      export        stream every matching detection or alert as JSON lines or CSV
      report        one HTML page: timelines, counts, latencies, sync, evidence
      baseline      each device's anomaly baseline; `baseline reset` forgets one
      evidence      write out the frames, sound or readings an alert kept
      enroll        teach a sound pipeline a sound from a few WAV clips, or a
                    false alarm to --ignore
      enrolled      list enrolled sounds; `unenroll ID|LABEL` removes one
      simulate      publish synthetic camera, audio and env traffic to a broker
      check-config  validate a config and its models (as vigild --check-config)
      models        describe ONNX models: inputs, outputs, metadata, contract

    Run `vigilctl COMMAND --help` for a command's options, `vigilctl --version`
    for the version. Tables show local time (--utc for UTC); -o json, -o csv
    for programs. Exit status: 0 ok, 1 the command found a problem, 2 bad
    command line, 3 database missing or unreadable, 4 broker unreachable.
    """

@MainActor func main() -> Int32 {
    var args = Array(CommandLine.arguments.dropFirst())
    guard let name = args.first else {
        FileHandle.standardError.write(Data((usage + "\n").utf8))
        return ExitCode.usage
    }
    args.removeFirst()
    switch name {
    case "--help", "-h", "help":
        if let sub = args.first, let c = commands.first(where: { $0.name == sub }) { print(c.usage, terminator: "") } else { print(usage) }
        return ExitCode.ok
    case "--version", "version":
        print("vigilctl \(VigilVersion.string)")
        return ExitCode.ok
    default:
        break
    }
    guard let command = commands.first(where: { $0.name == name }) else {
        var msg = "unknown command \(name)"
        if let close = Command.closest(name, commands.map(\.name)) { msg += " (did you mean \(close)?)" }
        warn(msg + "\n\n" + usage)
        return ExitCode.usage
    }
    do {
        let parsed = try command.parse(args)
        if parsed.flag("--help") {
            print(command.usage, terminator: "")
            return ExitCode.ok
        }
        let status = try command.run(parsed)
        Output.shared.flush()
        return status
    } catch let e as UsageError {
        warn("\(command.name): \(e.message)\nrun `vigilctl \(command.name) --help` for usage")
        return ExitCode.usage
    } catch let e as Failure {
        warn(e.message)
        return e.status
    } catch let e as QueryError {
        warn(e.message)
        return ExitCode.database
    } catch {
        warn("\(error)")
        return ExitCode.failure
    }
}

exit(main())
