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
///
/// Only a sensor's own `ts` can be out of order: a reading stamped with its arrival time is
/// in order by definition (a lane takes a device's frames in arrival order), so when the
/// gateway's clock is stepped back (NTP), arrival-stamped readings move the mark back with
/// it instead of being dropped until the clock catches up. A mark further ahead of the
/// arrival time than `maxClockSkew` can only be left from before such a step (the decoder
/// rejects payload times that far ahead), so it is forgotten too.
///
/// For a stateful anomaly model (`vigil.state`) it also keeps the device's baseline
/// (`AnomalyState`): every complete reading updates it, each window goes out with the
/// baseline as it was before that window's newest reading, and each score comes back
/// (`observe`) to set the device's threshold from its false-alarm budget.
public final class SensorWindowAdapter: StreamAdapter {
    let shape: [Int]
    let window: Int
    let fields: Int
    let maxClockSkew: Double
    private var last: [Float?]
    /// `window` rows of `fields` values, a ring starting at `head`.
    private var ring: [Float]
    private var head = 0
    private var filled = 0
    private var newest: Double?
    let anomaly: AnomalyState?

    public init(shape: [Int], window: Int, fields: Int, maxClockSkew: Double = LimitSettings().maxClockSkew) {
        self.shape = shape; self.window = window; self.fields = fields; self.maxClockSkew = maxClockSkew
        last = Array(repeating: nil, count: fields)
        ring = Array(repeating: 0, count: window * fields)
        anomaly = nil
    }

    init(shape: [Int], window: Int, fields: Int, maxClockSkew: Double = LimitSettings().maxClockSkew, anomaly: AnomalyState) {
        self.shape = shape; self.window = window; self.fields = fields; self.maxClockSkew = maxClockSkew
        last = Array(repeating: nil, count: fields)
        ring = Array(repeating: 0, count: window * fields)
        self.anomaly = anomaly
    }

    public func inputs(for frame: TimedFrame) throws(FrameError) -> [ModelInput] {
        guard case .readings(let r) = frame.frame, r.count == fields else {
            throw FrameError(.wrongSize, "this pipeline feeds \(fields) readings, got another kind of frame")
        }
        if let mark = newest, mark > frame.receivedAt + maxClockSkew {
            log.limited(.warning, key: "clock-step", "sensor time mark \(mark) is \(Int(mark - frame.receivedAt)) s ahead of the gateway's clock (stepped back?); starting the mark again")
            newest = nil
        }
        if let newest, frame.ts < newest, frame.hasOwnTime {
            throw FrameError(.outOfOrder, "reading at ts \(frame.ts) is older than the newest taken (\(newest)); dropped")
        }
        newest = frame.ts
        for i in 0..<fields where r[i] != nil { last[i] = r[i] }
        guard !last.contains(where: { $0 == nil }) else { return [] }
        let row = (head + filled) % window
        for i in 0..<fields { ring[row * fields + i] = last[i]! }
        if filled < window { filled += 1 } else { head = (head + 1) % window }
        let state = anomaly?.rows()
        if let anomaly { anomaly.update(ts: frame.ts, values: last.map { $0! }) }
        guard filled == window else { return [] }
        var values: [Float] = []
        values.reserveCapacity(window * fields)
        for k in 0..<window {
            let base = ((head + k) % window) * fields
            values += ring[base..<base + fields]
        }
        guard let state, let anomaly else { return [ModelInput(values: values, shape: shape, ts: frame.ts)] }
        return [ModelInput(values: values, shape: shape, ts: frame.ts, state: state,
                           stateShape: [1, anomaly.layout.count, fields])]
    }

    public func observe(_ detection: inout Detection) { anomaly?.observe(&detection) }

    public func retire() { anomaly?.publish() }

    /// The device's baseline state, for tests and logs (nil without a stateful model).
    var baselineSnapshot: BaselineSnapshot? { anomaly?.snapshot }

    /// Fields that have never had a value on this device (for logs).
    public var unseenFields: [Int] { last.indices.filter { last[$0] == nil } }
}
