import Foundation

/// Runs `python3 -c script` with `input` on stdin; returns its status and stdout.
public func python(_ script: String, input: [UInt8] = []) -> (status: Int32, output: [UInt8]) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script]
    let stdin = Pipe(), stdout = Pipe()
    p.standardInput = stdin
    p.standardOutput = stdout
    do { try p.run() } catch { return (-1, []) }
    let writer = Thread {
        stdin.fileHandleForWriting.write(Data(input))
        try? stdin.fileHandleForWriting.close()
    }
    writer.start()
    let out = stdout.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, Array(out))
}

/// An 8-bit greyscale PNG decoded by an independent decoder (Python's zlib and the PNG
/// filter definitions): width, height and pixels; nil when it is not a valid one.
public func decodeGreyPNG(_ png: [UInt8]) -> (width: Int, height: Int, pixels: [UInt8])? {
    let script = """
    import sys, zlib, struct
    d = sys.stdin.buffer.read()
    assert d[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
    i, idat, w, h = 8, b'', 0, 0
    while i < len(d):
        n, = struct.unpack('>I', d[i:i+4]); t = d[i+4:i+8]; body = d[i+8:i+8+n]
        assert zlib.crc32(t + body) & 0xffffffff == struct.unpack('>I', d[i+8+n:i+12+n])[0], 'crc'
        if t == b'IHDR':
            w, h, depth, ctype = struct.unpack('>IIBB', body[:10]); assert depth == 8 and ctype == 0
        elif t == b'IDAT': idat += body
        i += 12 + n
    raw = zlib.decompress(idat)
    out, prev = bytearray(), bytearray(w)
    for y in range(h):
        f = raw[y*(w+1)]; row = bytearray(raw[y*(w+1)+1:(y+1)*(w+1)])
        for x in range(w):
            a = row[x-1] if x else 0; b = prev[x]; c = prev[x-1] if x else 0
            if f == 1: row[x] = (row[x] + a) & 255
            elif f == 2: row[x] = (row[x] + b) & 255
            elif f == 3: row[x] = (row[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[x] = (row[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += row; prev = row
    sys.stdout.buffer.write(struct.pack('>II', w, h) + bytes(out))
    """
    let r = python(script, input: png)
    guard r.status == 0, r.output.count >= 8 else { return nil }
    func u32(_ i: Int) -> Int { Int(r.output[i]) << 24 | Int(r.output[i + 1]) << 16 | Int(r.output[i + 2]) << 8 | Int(r.output[i + 3]) }
    return (u32(0), u32(4), Array(r.output[8...]))
}

/// The names and contents of a tar archive as Python's `tarfile` reads them.
public func pythonTarEntries(_ tar: [UInt8]) -> [String: [UInt8]]? {
    let script = """
    import sys, tarfile, io, struct
    t = tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()))
    for m in t.getmembers():
        b = t.extractfile(m).read(); n = m.name.encode()
        sys.stdout.buffer.write(struct.pack('>II', len(n), len(b)) + n + b)
    """
    let r = python(script, input: tar)
    guard r.status == 0 else { return nil }
    var out: [String: [UInt8]] = [:]
    var i = 0
    let o = r.output
    func u32(_ i: Int) -> Int { Int(o[i]) << 24 | Int(o[i + 1]) << 16 | Int(o[i + 2]) << 8 | Int(o[i + 3]) }
    while i + 8 <= o.count {
        let n = u32(i), b = u32(i + 4)
        out[String(decoding: o[(i + 8)..<(i + 8 + n)], as: UTF8.self)] = Array(o[(i + 8 + n)..<(i + 8 + n + b)])
        i += 8 + n + b
    }
    return out
}
