import Foundation
import VigilCore

/// vigild: the Vigil daemon. See README.md for configuration and operation.
let usage = """
    usage: vigild [--config FILE] [--check-config [FILE]] [--version]

      --config FILE         run with this config (default \(Config.defaultPath))
      --check-config [FILE] validate the config and its models, then exit (0 when valid)
      --version             print the version and exit
    """

var configPath = Config.defaultPath
var checkOnly = false
var args = CommandLine.arguments.dropFirst()
while let arg = args.popFirst() {
    switch arg {
    case "--config", "-c":
        guard let p = args.popFirst() else { fail("--config needs a file") }
        configPath = p
    case "--check-config":
        checkOnly = true
        if let next = args.first, !next.hasPrefix("-") { configPath = args.popFirst()! }
    case "--version":
        print("vigild \(VigilVersion.string)")
        exit(0)
    case "--help", "-h":
        print(usage)
        exit(0)
    default:
        fail("unknown option \(arg)\n\(usage)", code: 2)
    }
}

func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("vigild: \(message)\n".utf8))
    exit(code)
}

let config: Config
do {
    config = try Config.load(path: configPath)
} catch {
    fail("\(error)")
}

if checkOnly {
    do {
        try CheckConfig.run(config)
        print("\(configPath): OK (\(config.pipelines.count) pipelines, \(config.models.count) models)")
        exit(0)
    } catch {
        fail("\(error)")
    }
}

// Signals only set state: handlers run on the main queue through dispatch sources.
for sig in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { signal(sig, SIG_IGN) }

let daemon: Daemon
do {
    daemon = try Daemon(config: config)
    try daemon.start()
} catch {
    fail("\(error)")
}
log.notice("vigild \(VigilVersion.string) ready: node \(config.node), \(config.pipelines.count) pipelines, store \(config.storage.path)")

func shutdown(_ name: String) {
    log.notice("\(name): draining frames and flushing the store")
    daemon.stop()
    log.notice("stopped: \(daemon.statusLine())")
    exit(0)
}

let sources = [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")].map { sig, name in
    let s = DispatchSource.makeSignalSource(signal: sig, queue: .main)
    s.setEventHandler { shutdown(name) }
    s.resume()
    return s
}
let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .main)
hup.setEventHandler { log.warning("SIGHUP: reload is not implemented in this build; restart to apply changes") }
hup.resume()

dispatchMain()
