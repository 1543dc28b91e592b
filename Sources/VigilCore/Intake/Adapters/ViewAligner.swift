import Foundation

/// Keeps a creeping camera's frames on its state's view (motion v2.12, issue 16). A camera on a
/// pole or a bracket that settles slides by a pixel or two over minutes; the background, the
/// clean background and the maps were learnt on the old view, so every edge in the picture
/// (a kerb, a painted line) then differs from them and reads as motion. Each frame is moved
/// back onto the state's view by an offset (sub-pixel, bilinear; `CameraState.viewOffset`, saved
/// with the state) before anything reads it, and the offset follows what the frame says is left
/// of the slide (`step`: one Lucas-Kanade step on the 3x3-blurred frame and background, with a
/// gain and an offset of brightness, counting only the pixels a shift explains, and the median
/// of the view's blocks' shifts, so a passer-by or a car does not pull it; pixels the restless
/// map marks, foliage, take no part). Models/training/motion_stream.py (`warp`, `align_step`) does the
/// same. The constants below were fixed before any run; the fitted brightness, the blocks'
/// median, leaving the restless pixels out and moving on every frame were chosen on tuning
/// streams (Models/motion.md, v2.12).
struct ViewAligner {
    let width: Int, height: Int

    /// |residual| (3x3 box mean) below which a pixel counts: the first pass, then the two after
    /// (a shift of a quarter pixel moves a sharp edge by less; an object by far more).
    static let inlierBars: [Float] = [0.1, 0.06, 0.06]
    /// The share of pixels that must count for a frame to move the offset.
    static let inlierShare: Float = 0.5
    /// The share of a frame's estimate taken (halves the estimate's noise; a creep is slow).
    static let gain = 0.5
    /// Px a frame may move the offset by, at most, and px the offset may reach (at 160 x 120):
    /// a camera knocked further has been re-aimed, which the `lighting` re-base handles.
    static let maxStep = 0.25
    static let reach = 4.0
    /// The scene's texture (the smaller eigenvalue of the gradients' mean outer product) below
    /// which no shift can be told (a blank wall, a dark night).
    static let minTexture = 2e-5
    /// The view is cut into `blocks` x `blocks`; the shift is the median of the blocks' own (with
    /// texture and `inlierShare` of their pixels fitting; at least `blocks` of them): a large
    /// object crossing the view moves its own blocks' estimates, not most of them (on the tuning
    /// streams one estimate for the whole view followed a white van a pixel along).
    static let blocks = 4
    /// Pixels at least this restless (the `restless` map: the share of time they keep changing)
    /// take no part: foliage sways, the view does not (the model's own bar, TD, is the same 0.3;
    /// on the tuning streams trees in gusts took the estimate along without it).
    static let maxRestless: Float = 0.3

    init(width: Int, height: Int) { self.width = width; self.height = height }

    // Work planes, kept between frames so that a frame allocates nothing.
    private var moved: [Float] = []
    private var blurred: [Float] = []
    private var reference: [Float] = []
    private var rows: [Float] = []
    // Each pixel's terms of the fit, computed once a frame (every pass and the blocks read them):
    // the background's vertical and horizontal gradients and the gain-matched difference.
    private var gradY: [Float] = []
    private var gradX: [Float] = []
    private var error: [Float] = []

    /// Moves `frame` onto the view of `background` (the device's), after letting it move
    /// `offset`: where the state's view sits in this camera's frames, px at the model's size (a
    /// frame is read at y - offset.y, x - offset.x). The offset moves on every frame but one after
    /// `lighting` (`holding`): a creep makes the model say `motion`, and an offset that waited for
    /// `still` froze on the tuning streams' creeping view (v2.12); after `lighting` the background
    /// may have been replaced by the last frame, whatever was crossing it included, and the
    /// blocks' median followed a large object across a run of such frames on a still camera
    /// (1.4 px, after which its empty frames said motion; Models/motion.md, v2.13).
    /// `restless`: the device's restless map, if it keeps one.
    mutating func align(_ frame: inout [Float], to background: [Float], restless: [Float]? = nil, holding: Bool = false,
                        offset: inout (y: Double, x: Double)) {
        let n = width * height
        guard frame.count == n, background.count == n, n > 0 else { return }
        let restless = restless?.count == n ? restless : nil
        if moved.count != n {
            moved = [Float](repeating: 0, count: n); blurred = moved; reference = moved; rows = moved
            gradY = moved; gradX = moved; error = moved
        }
        let measuredAt = offset
        ViewAligner.warp(frame, by: offset, into: &moved, width: width, height: height)
        if !holding, let d = step(moved, background, restless) {
            func clamp(_ v: Double, _ limit: Double) -> Double { min(limit, max(-limit, v)) }
            offset = (clamp(offset.y + clamp(ViewAligner.gain * d.y, ViewAligner.maxStep), ViewAligner.reach),
                      clamp(offset.x + clamp(ViewAligner.gain * d.x, ViewAligner.maxStep), ViewAligner.reach))
        }
        guard offset != (0, 0) else { return }
        // Held, no estimate (too little texture or fit) or the offset at its reach: the frame warped to measure is the one to use.
        if offset != measuredAt {
            ViewAligner.warp(frame, by: offset, into: &moved, width: width, height: height)
        }
        swap(&frame, &moved)
    }

