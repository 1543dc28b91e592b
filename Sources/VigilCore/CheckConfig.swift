import Foundation

/// Validates what `Config.parse` cannot see alone: that each model loads and that each
/// pipeline fits its model. Used by `vigild --check-config` and `vigilctl check-config`.
public enum CheckConfig {
    public static func run(_ config: Config) throws {
        // The same loading and checks vigild runs at start, so a config that passes here starts.
        let models = try Daemon.loadModels(config)
        for p in config.pipelines {
            guard let model = models[p.model] else { continue }
            // Says, as at start, when a v1 config's min_score now only floors the budget.
            Daemon.noteBudget(try Pipeline.build(p, model: model))
        }
    }
}
