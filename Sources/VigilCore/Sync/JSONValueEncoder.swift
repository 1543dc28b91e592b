import Foundation

/// `Encodable` values as `JSONValue`s, keys in the order the type encodes them (a synthesized
/// conformance: declaration order), `nil` as `null`: how the records sent to the cloud
/// (Sync/CloudRecord.swift) become the JSON that `JSONValue.serialized` writes. Kept this small
/// on purpose: Foundation's `JSONEncoder` would write the same JSON, but not as a `JSONValue`
/// callers can look into (sync checks an archive's size; tests read fields), and it formats
/// numbers its own way.
extension JSONValue {
    public init<T: Encodable>(encoding value: T) throws {
        if let v = value as? JSONValue { self = v; return }
        if let e = value as? EmbeddedJSON { self = e.value; return }
        let e = JSONValueEncoder()
        try value.encode(to: e)
        self = e.result
    }
}

extension JSONValue: Encodable {
    public func encode(to encoder: Encoder) throws {
        switch self {
        case .array(let items):
            var c = encoder.unkeyedContainer()
            for v in items { try c.encode(v) }
        case .object(let members):
            var c = encoder.container(keyedBy: MemberKey.self)
            for (k, v) in members { try c.encode(v, forKey: MemberKey(stringValue: k)) }
        default:
            var c = encoder.singleValueContainer()
            switch self {
            case .bool(let b): try c.encode(b)
            case .number(let d): try c.encode(d)
            case .string(let s): try c.encode(s)
            default: try c.encodeNil()
            }
        }
    }