    /// How far (y, x) the frame's content still sits from the background's (frame(p) ~
    /// background(p + d)), or nil when fewer than `inlierShare` of the pixels fit or the scene
    /// has too little texture to tell. A gain and an offset of brightness are fitted with the
    /// shift: matching the means alone leaves a scale error (an exposure that clipped a car's
    /// highlights), and on a scene lit unevenly a scale error reads as a shift.
    private mutating func step(_ frame: [Float], _ background: [Float], _ restless: [Float]?) -> (y: Double, x: Double)? {
        let w = width, h = height, n = w * h
        ViewAligner.blur(frame, into: &blurred, rows: &rows, width: w, height: h)
        ViewAligner.blur(background, into: &reference, rows: &rows, width: w, height: h)
        var sf: Float = 0, sb: Float = 0, sr: Float = 0
        for i in 0..<n { sf += frame[i]; sb += background[i]; sr += reference[i] }
        let g = (sb / Float(n)) / max(sf / Float(n), 1e-3), mean = Double(sr / Float(n))
        for y in 0..<h {
            for x in 0..<w {
                let i = y * w + x
                gradY[i] = y > 0 && y < h - 1 ? (reference[i + w] - reference[i - w]) / 2 : 0
                gradX[i] = x > 0 && x < w - 1 ? (reference[i + 1] - reference[i - 1]) / 2 : 0
                error[i] = blurred[i] * g - reference[i]
            }
        }
        var d = [Double](repeating: 0, count: 4), mask = d
        for bar in ViewAligner.inlierBars {
            // The normal equations of e = gy dy + gx dx + (b - mean) gain + offset, over the pixels that fit.
            // Scalars, not arrays, in the loop: a per-pixel array would allocate.
            var a00 = 0.0, a01 = 0.0, a02 = 0.0, a03 = 0.0, a11 = 0.0, a12 = 0.0, a13 = 0.0, a22 = 0.0, a23 = 0.0, a33 = 0.0
            // `fitting`: pixels within the bar (the share asked for); `count`: those of them not restless.
            var v0 = 0.0, v1 = 0.0, v2 = 0.0, v3 = 0.0, count = 0, fitting = 0
            let (d0, d1, d2, d3) = (d[0], d[1], d[2], d[3]), limit = Double(bar)
            for i in 0..<n {
                let c0 = Double(gradY[i]), c1 = Double(gradX[i]), c2 = Double(reference[i]) - mean, e = Double(error[i])
                guard abs(e - c0 * d0 - c1 * d1 - c2 * d2 - d3) < limit else { continue }
                fitting += 1
                if let r = restless, r[i] >= ViewAligner.maxRestless { continue }
                a00 += c0 * c0; a01 += c0 * c1; a02 += c0 * c2; a03 += c0
                a11 += c1 * c1; a12 += c1 * c2; a13 += c1
                a22 += c2 * c2; a23 += c2; a33 += 1
                v0 += c0 * e; v1 += c1 * e; v2 += c2 * e; v3 += e
                count += 1
            }
            let a = [a00, a01, a02, a03, a01, a11, a12, a13, a02, a12, a22, a23, a03, a13, a23, a33], v = [v0, v1, v2, v3]
            guard Float(fitting) >= ViewAligner.inlierShare * Float(n) else { return nil }
            // The shift's own block: its smaller eigenvalue says whether the scene has texture both ways.
            let half = (a[0] + a[5]) / 2, spread = ((a[0] - a[5]) / 2) * ((a[0] - a[5]) / 2) + a[1] * a[1]
            guard half - spread.squareRoot() >= ViewAligner.minTexture * Double(count),
                  let solved = ViewAligner.solve(a, v) else { return nil }
            mask = d
            d = solved
        }
        return blockMedian(fit: d, mask: mask, bar: Double(ViewAligner.inlierBars.last!), mean: mean, restless: restless)
    }

