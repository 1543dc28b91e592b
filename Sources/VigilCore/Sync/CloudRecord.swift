import Foundation
import SQLite

// The records the cloud receives, one per row of the log: `Codable` values decoded from the
// log's columns by name (SQLite's `Database.fetch`) and encoded as JSON (`JSONValue(encoding:)`)
// in declaration order. The wire format is the contract docs/sync.md shows; a column added to
// a table goes here by name, not by counting positions in a SELECT.

/// A row as the cloud receives it: the fields every record has, then its table's own (`Body`),
/// flat in one JSON object.
struct CloudRecord<Body: Codable>: Codable {
    var type: String
    var uuid: String
    var node: String
    var ts: Double
    var pipeline: String
    var device: String
    var body: Body

    enum CodingKeys: String, CodingKey { case type, uuid, node, ts, pipeline, device }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(String.self, forKey: .type)
        uuid = try c.decode(String.self, forKey: .uuid)
        node = try c.decode(String.self, forKey: .node)
        ts = try c.decode(Double.self, forKey: .ts)
        pipeline = try c.decode(String.self, forKey: .pipeline)
        device = try c.decode(String.self, forKey: .device)
        body = try Body(from: decoder)
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        try c.encode(uuid, forKey: .uuid)
        try c.encode(node, forKey: .node)
        try c.encode(ts, forKey: .ts)
        try c.encode(pipeline, forKey: .pipeline)
        try c.encode(device, forKey: .device)
        try body.encode(to: encoder)   // the same object: its keys follow
    }
}

typealias CloudAlert = CloudRecord<AlertFields>
typealias CloudDetection = CloudRecord<DetectionFields>
typealias CloudEvidence = CloudRecord<EvidenceFields>

/// An `alerts` row's own fields.
struct AlertFields: Codable {
    var state: String
    var label: String?
    var score: Double?
    var severity: String?
    /// Each action and its outcome (the column's JSON).
    var actions: EmbeddedJSON
}

/// A `detections` row's own fields.
struct DetectionFields: Codable {
    var model: String
    var label: String
    var score: Double
    /// Every label's score (the column's JSON).
    var scores: EmbeddedJSON
    var latencyMs: Double?

    enum CodingKeys: String, CodingKey {
        case model, label, score, scores
        case latencyMs = "latency_ms"
    }
}

/// An `evidence` row's own fields, with its archive (`<uuid>.tar`) in base64.
struct EvidenceFields: Codable {
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

/// An `enrollments` row (issue 18) as the cloud receives it: no device (an enrollment belongs
/// to a pipeline); the prototypes (float32 LE rows of `dim`) in base64. Read from SQL as
/// `hex(prototypes)` (the row decoder reads text and numbers) and turned into base64 after.
struct CloudEnrollment: Codable {
    var type: String
    var uuid: String
    var node: String
    var ts: Double
    var pipeline: String
    var label: String
    var kind: String
    var modelVersion: String
    var dim: Int
    var threshold: Double
    var source: String
    var prototypes: String

    enum CodingKeys: String, CodingKey {
        case type, uuid, node, ts, pipeline, label, kind, dim, threshold, source, prototypes
        case modelVersion = "model_version"
    }
}

extension Data {
    /// Bytes from SQLite's `hex()` (upper-case pairs); a stray character ends the bytes there.
    init(hex: String) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8? = nil
        for c in hex.utf8 {
            let v: UInt8
            switch c {
            case 48...57: v = c - 48
            case 65...70: v = c - 55
            case 97...102: v = c - 87
            default: self.init(bytes); return
            }
            if let h = high { bytes.append(h << 4 | v); high = nil } else { high = v }
        }
        self.init(bytes)
    }
}
