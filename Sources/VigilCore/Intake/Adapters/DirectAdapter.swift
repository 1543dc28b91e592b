import Foundation

/// Feeds an `f32le` vector to a model whose input holds exactly that many values.
public final class DirectAdapter: StreamAdapter {
    let shape: [Int]
    let count: Int

    public init(shape: [Int]) {
        self.shape = shape
        self.count = shape.reduce(1, *)
    }

    public func inputs(for frame: TimedFrame) throws(FrameError) -> [ModelInput] {
        guard case .vector(let values) = frame.frame else {
            throw FrameError(.wrongSize, "this pipeline feeds vectors, got another kind of frame")
        }
        guard values.count == count else {
            throw FrameError(.wrongSize, "frame holds \(values.count) values, the model takes \(count)")
        }
        return [ModelInput(values: values, shape: shape, ts: frame.ts)]
    }
}
