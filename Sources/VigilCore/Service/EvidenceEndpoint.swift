import Foundation

/// `GET /evidence/UUID`: the alert's evidence archive (ustar); `GET /evidence/UUID/NAME`: one
/// item of it (`frame-03-trigger.png`, `audio.wav`, `readings.csv`, `alert.json`).
///
/// Camera frames are private, and an alert uuid is not a secret (it is in every alert
/// message), so the uuid alone opens nothing: without `http.token_file` evidence is answered
/// only to clients on this host (403 to others); with it, every request needs
/// `Authorization: Bearer <token>` (401 without), compared in constant time. The token file
/// is read per request, so a rotated token applies at once.
struct EvidenceEndpoint {
    let store: EvidenceStore?
    let tokenFile: String?

    func handle(_ request: HTTPRequest) -> HTTPResponse {
        if let refusal = refuse(request) { return refusal }
        let parts = request.path.dropFirst("/evidence/".count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), RowID.isUUID(parts[0]) else {
            return HTTPResponse(404, "not found: \(request.path) (expected /evidence/UUID or /evidence/UUID/ITEM)\n")
        }
        let uuid = parts[0].lowercased()
        guard let store else { return HTTPResponse(404, "no evidence is kept on this node (storage.evidence_mb is 0, or every pipeline has evidence: false)\n") }
        guard let archive = store.archive(uuid) else { return HTTPResponse(404, "no evidence for alert \(uuid) (none was kept, or it was evicted to stay under storage.evidence_mb)\n") }
        if parts.count == 1 {
            var r = HTTPResponse(200, bytes: archive, contentType: "application/x-tar")
            r.headers = [("Content-Disposition", "attachment; filename=\"\(uuid).tar\"")]
            return r
        }
        guard let entries = Tar.entries(archive) else { return HTTPResponse(503, "evidence of alert \(uuid) cannot be read\n") }
        guard let item = entries.first(where: { $0.name == parts[1] }) else {
            return HTTPResponse(404, "alert \(uuid) has no item \(parts[1]) (items: \(entries.map(\.name).joined(separator: ", ")))\n")
        }
        var r = HTTPResponse(200, bytes: item.bytes, contentType: evidenceContentType(item.name))
        r.headers = [("Content-Disposition", "inline; filename=\"\(item.name)\"")]
        return r
    }

    /// Why this request may not have evidence, or nil when it may.
    func refuse(_ request: HTTPRequest) -> HTTPResponse? {
        guard let tokenFile else {
            if request.fromLoopback { return nil }
            return HTTPResponse(403, "evidence is answered on this host only; set http.token_file to serve it to the network with a bearer token\n")
        }
        guard let data = FileManager.default.contents(atPath: tokenFile) else {
            log.limited(.error, key: "http-token", "http.token_file: cannot read \(tokenFile); evidence requests are refused")
            return HTTPResponse(503, "the token file cannot be read\n")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let auth = request.headers["authorization"] ?? ""
        let given = auth.lowercased().hasPrefix("bearer ") ? String(auth.dropFirst(7)).trimmingCharacters(in: .whitespaces) : ""
        if !token.isEmpty, EvidenceEndpoint.constantTimeEqual(Array(given.utf8), Array(token.utf8)) { return nil }
        var r = HTTPResponse(401, "a bearer token is needed (Authorization: Bearer <the token in http.token_file>)\n")
        r.headers = [("WWW-Authenticate", "Bearer realm=\"vigil\"")]
        return r
    }

    /// Compares without an early exit, so the time taken does not say how much of a guess was right.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(truncatingIfNeeded: a.count ^ b.count)
        if a.count != b.count { diff |= 1 }
        for i in 0..<b.count { diff |= (i < a.count ? a[i] : 0) ^ b[i] }
        return diff == 0
    }
}