    struct MemberKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

final class JSONValueEncoder: Encoder {
    var codingPath: [CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    var members: [(String, JSONValue)] = []
    var items: [JSONValue] = []
    var single: JSONValue?
    private var shape = Shape.single
    enum Shape { case single, object, array }

    var result: JSONValue {
        switch shape {
        case .single: return single ?? .null
        case .object: return .object(members)
        case .array: return .array(items)
        }
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        shape = .object
        return KeyedEncodingContainer(Members<Key>(encoder: self))
    }
    func unkeyedContainer() -> UnkeyedEncodingContainer {
        shape = .array
        return Items(encoder: self)
    }
    func singleValueContainer() -> SingleValueEncodingContainer {
        shape = .single
        return Single(encoder: self)
    }

    static func nested<T: Encodable>(_ value: T) throws -> JSONValue { try JSONValue(encoding: value) }

    struct Members<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let encoder: JSONValueEncoder
        var codingPath: [CodingKey] { [] }
        mutating func encodeNil(forKey key: Key) throws { encoder.members.append((key.stringValue, .null)) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { encoder.members.append((key.stringValue, .bool(value))) }
        mutating func encode(_ value: String, forKey key: Key) throws { encoder.members.append((key.stringValue, .string(value))) }
        mutating func encode(_ value: Double, forKey key: Key) throws { encoder.members.append((key.stringValue, .number(value))) }
        mutating func encode(_ value: Float, forKey key: Key) throws { encoder.members.append((key.stringValue, .number(Double(value)))) }
        mutating func encode(_ value: Int, forKey key: Key) throws { encoder.members.append((key.stringValue, .number(Double(value)))) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { encoder.members.append((key.stringValue, .number(Double(value)))) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { encoder.members.append((key.stringValue, .number(Double(value)))) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { encoder.members.append((key.stringValue, .number(Double(value)))) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { encoder.members.append((key.stringValue, .number(Double(value)))) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { encoder.members.append((key.stringValue, .number(Double(value)))) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { encoder.members.append((key.stringValue, .number(Double(value)))) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { encoder.members.append((key.stringValue, .number(Double(value)))) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { encoder.members.append((key.stringValue, .number(Double(value)))) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { encoder.members.append((key.stringValue, .number(Double(value)))) }
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) } }
        mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) } }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) } }
        mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) } }
        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) } }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            encoder.members.append((key.stringValue, try JSONValueEncoder.nested(value)))
        }
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
            if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
        }
        mutating func nestedContainer<N: CodingKey>(keyedBy keyType: N.Type, forKey key: Key) -> KeyedEncodingContainer<N> {
            preconditionFailure("JSONValueEncoder: nested containers are not used by the cloud records")
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
            preconditionFailure("JSONValueEncoder: nested containers are not used by the cloud records")
        }
        mutating func superEncoder() -> Encoder { encoder }
        mutating func superEncoder(forKey key: Key) -> Encoder { encoder }
    }

    struct Items: UnkeyedEncodingContainer {
        let encoder: JSONValueEncoder
        var codingPath: [CodingKey] { [] }
        var count: Int { encoder.items.count }
        mutating func encodeNil() throws { encoder.items.append(.null) }
        mutating func encode(_ value: Bool) throws { encoder.items.append(.bool(value)) }
        mutating func encode(_ value: String) throws { encoder.items.append(.string(value)) }
        mutating func encode(_ value: Double) throws { encoder.items.append(.number(value)) }
        mutating func encode(_ value: Float) throws { encoder.items.append(.number(Double(value))) }
        mutating func encode(_ value: Int) throws { encoder.items.append(.number(Double(value))) }
        mutating func encode(_ value: Int8) throws { encoder.items.append(.number(Double(value))) }
        mutating func encode(_ value: Int16) throws { encoder.items.append(.number(Double(value))) }
        mutating func encode(_ value: Int32) throws { encoder.items.append(.number(Double(value))) }
        mutating func encode(_ value: Int64) throws { encoder.items.append(.number(Double(value))) }
        mutating func encode(_ value: UInt) throws { encoder.items.append(.number(Double(value))) }
        mutating func encode(_ value: UInt8) throws { encoder.items.append(.number(Double(value))) }
        mutating func encode(_ value: UInt16) throws { encoder.items.append(.number(Double(value))) }
        mutating func encode(_ value: UInt32) throws { encoder.items.append(.number(Double(value))) }
        mutating func encode(_ value: UInt64) throws { encoder.items.append(.number(Double(value))) }
        mutating func encode<T: Encodable>(_ value: T) throws { encoder.items.append(try JSONValueEncoder.nested(value)) }
        mutating func nestedContainer<N: CodingKey>(keyedBy keyType: N.Type) -> KeyedEncodingContainer<N> {
            preconditionFailure("JSONValueEncoder: nested containers are not used by the cloud records")
        }
        mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer {
            preconditionFailure("JSONValueEncoder: nested containers are not used by the cloud records")
        }
        mutating func superEncoder() -> Encoder { encoder }
    }

    struct Single: SingleValueEncodingContainer {
        let encoder: JSONValueEncoder
        var codingPath: [CodingKey] { [] }
        mutating func encodeNil() throws { encoder.single = .null }
        mutating func encode(_ value: Bool) throws { encoder.single = .bool(value) }
        mutating func encode(_ value: String) throws { encoder.single = .string(value) }
        mutating func encode(_ value: Double) throws { encoder.single = .number(value) }
        mutating func encode(_ value: Float) throws { encoder.single = .number(Double(value)) }
        mutating func encode(_ value: Int) throws { encoder.single = .number(Double(value)) }
        mutating func encode(_ value: Int8) throws { encoder.single = .number(Double(value)) }
        mutating func encode(_ value: Int16) throws { encoder.single = .number(Double(value)) }
        mutating func encode(_ value: Int32) throws { encoder.single = .number(Double(value)) }
        mutating func encode(_ value: Int64) throws { encoder.single = .number(Double(value)) }
        mutating func encode(_ value: UInt) throws { encoder.single = .number(Double(value)) }
        mutating func encode(_ value: UInt8) throws { encoder.single = .number(Double(value)) }
        mutating func encode(_ value: UInt16) throws { encoder.single = .number(Double(value)) }
        mutating func encode(_ value: UInt32) throws { encoder.single = .number(Double(value)) }
        mutating func encode(_ value: UInt64) throws { encoder.single = .number(Double(value)) }
        mutating func encode<T: Encodable>(_ value: T) throws { encoder.single = try JSONValueEncoder.nested(value) }
    }
}
