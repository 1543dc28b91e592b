import Foundation
import VigilCore

/// vigild: the Vigil daemon. See README.md for configuration and operation.
/// Its command line is parsed by the same `Command` as vigilctl's (VigilCore/CLI).
let command = Command(
    program: "vigild", name: "", summary: "The Vigil daemon: MQTT sensor frames -> ONNX models -> alerts, actions and a local log.",
    positionals: "[FILE]", positionalRange: 0...1,
    options: [Option(name: "--config", short: "-c", value: "FILE", help: "run with this config (default \(Config.defaultPath))"),
              Option(name: "--check-config", help: "validate the config (FILE, else --config) and its models, then exit (0 when valid)"),
              Option(name: "--version", help: "print the version and exit")],
    run: { _ in 0 })   // the service below is not one function: parse only

var configPath = Config.defaultPath
var checkOnly = false
do {
    let a = try command.parse(Array(CommandLine.arguments.dropFirst()))
    if a.flag("--help") { print(command.usage, terminator: ""); exit(0) }
    if a.flag("--version") { print("vigild \(VigilVersion.string)"); exit(0) }
    checkOnly = a.flag("--check-config")
    if let file = a.positionals.first {
        guard checkOnly else { throw UsageError("unexpected argument \(file) (a config to run is --config FILE)") }
        if a.string("--config") != nil { throw UsageError("--check-config FILE and --config FILE: give the config once") }
        configPath = file
    } else if let file = a.string("--config") {
        configPath = file
    }
} catch {
    fail("\(error)\nrun `vigild --help` for usage", code: 2)
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
