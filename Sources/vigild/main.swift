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
        for w in try CheckConfig.run(config) { FileHandle.standardError.write(Data("vigild: \(configPath): warning: \(w)\n".utf8)) }
        print("\(configPath): OK (\(config.pipelines.count) pipelines, \(config.models.count) models)")
        exit(0)
    } catch {
        fail("\(error)")
    }
}

// Valid but unsafe settings are said once at start (check-config fails on the severe ones).
for w in config.warnings { log.warning("\(configPath): \(w)") }

// The service: start in order, READY=1, watchdog, SIGHUP reload, SIGTERM drain (Service/Lifecycle.swift).
do {
    try ServiceLifecycle(config: config, configPath: configPath).run()
} catch {
    fail("\(error)")
}
