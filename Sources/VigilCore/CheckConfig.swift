import Foundation

/// Validates what `Config.parse` cannot see alone: that each model loads and that each
/// pipeline fits its model. Used by `vigild --check-config` and `vigilctl check-config`.
public enum CheckConfig {
    public static func run(_ config: Config) throws {
        var loaded: [String: Model] = [:]
        for p in config.pipelines {
            guard let m = config.model(named: p.model) else { continue }
            if loaded[m.name] == nil {
                guard FileManager.default.fileExists(atPath: m.path) else {
                    throw ModelError(model: m.name, path: m.path, message: "model file not found (models.\(m.name).path)")
                }
                loaded[m.name] = try Model(name: m.name, path: m.path, threads: 1)
            }
            _ = try Pipeline.build(p, model: loaded[m.name]!)
        }
    }
}
