import Foundation
import VigilCore
import VigilTools

/// `check-config` and `models`: the node's configuration and model files.
enum NodeCommands {
    static let checkConfig = Command(
        name: "check-config", summary: "Validate a config and the models it names, exactly as `vigild --check-config` does.",
        positionals: "[FILE]", positionalRange: 0...1,
        options: [Shared.config],
        details: "FILE defaults to --config, else \(Config.defaultPath). Exit status 0 when valid, 1 when not (the error names the file, key path and line).",
        run: { a in
            let file = a.positionals.first ?? a.string("--config") ?? Config.defaultPath
            let config: Config
            do {
                config = try Config.load(path: file)
                for w in try CheckConfig.run(config) { out("\(file): warning: \(w)\n") }
            } catch {
                throw Failure("\(error)", status: ExitCode.failure)
            }
            out("\(file): OK (\(config.pipelines.count) pipelines, \(config.models.count) models)\n")
            for p in config.pipelines {
                out("  pipeline \(p.name): \(p.topic.pattern) (\(p.format.rawValue)) -> model \(p.model)\n")
            }
            out("  storage: \(config.storage.path)\n")
            return ExitCode.ok
        })

    static let models = Command(
        name: "models", summary: "Describe ONNX models: inputs and outputs (free dimensions by name), metadata, and whether each meets Vigil's model contract.",
        positionals: "PATH...", positionalRange: 1...1000,
        options: [Option(name: "--format", short: "-o", value: "FMT", help: "text (default) or jsonl (or json)")],
        details: "PATH is an .onnx file or a folder of them. Exit status 1 when a model cannot be loaded or does not meet the contract.",
        run: { a in
            let json = try ["jsonl", "json"].contains(a.choice("--format", ["text", "jsonl", "json"]) ?? "text")
            var status = ExitCode.ok
            var first = true
            for path in a.positionals {
                let files: [String]
                do { files = try ModelReport.files(at: path) } catch { throw Failure("\(error)") }
                for f in files {
                    do {
                        let r = try ModelReport(path: f)
                        if r.contractProblem != nil { status = ExitCode.failure }
                        if json { out(r.json.serialized + "\n") } else { out((first ? "" : "\n") + r.text) }
                    } catch {
                        status = ExitCode.failure
                        warn("\(f): \(error)")
                    }
                    first = false
                }
            }
            return status
        })
}
