import Foundation

/// Validates what `Config.parse` cannot see alone: that each model loads and that each
/// pipeline fits its model. Used by `vigild --check-config` and `vigilctl check-config`.
/// A severe warning (an exposed secret) fails the check, though vigild would start with it
/// (and log it): a check is where a mistake should be caught.
public enum CheckConfig {
    /// The warnings to print (none severe); throws on an error or a severe warning.
    @discardableResult
    public static func run(_ config: Config) throws -> [ConfigWarning] {
        // The same loading and checks vigild runs at start, so a config that passes here starts.
        let models = try Daemon.loadModels(config)
        for p in config.pipelines {
            guard let model = models[p.model] else { continue }
            // Says, as at start, when a v1 config's min_score now only floors the budget.
            Daemon.noteBudget(try Pipeline.build(p, model: model, limits: config.limits))
        }
        if let w = config.warnings.first(where: \.severe) {
            throw ConfigError(file: config.file, path: w.key, message: w.message)
        }
        return config.warnings
    }
}
