import SQLite

// The records the cloud receives, one per row of the log: `Codable` values decoded from the
// log's columns by name (SQLite's `Database.fetch`) and encoded as JSON (`JSONValue(encoding:)`)
// in declaration order. The wire format is the contract docs/sync.md shows; a column added to
// a table goes here by name, not by counting positions in a SELECT.

/// An `alerts` row as sent.
struct CloudAlert: Codable {
    var type: String
    var uuid: String
    var node: String
    var ts: Double
    var pipeline: String
    var device: String
    var state: String
    var label: String?
    var score: Double?
    var severity: String?
    /// Each action and its outcome (the column's JSON).
    var actions: EmbeddedJSON
}

/// A `detections` row as sent.
struct CloudDetection: Codable {
    var type: String
    var uuid: String
    var node: String
    var ts: Double
    var pipeline: String
    var device: String
    var model: String
    var label: String
    var score: Double
    /// Every label's score (the column's JSON).
    var scores: EmbeddedJSON
    var latencyMs: Double?

    enum CodingKeys: String, CodingKey {
        case type, uuid, node, ts, pipeline, device, model, label, score, scores
        case latencyMs = "latency_ms"
    }
}

/// An `evidence` row as sent, with its archive (`<uuid>.tar`) in base64.
struct CloudEvidence: Codable {
    var type: String
    var uuid: String
    var node: String
    var ts: Double
    var pipeline: String
    var device: String
    var kind: String
    var items: EmbeddedJSON
    /// Filled from the file after the row is read (no column holds it: selected as NULL).
    var archive: String?
}

/// A record with its row's place in the log: the id the sync cursor moves past, and for
/// evidence the file and its size (read, not sent).
struct OutboxRow<Record: Decodable>: Decodable {
    let id: Int64
    let file: String?
    let bytes: Int?
    let record: Record

    enum CodingKeys: String, CodingKey { case id, file, bytes }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(Int64.self, forKey: .id)
        file = c.contains(.file) ? try c.decodeIfPresent(String.self, forKey: .file) : nil
        bytes = c.contains(.bytes) ? try c.decodeIfPresent(Int.self, forKey: .bytes) : nil
        record = try Record(from: decoder)
    }
}

/// A column holding JSON text, sent as the JSON it holds; text that does not parse goes as a
/// string (it was written by vigild as JSON, so that means a hand edit), NULL as null.
struct EmbeddedJSON: Codable {
    let value: JSONValue

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            value = .null
        } else {
            let text = try c.decode(String.self)
            value = (try? JSONParser.parse(text)) ?? .string(text)
        }
    }

    func encode(to encoder: Encoder) throws { try value.encode(to: encoder) }
}
