import Foundation

/// Environmental stream state: a sliding window of the last `window` readings, oldest
/// first, `fields` values each.
///
/// Missing fields carry the last value forward; a field never seen yet keeps the window
/// from filling, so the model never sees an invented value. Readings older than the
/// newest one already taken are dropped and counted (`out_of_order`): the window is a
/// time series the model reads in order, and inserting into the past would rewrite
/// windows whose detections are already stored. The model runs once the window is full,
/// then on every reading.
public final class SensorWindowAdapter: StreamAdapter {
    let shape: [Int]
    let window: Int
    let fields: Int
    private var last: [Float?]
    /// `window` rows of `fields` values, a ring starting at `head`.
    private var ring: [Float]
    private var head = 0
    private var filled = 0
    private var newest: Double?

    public init(shape: [Int], window: Int, fields: Int) {
        self.shape = shape; self.window = window; self.fields = fields
        last = Array(repeating: nil, count: fields)
        ring = Array(repeating: 0, count: window * fields)
    }

    public func inputs(for frame: TimedFrame) throws(FrameError) -> [ModelInput] {
        guard case .readings(let r) = frame.frame, r.count == fields else {
            throw FrameError(.wrongSize, "this pipeline feeds \(fields) readings, got another kind of frame")
        }
        if let newest, frame.ts < newest {
            throw FrameError(.outOfOrder, "reading at ts \(frame.ts) is older than the newest taken (\(newest)); dropped")
        }
        newest = frame.ts
        for i in 0..<fields where r[i] != nil { last[i] = r[i] }
        guard !last.contains(where: { $0 == nil }) else { return [] }
        let row = (head + filled) % window
        for i in 0..<fields { ring[row * fields + i] = last[i]! }
        if filled < window { filled += 1 } else { head = (head + 1) % window }
        guard filled == window else { return [] }
        var values: [Float] = []
        values.reserveCapacity(window * fields)
        for k in 0..<window {
            let base = ((head + k) % window) * fields
            values += ring[base..<base + fields]
        }
        return [ModelInput(values: values, shape: shape, ts: frame.ts)]
    }

    /// Fields that have never had a value on this device (for logs).
    public var unseenFields: [Int] { last.indices.filter { last[$0] == nil } }
}
