import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Batches as HTTP(S) POSTs of a JSON array, optionally gzip-compressed, with a bearer token
/// read from `token_file` for each request (so a rotated token is picked up). A batch counts
/// as delivered only on a 2xx answer. HTTPS trusts the system's CA store (URLSession on
/// Linux has no per-request CA): a private CA goes into /usr/local/share/ca-certificates.
final class HTTPSyncTransport: SyncTransport, @unchecked Sendable {
    // @unchecked Sendable: immutable after init; URLSession is thread-safe and its
    // completions hop onto the syncer's queue.
    let settings: SyncSettings.HTTPTarget
    private let queue: DispatchQueue
    private let session: URLSession
    private let url: URL

    init(settings: SyncSettings.HTTPTarget, queue: DispatchQueue) {
        self.settings = settings
        self.queue = queue
        self.url = URL(string: settings.url)!   // checked when the config was read
        let c = URLSessionConfiguration.ephemeral
        c.timeoutIntervalForRequest = settings.timeoutSeconds
        c.timeoutIntervalForResource = settings.timeoutSeconds * 2
        c.httpMaximumConnectionsPerHost = 1
        session = URLSession(configuration: c)
    }

    var target: String { settings.url }
    var isReady: Bool { true }
    var maxInFlight: Int { 1 }

    func start(_ events: SyncTransportEvents) { events.ready() }

    func send(_ payload: [UInt8], done: @escaping @Sendable (Result<Void, SyncFailure>) -> Void) {
        var request = URLRequest(url: url, timeoutInterval: settings.timeoutSeconds)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if settings.gzip {
            request.setValue("gzip", forHTTPHeaderField: "Content-Encoding")
            request.httpBody = Data(Gzip.compress(payload))
        } else {
            request.httpBody = Data(payload)
        }
        if let tokenFile = settings.tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else {
                done(.failure(SyncFailure(message: "cannot read sync.http.token_file \(tokenFile)")))
                return
            }
            let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        let target = settings.url
        let queue = self.queue
        session.dataTask(with: request) { data, response, error in
            let result: Result<Void, SyncFailure>
            if let error {
                result = .failure(SyncFailure(message: "POST \(target): \(error.localizedDescription)"))
            } else if let http = response as? HTTPURLResponse {
                if (200..<300).contains(http.statusCode) {
                    result = .success(())
                } else {
                    let body = String(decoding: (data ?? Data()).prefix(200), as: UTF8.self)
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                    result = .failure(SyncFailure(message: "POST \(target): HTTP \(http.statusCode)" + (body.isEmpty ? "" : ": \(body)")))
                }
            } else {
                result = .failure(SyncFailure(message: "POST \(target): no HTTP response"))
            }
            queue.async { done(result) }
        }.resume()
    }

    func tick() {}

    func stop() { session.invalidateAndCancel() }
}
