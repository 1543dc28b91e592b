import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// POSTs the alert as JSON. Each attempt has `timeout_s`; a network error, a timeout, a
/// 5xx, 408 or 429 is retried up to `retries` times with exponential backoff (0.5 s,
/// 1 s, 2 s... capped at 30 s, with jitter); any other status is final.
public final class WebhookAction: AlertAction {
    public let name: String
    public var type: String { "webhook" }
    let url: URL
    let timeoutSeconds: Double
    let retries: Int
    let headers: [String: String]
    let onClear: Bool
    let baseBackoff: Double
    private let session: URLSession

    public init(name: String, url: URL, timeoutSeconds: Double, retries: Int, headers: [String: String], onClear: Bool,
                baseBackoff: Double = 0.5) {
        self.name = name; self.url = url; self.timeoutSeconds = timeoutSeconds; self.retries = retries
        self.headers = headers; self.onClear = onClear; self.baseBackoff = baseBackoff
        // Foundation on Linux rounds these down to whole seconds (0.5 s fires at once), so they
        // are only a backstop; each attempt's own timer cancels it at `timeout_s`.
        let c = URLSessionConfiguration.ephemeral
        c.timeoutIntervalForRequest = (timeoutSeconds + 1).rounded(.up)
        c.timeoutIntervalForResource = (timeoutSeconds + 1).rounded(.up)
        session = URLSession(configuration: c)
    }

    public var runsOnClear: Bool { onClear }

    func backoff(after attempt: Int) -> Double { min(baseBackoff * pow(2, Double(attempt - 1)), 30) }

    public var bound: Double {
        Double(retries + 1) * (timeoutSeconds + 1) + (0..<retries).reduce(0) { $0 + backoff(after: $1 + 1) * 1.25 }
    }

    public func run(_ alert: AlertEvent, done: @escaping @Sendable (ActionOutcome) -> Void) {
        var request = URLRequest(url: url, timeoutInterval: (timeoutSeconds + 1).rounded(.up))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("vigild/\(VigilVersion.string)", forHTTPHeaderField: "User-Agent")
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        request.httpBody = Data(alert.json.serialized.utf8)
        attempt(1, request, start: DispatchTime.now().uptimeNanoseconds, done: done)
    }

    private func attempt(_ n: Int, _ request: URLRequest, start: UInt64, done: @escaping @Sendable (ActionOutcome) -> Void) {
        let task = session.dataTask(with: request) { [self] _, response, error in
            var status: ActionOutcome.Status = .ok
            var detail: String?
            var retry = false
            if let error {
                let timedOut = (error as? URLError)?.code == .timedOut || (error as? URLError)?.code == .cancelled
                status = timedOut ? .timeout : .error
                detail = timedOut ? "no answer within \(timeoutSeconds) s (timeout_s)" : "\(error.localizedDescription)"
                retry = true
            } else if let code = (response as? HTTPURLResponse)?.statusCode {
                if !(200..<300).contains(code) {
                    status = .error
                    detail = "HTTP \(code)"
                    retry = code >= 500 || code == 408 || code == 429
                }
            } else {
                status = .error
                detail = "no HTTP response"
                retry = true
            }
            if status != .ok, retry, n <= retries {
                let delay = backoff(after: n) * Double.random(in: 0.8...1.25)
                log.limited(.warning, key: "webhook-\(name)", "action \(name): POST \(url.absoluteString) failed (\(detail ?? "")), attempt \(n) of \(retries + 1); retrying in \(String(format: "%.1f", delay)) s")
                DispatchQueue.global().asyncAfter(deadline: .now() + delay) { self.attempt(n + 1, request, start: start, done: done) }
                return
            }
            if status != .ok {
                log.limited(.error, key: "webhook-failed-\(name)", "action \(name): POST \(url.absoluteString) failed after \(n) attempts: \(detail ?? "")")
            }
            done(ActionOutcome(action: name, type: type, status: status, durationMs: elapsedMs(since: start),
                               detail: detail, attempts: n))
        }
        task.resume()
        DispatchQueue.global().asyncAfter(deadline: .now() + timeoutSeconds) { task.cancel() }
    }
}