    /// The median over the blocks of each block's own shift, with the brightness terms of `fit`
    /// (over the whole view) taken out first and the pixels that fitted the last pass (`mask`:
    /// the estimate that pass measured residuals against); nil when fewer than `blocks` blocks
    /// can tell a shift.
    private func blockMedian(fit d: [Double], mask: [Double], bar: Double, mean: Double, restless: [Float]?) -> (y: Double, x: Double)? {
        let w = width, h = height, nb = ViewAligner.blocks
        // Block edges as numpy's slices take them: block b starts at b * size / nb.
        func index(_ i: Int, _ size: Int) -> Int { (0..<nb).last { $0 * size / nb <= i }! }
        let rowBlock = (0..<h).map { index($0, h) }, colBlock = (0..<w).map { index($0, w) }
        var sums = [Double](repeating: 0, count: nb * nb * 5), counts = [Int](repeating: 0, count: nb * nb)
        var sizes = [Int](repeating: 0, count: nb * nb)
        for y in 0..<h {
            for x in 0..<w {
                let i = y * w + x, b = rowBlock[y] * nb + colBlock[x]
                sizes[b] += 1
                let c0 = Double(gradY[i]), c1 = Double(gradX[i]), c2 = Double(reference[i]) - mean, e = Double(error[i])
                guard abs(e - c0 * mask[0] - c1 * mask[1] - c2 * mask[2] - mask[3]) < bar else { continue }
                if let r = restless, r[i] >= ViewAligner.maxRestless { continue }
                let rest = e - c2 * d[2] - d[3]
                sums[b * 5] += c0 * c0; sums[b * 5 + 1] += c0 * c1; sums[b * 5 + 2] += c1 * c1
                sums[b * 5 + 3] += c0 * rest; sums[b * 5 + 4] += c1 * rest
                counts[b] += 1
            }
        }
        var ys: [Double] = [], xs: [Double] = []
        for b in 0..<(nb * nb) where Float(counts[b]) >= ViewAligner.inlierShare * Float(sizes[b]) {
            let ayy = sums[b * 5], ayx = sums[b * 5 + 1], axx = sums[b * 5 + 2], vy = sums[b * 5 + 3], vx = sums[b * 5 + 4]
            let half = (ayy + axx) / 2, spread = ((ayy - axx) / 2) * ((ayy - axx) / 2) + ayx * ayx
            guard half - spread.squareRoot() >= ViewAligner.minTexture * Double(counts[b]) else { continue }
            let det = ayy * axx - ayx * ayx
            ys.append((axx * vy - ayx * vx) / det)
            xs.append((ayy * vx - ayx * vy) / det)
        }
        guard ys.count >= nb else { return nil }
        func median(_ v: [Double]) -> Double {
            let s = v.sorted(), k = s.count / 2
            return s.count % 2 == 1 ? s[k] : (s[k - 1] + s[k]) / 2
        }
        return (median(ys), median(xs))
    }

    /// x of a x = v for a 4 x 4 (row-major), by elimination with partial pivoting; nil when singular.
    static func solve(_ a: [Double], _ v: [Double]) -> [Double]? {
        var m = a, b = v
        for col in 0..<4 {
            let p = (col..<4).max { abs(m[$0 * 4 + col]) < abs(m[$1 * 4 + col]) }!
            guard abs(m[p * 4 + col]) > 1e-12 else { return nil }
            if p != col {
                for k in 0..<4 { m.swapAt(p * 4 + k, col * 4 + k) }
                b.swapAt(p, col)
            }
            for r in (col + 1)..<4 {
                let f = m[r * 4 + col] / m[col * 4 + col]
                for k in col..<4 { m[r * 4 + k] -= f * m[col * 4 + k] }
                b[r] -= f * b[col]
            }
        }
        var x = [Double](repeating: 0, count: 4)
        for r in (0..<4).reversed() {
            var s = b[r]
            for k in (r + 1)..<4 { s -= m[r * 4 + k] * x[k] }
            x[r] = s / m[r * 4 + r]
        }
        return x
    }

    private static func blur(_ x: [Float], into out: inout [Float], rows: inout [Float], width w: Int, height h: Int) {
        x.withUnsafeBufferPointer { x in
            rows.withUnsafeMutableBufferPointer { rows in
                out.withUnsafeMutableBufferPointer { CameraState.box3(x, into: $0, rows: rows, width: w, height: h) }
            }
        }
    }

    /// `image` moved by `offset`: out[y, x] = image[y - offset.y, x - offset.x], bilinear, edge
    /// pixels repeated. The same shift everywhere, so each row and column needs one pair of
    /// source indices and one weight.
    static func warp(_ image: [Float], by offset: (y: Double, x: Double), into out: inout [Float], width w: Int, height h: Int) {
        func taps(_ i: Int, _ o: Double, _ size: Int) -> (Int, Int, Float) {
            let p = Double(i) - o, f = p.rounded(.down)
            return (min(max(Int(f), 0), size - 1), min(max(Int(f) + 1, 0), size - 1), Float(p - f))
        }
        let cols = (0..<w).map { taps($0, offset.x, w) }
        for y in 0..<h {
            let (ya, yb, fy) = taps(y, offset.y, h)
            let top = ya * w, bottom = yb * w, row = y * w
            for x in 0..<w {
                let (xa, xb, fx) = cols[x]
                let left = image[top + xa] * (1 - fy) + image[bottom + xa] * fy
                let right = image[top + xb] * (1 - fy) + image[bottom + xb] * fy
                out[row + x] = left * (1 - fx) + right * fx
            }
        }
    }
}
