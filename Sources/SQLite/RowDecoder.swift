/// Rows as `Decodable` values, read by column name (GRDB's `FetchableRecord` idea in a few
/// lines): a query's columns are matched to the type's coding keys, so a record is built from
/// `SELECT uuid, ts, ...` without counting column positions.
extension Database {
    /// Runs `sql` and decodes every row into `T`. A key with no column of that name, or a
    /// column whose value does not fit the property's type, throws a `DecodingError` naming it.
    public func fetch<T: Decodable>(_ type: T.Type, _ sql: String, _ bindings: [SQLValue] = []) throws -> [T] {
        let st = try prepare(sql)
        try st.bind(bindings)
        let names = (0..<st.columnCount).map(st.columnName)
        var index: [String: Int] = [:]
        for (i, n) in names.enumerated() where index[n] == nil { index[n] = i }
        var out: [T] = []
        while try st.step() {
            out.append(try T(from: RowDecoder(index: index, values: st.row())))
        }
        return out
    }
}

/// One row seen as a keyed container: column name -> value.
struct RowDecoder: Decoder {
    let index: [String: Int]
    let values: [SQLValue]
    var codingPath: [CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(Columns<Key>(row: self))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch([SQLValue].self, .init(codingPath: [], debugDescription: "a row decodes only into a keyed type"))
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer {
        throw DecodingError.typeMismatch(SQLValue.self, .init(codingPath: [], debugDescription: "a row decodes only into a keyed type"))
    }

    struct Columns<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let row: RowDecoder
        var codingPath: [CodingKey] { [] }
        var allKeys: [Key] { row.index.keys.compactMap { Key(stringValue: $0) } }

        func contains(_ key: Key) -> Bool { row.index[key.stringValue] != nil }

        private func value(_ key: Key) throws -> SQLValue {
            guard let i = row.index[key.stringValue] else {
                throw DecodingError.keyNotFound(key, .init(codingPath: [key], debugDescription: "no column \(key.stringValue) in the query"))
            }
            return row.values[i]
        }

        func decodeNil(forKey key: Key) throws -> Bool { try value(key) == .null }
        func decode(_ type: String.Type, forKey key: Key) throws -> String { try column(key).decode(type) }
        func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try column(key).decode(type) }
        func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try column(key).decode(type) }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try column(key).decode(type) }
        func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try column(key).decode(type) }
        func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try column(key).decode(type) }
        func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try column(key).decode(type) }
        func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try column(key).decode(type) }
        func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try column(key).decode(type) }
        func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try column(key).decode(type) }
        func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try column(key).decode(type) }
        func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try column(key).decode(type) }
        func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try column(key).decode(type) }
        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try column(key).decode(type) }
        // An optional property still needs its column: a misspelt name throws instead of
        // reading as NULL (`contains` tells a type that wants to check first).
        func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { let c = try column(key); return c.decodeNil() ? nil : try c.decode(type) }
        func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { let c = try column(key); return c.decodeNil() ? nil : try c.decode(type) }
        func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { let c = try column(key); return c.decodeNil() ? nil : try c.decode(type) }
        func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { let c = try column(key); return c.decodeNil() ? nil : try c.decode(type) }
        func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { let c = try column(key); return c.decodeNil() ? nil : try c.decode(type) }
        func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { let c = try column(key); return c.decodeNil() ? nil : try c.decode(type) }
        func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { let c = try column(key); return c.decodeNil() ? nil : try c.decode(type) }
        func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { let c = try column(key); return c.decodeNil() ? nil : try c.decode(type) }
        func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { let c = try column(key); return c.decodeNil() ? nil : try c.decode(type) }
        func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { let c = try column(key); return c.decodeNil() ? nil : try c.decode(type) }
        func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { let c = try column(key); return c.decodeNil() ? nil : try c.decode(type) }
        func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { let c = try column(key); return c.decodeNil() ? nil : try c.decode(type) }
        func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { let c = try column(key); return c.decodeNil() ? nil : try c.decode(type) }
        func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { let c = try column(key); return c.decodeNil() ? nil : try c.decode(type) }
        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? { let c = try column(key); return c.decodeNil() ? nil : try T(from: c) }
        private func column(_ key: Key) throws -> Column { Column(key: key, value: try value(key)) }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            // A type of its own made from one column (JSON text parsed, say): it reads the value.
            try T(from: column(key))
        }
        func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: Key) throws -> KeyedDecodingContainer<N> {
            throw DecodingError.typeMismatch(type, .init(codingPath: [key], debugDescription: "column \(key.stringValue) is not a nested value"))
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer {
            throw DecodingError.typeMismatch([Any].self, .init(codingPath: [key], debugDescription: "column \(key.stringValue) is not a list"))
        }
        func superDecoder() throws -> Decoder { row }
        func superDecoder(forKey key: Key) throws -> Decoder { row }
    }
}

/// One column's value, for a type that decodes itself from a single value.
struct Column: Decoder, SingleValueDecodingContainer {
    let key: CodingKey
    let value: SQLValue
    var codingPath: [CodingKey] { [key] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        throw DecodingError.typeMismatch(type, .init(codingPath: [key], debugDescription: "column \(key.stringValue) is one value"))
    }
    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch([Any].self, .init(codingPath: [key], debugDescription: "column \(key.stringValue) is one value"))
    }
    func singleValueContainer() throws -> SingleValueDecodingContainer { self }

    private func mismatch<T>(_ type: T.Type) -> DecodingError {
        DecodingError.typeMismatch(type, .init(codingPath: [key], debugDescription: "column \(key.stringValue) holds \(value)"))
    }
    func decodeNil() -> Bool { value == .null }
    func decode(_ type: String.Type) throws -> String { guard let s = value.string else { throw mismatch(type) }; return s }
    func decode(_ type: Double.Type) throws -> Double { guard let d = value.double else { throw mismatch(type) }; return d }
    func decode(_ type: Int64.Type) throws -> Int64 { guard let i = value.int else { throw mismatch(type) }; return i }
    func decode(_ type: Int.Type) throws -> Int { Int(try decode(Int64.self)) }
    func decode(_ type: Bool.Type) throws -> Bool { try decode(Int64.self) != 0 }
    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }
    func decode(_ type: Int8.Type) throws -> Int8 { throw mismatch(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { throw mismatch(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { Int32(truncatingIfNeeded: try decode(Int64.self)) }
    func decode(_ type: UInt.Type) throws -> UInt { throw mismatch(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { throw mismatch(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { throw mismatch(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { throw mismatch(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { throw mismatch(type) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: self) }
}
