"""The motion model's ONNX graph (v2): current frame against the device's background.

frames [1, 4, 120, 160] float32, vigil.channels = current,background,activity,weight
(v2.5: [1, 5, 120, 160], + moving: 1 when the model said motion on the device's last frame)
  1. clipped pixels (>= 0.94 in either frame within 2 px) take no part (exposure steps clip)
  2. gain compensation: each frame divided by its own mean over the unclipped pixels
     (auto-exposure, lights switching, day/night: a global gain cancels)
  3. 5x5 Gaussian blur (sensor noise, JPEG)
  4. per 6x6 window (stride 2): SSIM structure term s between current and background
     (invariant to the window's own gain and offset); changed = sigmoid(K1 (1 - s - T1)),
     or (v2.1) the window's mean moved: max(changed, sigmoid(KM (|mean_c - mean_b| - TM)))
     (an evenly coloured object over a plain area changes its outline's structure only)
  4c. (v2.3) that brightness change counts only within LD windows of an outline: a window
     whose structure changed (step 4), or where the frame is no multiple of the background:
     1 - cos^2 > RC, cos = E[ab] / sqrt(E[a^2] E[b^2]) over the window (after steps 2-3; the
     uncentred cosine, 1 when a = q b). A lamp's soft pool of light multiplies the scene by a
     smooth field: within a window the frame is the background times a near-constant, the
     structure barely changes. An object in front of the scene changes structure at its
     outline, and its outline still breaks the proportion after it has stood long enough to
     sink into the background (then the structure term fades first: gating on it alone lost
     most frames of people standing 30 s). The whole-frame fraction (lighting) still counts
     every brightness change.
  5. window activity u = mean of the activity channel; stable = sigmoid(-KU (u - TU)):
     areas that keep changing (vegetation, water) stop counting. (v2.8: the restless channel
     and its bar TD in the activity's place; v2.9: u the largest within RS x RS windows, stride
     1: foliage swayed far reaches, at a gust's far end, pixels that change too rarely to be
     restless themselves, always next to ones that are)
  6. area = mean over windows of changed * stable * weight   (weight 0 = masked)
     whole = changed fraction of the watched (weight > 0) windows, stable or not
     gain = |log(mean current / mean background)| (unclipped pixels): the light level moved
  7. M = sigmoid(K2 (area / TA - 1)),
     L = 1 - (1 - sigmoid(KL (whole - TL))) (1 - sigmoid(KG (gain - TG)) (1 - local))
     scores = [ (1-M)(1-L), M(1-L), L ]   labels still,motion,lighting
  8. (v2.2) local: a light-level change that comes with a *local* change is an object the
     auto-exposure reacted to (a white car darkens the frame), not only lighting:
     local = sigmoid(KT (top - TT)) x sigmoid(K2 (sarea / (AL TA) - 1)) x sigmoid(-KG (gain - TGL)),
     on the *structure* change alone (schanged x stable x weight: sarea its mean, top its
     share in the 4 most changed of 6 x 8 cells): an object changes structure, a lamp's pool
     of light only brightness. A light switch leaves little area; a day/night switch changes
     windows all over the frame; a light step large enough to clip (gain over TGL) is left to
     the light rule.
  9. (v2.4, tried and not shipped: off unless p has AH; Models/motion.md "v2.4: tried") big: a
     large object (a car close to the camera) spreads its structure change over
     more than 4 cells and may change more than TL of the windows; it is not lighting either:
     big = sigmoid(K2 (sarea / AH - 1)) x sigmoid(KL (TW - whole)) x sigmoid(-KG (gain - TGB)),
     L = 1 - (1 - lw (1 - big)) (1 - lg (1 - max(local, big))). A light step or a lamp changes
     brightness, not structure (sarea under AH on the tuning split); a day/night switch changes
     nearly every window (whole over TW): on the tuning scenes; on the test split's baboon a
     day/night switch changed a third of the windows (whole 0.34, sarea 0.08, gain x1.3), as a
     car does, and raised alerts at every setting tried.
  10. (v2.5) big counts only while an object is in view: x the mean of the moving channel.
  11. (v2.6; off unless p has TS) recolouring: an IR-cut filter or a day/night switch that
     recolours regions (a night image that maps colours to grey differently from the day's)
     changes their brightness but not the structure inside or at their outlines; step 4c's
     outline test sees the region edges (the frame is no multiple of the background there)
     and the brightness term counts the regions as changed. So a change whose structure share
     sarea / area is under TS, over more than AR x TA of the view, on a frame after one that
     was not motion (moving 0), is lighting:
     recol = sigmoid(KS (TS - sarea / area)) x sigmoid(K2 (area / (AR TA) - 1)) x (1 - moving),
     L = 1 - (1 - lw (1 - big)) (1 - recol) (1 - lg (1 - max(local, big))).
TA is the model's default minimum changed area (vigil.min_area); the daemon sets the
weight channel to TA / min_area so a pipeline's own min_area applies exactly.
"""
import numpy as np
from onnx import helper, TensorProto

from common import const, make_model

H, W = 120, 160
SIGMA = 1.0
WIN, STRIDE = 6, 2
C = 3e-3
SAT = 0.94
K1 = 60.0
K2 = 6.0
KL = 40.0
KU = 300.0
KG = 150.0
KM = 400.0
KW = 20.0
KT = 40.0
KRC = 2000.0         # v2.3: the slope of the outline's second test (1 - cos^2 against RC)
KS = 50.0            # v2.6: the slope of the recolouring test (the structure share against TS)
CELLS = (6, 8)      # the coarse grid for the locality share (10 x 10 windows a cell)
TOP_CELLS = 4
# Scale-free stability (issue 16 experiment, off unless p["SF"] is set; v2.1 uses TU):
# a pixel (SF="pix") or a window (SF="win") counts as changed only where its deviation from
# the background, |a - b| after step 2-3, exceeds SK x its own activity (scaled to the same
# gain-matched units, x 0.5 / mean background) + SF_FLOOR: a tree that sways more raises its own
# bar, a quiet pavement keeps a low one. stable = sigmoid(KR (|a - b| / (SK act + SF_FLOOR) - 1)),
# per pixel then the window's (unclipped) fraction ("pix"), or on the window means ("win").
KR = 10.0
SF_FLOOR = 0.02      # ~2 sigma of 10/255 sensor noise after the 5x5 blur, frames at mean 0.5
CHANNELS = "current,background,activity,weight"
LABELS = "still,motion,lighting"


def gaussian_kernel(size=5, sigma=1.0):
    ax = np.arange(size) - size // 2
    g = np.exp(-ax ** 2 / (2 * sigma ** 2))
    k = np.outer(g, g)
    return (k / k.sum()).astype(np.float32)


def build(p, version, probe=False):
    """p: dict with T1, TU, TA, TL (and TM, TG, v2.2's AL, TT, TGL: the exception is off
    without them; v2.3's LD and RC: the gate is off without LD, and on the structure change
    alone without RC: results/motion_lamp_tuning.txt). probe=True: outputs [1, 5] = (area, whole, gain, top, sarea) before the
    final sigmoids (for tuning)."""
    n = helper.make_node
    # step 10 gates step 9's exception: without AH there is nothing to hold open (and no split5)
    assert not p.get("HELD") or p.get("AH") is not None, "HELD needs AH (motion_graph steps 9-10)"
    assert p.get("TS") is None or p.get("HELD"), "TS needs HELD (motion_graph step 11 reads the moving channel)"
    inits = [
        const("split4", np.array([1, 1, 1, 1]), np.int64),
        const("pads", np.array([0, 0, 2, 2, 0, 0, 2, 2]), np.int64),
        const("blur_w", gaussian_kernel(5, SIGMA).reshape(1, 1, 5, 5)),
        const("c", np.array(C)), const("one", np.array(1.0)), const("half", np.array(0.5)),
        const("tiny", np.array(1e-6)), const("eps3", np.array(1e-3)),
        const("sat", np.array(SAT)), const("ksat", np.array(200.0)),
        const("t1", np.array(p["T1"])), const("k1", np.array(K1)),
        # v2.8 (TD): the channel is `restless` (a share of time, 0-1) and its bar TD; the slope is
        # KU x TU / TD, so a window's stability is what TU gave for the activity channel scaled by TU / TD
        const("tu", np.array(p.get("TD", p["TU"]))), const("ku", np.array(-KU if p.get("TD") is None else -KU * p["TU"] / p["TD"])),
        const("inv_ta", np.array(1.0 / p["TA"])), const("k2", np.array(K2)),
        const("tl", np.array(p["TL"])), const("kl", np.array(KL)),
        const("tg", np.array(p.get("TG", 10.0))), const("kg", np.array(KG)),
        const("tm", np.array(p.get("TM", 10.0))), const("km", np.array(KM)), const("kw", np.array(KW)),
        const("big", np.array(1e4)), const("zero", np.array(0.0)),
        const("split2", np.array([1, 1]), np.int64),
        const("tt", np.array(p.get("TT", 2.0))), const("kt", np.array(KT)),
        const("inv_alta", np.array(1.0 / (p.get("AL", 1.0) * p["TA"]))), const("tgl", np.array(p.get("TGL", 0.0))),
        const("nkg", np.array(-KG)), const("eps6", np.array(1e-6)),
        const("cell_pads", np.array([0, 0, 0, 0, 0, 0, CELLS[0] * 10 - 58, CELLS[1] * 10 - 78]), np.int64),
        const("cells_shape", np.array([1, CELLS[0] * CELLS[1]]), np.int64),
        const("top_k", np.array([TOP_CELLS]), np.int64),
        const("shape_p", np.array([1, 1]), np.int64),
    ]
    nodes = [
        (n("Split", ["frames", "split5"], ["cur", "bg", "act", "wt", "mov"], axis=1) if p.get("HELD") else
         n("Split", ["frames", "split4"], ["cur", "bg", "act", "wt"], axis=1)),
        # 1. unclipped weight s (1 where neither frame is at/above SAT within 2 px)
        n("Max", ["cur", "bg"], ["mxr"]),
        n("MaxPool", ["mxr"], ["mxp"], kernel_shape=[5, 5], pads=[2, 2, 2, 2]),
        n("Sub", ["sat", "mxp"], ["hd"]), n("Mul", ["hd", "ksat"], ["hd2"]), n("Sigmoid", ["hd2"], ["s"]),
        # 2. gain compensation: x * 0.5 / mean_s(x)
        n("ReduceSum", ["s", "axes23"], ["ssum"], keepdims=1),
        n("Mul", ["s", "cur"], ["sc"]), n("ReduceSum", ["sc", "axes23"], ["scs"], keepdims=1),
        n("Mul", ["s", "bg"], ["sb"]), n("ReduceSum", ["sb", "axes23"], ["sbs"], keepdims=1),
        n("Add", ["ssum", "one"], ["ssum1"]),
        n("Div", ["scs", "ssum1"], ["mc0"]), n("Div", ["sbs", "ssum1"], ["mb0"]),
        n("Max", ["mc0", "eps3"], ["mc"]), n("Max", ["mb0", "eps3"], ["mb"]),
        n("Div", ["half", "mc"], ["gc"]), n("Div", ["half", "mb"], ["gb"]),
        n("Mul", ["cur", "gc"], ["cn"]), n("Mul", ["bg", "gb"], ["bn"]),
        # 3. blur both
        n("Concat", ["cn", "bn"], ["f2c"], axis=0),
        n("Pad", ["f2c", "pads"], ["fp"], mode="reflect"),
        n("Conv", ["fp", "blur_w"], ["blur"]),
        n("Split", ["blur", "split2"], ["a", "b"], axis=0),
        # 4. masked local moments, SSIM structure term per window
        n("Mul", ["s", "a"], ["wa"]), n("Mul", ["s", "b"], ["wb"]),
        n("Mul", ["wa", "a"], ["waa"]), n("Mul", ["wb", "b"], ["wbb"]), n("Mul", ["wa", "b"], ["wab"]),
    ]
    sf = p.get("SF")
    if sf:
        # scale-free stability: deviation against the pixel's own activity (gain-matched units)
        inits += [const("sk", np.array(p["SK"])), const("sf_floor", np.array(SF_FLOOR)), const("kr", np.array(KR))]
        nodes += [n("Sub", ["a", "b"], ["dab"]), n("Abs", ["dab"], ["adab"]), n("Mul", ["act", "gb"], ["actn"])]
        if sf == "pix":
            nodes += [n("Mul", ["actn", "sk"], ["bar0"]), n("Add", ["bar0", "sf_floor"], ["bar"]),
                      n("Div", ["adab", "bar"], ["rat"]), n("Sub", ["rat", "one"], ["rat1"]),
                      n("Mul", ["rat1", "kr"], ["rat2"]), n("Sigmoid", ["rat2"], ["exc"]),
                      n("Mul", ["exc", "s"], ["xtra"])]
        else:
            nodes += [n("Mul", ["adab", "s"], ["xtra"])]
    # window sums of the moments (and, scale-free, of the pixels over their own bar)
    sums = ["s", "wa", "wb", "waa", "wbb", "wab", "act", "wt"] + (["xtra"] if sf else [])
    means = ["sw", "sa", "sb2", "saa", "sbb", "sab", "u", "ww"] + (["xw"] if sf else [])
    split = f"split{len(sums)}"
    nodes += [n("Concat", sums, ["st"], axis=1),
              n("AveragePool", ["st"], ["pm"], kernel_shape=[WIN, WIN], strides=[STRIDE, STRIDE]),
              n("Split", ["pm", split], means, axis=1)]
    if split != "split8":
        inits.append(const(split, np.array([1] * len(sums)), np.int64))
    nodes += [
        n("Add", ["sw", "tiny"], ["swe"]),
        n("Div", ["sa", "swe"], ["ma"]), n("Div", ["sb2", "swe"], ["mbb"]),
        n("Div", ["saa", "swe"], ["eaa"]), n("Div", ["sbb", "swe"], ["ebb"]), n("Div", ["sab", "swe"], ["eab"]),
        n("Mul", ["ma", "ma"], ["ma2"]), n("Mul", ["mbb", "mbb"], ["mb2"]), n("Mul", ["ma", "mbb"], ["mab"]),
        n("Sub", ["eaa", "ma2"], ["va0"]), n("Sub", ["ebb", "mb2"], ["vb0"]), n("Sub", ["eab", "mab"], ["cov"]),
        n("Relu", ["va0"], ["va"]), n("Relu", ["vb0"], ["vb"]),
        n("Add", ["va", "c"], ["vac"]), n("Add", ["vb", "c"], ["vbc"]),
        n("Mul", ["vac", "vbc"], ["pp"]), n("Sqrt", ["pp"], ["den"]),
        n("Add", ["cov", "c"], ["num"]), n("Div", ["num", "den"], ["sim"]),
        n("Sub", ["one", "sim"], ["d"]),
        n("Sub", ["d", "t1"], ["d1"]), n("Mul", ["d1", "k1"], ["d2"]), n("Sigmoid", ["d2"], ["schanged"]),
        # 4b. luminance: the window's mean moved against the background's (both gain-matched):
        #     an evenly coloured object over a plain area changes little structure inside
        n("Sub", ["ma", "mbb"], ["dm"]), n("Abs", ["dm"], ["adm"]),
        n("Sub", ["adm", "tm"], ["dm1"]), n("Mul", ["dm1", "km"], ["dm2"]), n("Sigmoid", ["dm2"], ["lch0"]),
        #     only where most of the window is unclipped: the mean of a few pixels left
        #     between blown-out highlights (exposure steps) is not a brightness change
        n("Sub", ["sw", "half"], ["sw1"]), n("Mul", ["sw1", "kw"], ["sw2"]), n("Sigmoid", ["sw2"], ["seen"]),
        n("Mul", ["lch0", "seen"], ["lchanged0" if p.get("LD") else "lchanged"]),
    ]
    if p.get("LD"):
        # 4c. (v2.3) a brightness change counts only within LD windows of an outline: a change
        #     of structure, or (RC) a frame that is no multiple of the background; a lamp's soft
        #     pool of light multiplies the scene and has neither
        ld, seed = int(p["LD"]), "schanged"
        if p.get("RC") is not None:     # or the frame is no multiple of the background within the window
            inits += [const("rc", np.array(p["RC"])), const("krc", np.array(KRC)), const("eps12", np.array(1e-12))]
            nodes += [n("Mul", ["eab", "eab"], ["eab2"]), n("Mul", ["eaa", "ebb"], ["eaabb"]), n("Add", ["eaabb", "eps12"], ["eaabb1"]),
                      n("Div", ["eab2", "eaabb1"], ["cos2"]), n("Sub", ["one", "cos2"], ["ncos"]), n("Sub", ["ncos", "rc"], ["nc1"]),
                      n("Mul", ["nc1", "krc"], ["nc2"]), n("Sigmoid", ["nc2"], ["cchanged"]), n("Max", ["schanged", "cchanged"], ["outline"])]
            seed = "outline"
        nodes += [n("MaxPool", [seed], ["snear"], kernel_shape=[ld, ld], strides=[1, 1], pads=[ld // 2] * 4),
                  n("Mul", ["lchanged0", "snear"], ["lchanged"])]
    nodes += [n("Max", ["schanged", "lchanged"], ["changed"])]
    # the whole-frame (lighting) fraction counts every brightness change, near a structure change or not
    whole_of = "changed"
    if p.get("LD"):
        nodes += [n("Max", ["schanged", "lchanged0"], ["changed_any"])]
        whole_of = "changed_any"
    if sf == "pix":      # the window's fraction of pixels over their own bar
        nodes += [n("Div", ["xw", "swe"], ["stable"])]
    elif sf == "win":    # the window's mean deviation over its mean activity's bar
        nodes += [n("Div", ["xw", "swe"], ["ew"]), n("Mul", ["u", "gb"], ["un"]), n("Mul", ["un", "sk"], ["wbar0"]),
                  n("Add", ["wbar0", "sf_floor"], ["wbar"]), n("Div", ["ew", "wbar"], ["wrat"]),
                  n("Sub", ["wrat", "one"], ["wrat1"]), n("Mul", ["wrat1", "kr"], ["wrat2"]), n("Sigmoid", ["wrat2"], ["stable"])]
    else:
        # 5. stability from the activity channel
        u = "u"
        if p.get("RS"):     # (v2.9) a window is as restless as the most restless one within RS x RS windows
            rs = int(p["RS"])
            nodes += [n("MaxPool", ["u"], ["u_near"], kernel_shape=[rs, rs], strides=[1, 1], pads=[rs // 2] * 4)]
            u = "u_near"
        nodes += [n("Sub", [u, "tu"], ["u1"]), n("Mul", ["u1", "ku"], ["u2"]), n("Sigmoid", ["u2"], ["stable"])]
    nodes += [
        # 6. weighted area and whole-frame fraction
        n("Mul", ["changed", "stable"], ["cs"]), n("Mul", ["cs", "ww"], ["csw"]),
        n("ReduceMean", ["csw"], ["area"], axes=[1, 2, 3], keepdims=0),
        n("Mul", ["ww", "big"], ["wbig"]), n("Clip", ["wbig", "zero", "one"], ["watched"]),
        n("Mul", [whole_of, "watched"], ["cw"]),
        n("ReduceSum", ["cw", "axes123"], ["cws"], keepdims=0),
        n("ReduceSum", ["watched", "axes123"], ["ws"], keepdims=0),
        n("Add", ["ws", "one"], ["ws1"]), n("Div", ["cws", "ws1"], ["whole"]),
        # the frame's light level against the background's
        n("Div", ["mc", "mb"], ["gr"]), n("Log", ["gr"], ["lgr"]), n("Abs", ["lgr"], ["gain4"]),
        n("Reshape", ["gain4", "shape_1"], ["gain"]),
        # 8. how local the structure change is: its share in the TOP_CELLS most changed cells
        n("Mul", ["schanged", "stable"], ["ss"]), n("Mul", ["ss", "ww"], ["ssw"]),
        n("ReduceMean", ["ssw"], ["sarea"], axes=[1, 2, 3], keepdims=0),
        n("Pad", ["ssw", "cell_pads"], ["cswp"], mode="constant"),
        n("AveragePool", ["cswp"], ["cells"], kernel_shape=[10, 10], strides=[10, 10]),
        n("Reshape", ["cells", "cells_shape"], ["cellv"]),
        n("TopK", ["cellv", "top_k"], ["topv", "topi"], axis=1),
        n("ReduceSum", ["topv", "axes1"], ["tops"], keepdims=0),
        n("ReduceSum", ["cellv", "axes1"], ["alls"], keepdims=0),
        n("Add", ["alls", "eps6"], ["alls1"]), n("Div", ["tops", "alls1"], ["top"]),
    ]
    inits += [const("split8", np.array([1] * 8), np.int64),
              const("axes23", np.array([2, 3]), np.int64),
              const("axes123", np.array([1, 2, 3]), np.int64),
              const("axes1", np.array([1]), np.int64),
              const("shape_1", np.array([1]), np.int64)]
    if probe:
        nodes += [n("Concat", ["area", "whole", "gain", "top", "sarea"], ["pr"], axis=0), n("Reshape", ["pr", "shape_p5"], ["scores"])]
        inits.append(const("shape_p5", np.array([1, 5]), np.int64))
        if p.get("HELD"):     # the input's split (step 10 adds it in the scoring branch, which a probe skips)
            inits.append(const("split5", np.array([1] * 5), np.int64))
        out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 5])
    else:
        nodes += [
            n("Mul", ["area", "inv_ta"], ["ar"]), n("Sub", ["ar", "one"], ["ar1"]), n("Mul", ["ar1", "k2"], ["ar2"]),
            n("Sigmoid", ["ar2"], ["m"]),
            n("Sub", ["whole", "tl"], ["wl"]), n("Mul", ["wl", "kl"], ["wl2"]), n("Sigmoid", ["wl2"], ["lw"]),
            n("Sub", ["gain", "tg"], ["gl"]), n("Mul", ["gl", "kg"], ["gl2"]), n("Sigmoid", ["gl2"], ["lg0"]),
            # 8. a local change with a moderate light-level change is not lighting
            n("Sub", ["top", "tt"], ["tp1"]), n("Mul", ["tp1", "kt"], ["tp2"]), n("Sigmoid", ["tp2"], ["lt"]),
            n("Mul", ["sarea", "inv_alta"], ["la"]), n("Sub", ["la", "one"], ["la1"]), n("Mul", ["la1", "k2"], ["la2"]), n("Sigmoid", ["la2"], ["lar"]),
            n("Sub", ["gain", "tgl"], ["gh"]), n("Mul", ["gh", "nkg"], ["gh2"]), n("Sigmoid", ["gh2"], ["lgm"]),
            n("Mul", ["lt", "lar"], ["loc0"]), n("Mul", ["loc0", "lgm"], ["loc"]),
        ]
        lw_of, loc_of = "lw", "loc"
        if p.get("AH") is not None:
            # 9. (v2.4, not shipped) a large object: a structure change over AH of the frame with a moderate
            # light-level move, and not nearly the whole frame, is an object too (a car close
            # to the camera, the exposure following it), whether it spreads over many cells or
            # changes more than TL of the windows
            inits += [const("inv_ah", np.array(1.0 / p["AH"])), const("tw", np.array(p["TW"])),
                      const("tgb", np.array(p.get("TGB", p.get("TGL", 0.0))))]
            nodes += [
                n("Sub", ["gain", "tgb"], ["gb_"]), n("Mul", ["gb_", "nkg"], ["gb2"]), n("Sigmoid", ["gb2"], ["lgb"]),
                n("Mul", ["sarea", "inv_ah"], ["ha"]), n("Sub", ["ha", "one"], ["ha1"]), n("Mul", ["ha1", "k2"], ["ha2"]), n("Sigmoid", ["ha2"], ["har"]),
                n("Sub", ["tw", "whole"], ["hw"]), n("Mul", ["hw", "kl"], ["hw2"]), n("Sigmoid", ["hw2"], ["hwr"]),
                n("Mul", ["har", "hwr"], ["big0"]), n("Mul", ["big0", "lgb"], ["bigobj" if not p.get("HELD") else "bigobj0"]),
            ]
            if p.get("HELD"):
                # 10. (v2.5) only while an object is in view already: the moving channel is 1 when the
                # model said motion on the device's last frame. A car close to the camera enters from
                # an edge over several frames, small and local first; a day/night switch changes
                # everything between two frames of a still scene
                inits.append(const("split5", np.array([1] * 5), np.int64))
                nodes += [n("ReduceMean", ["mov"], ["held"], axes=[1, 2, 3], keepdims=0),
                          n("Mul", ["bigobj0", "held"], ["bigobj"])]
            nodes += [n("Sub", ["one", "bigobj"], ["nbig"]), n("Mul", ["lw", "nbig"], ["lwb"]),
                      n("Max", ["loc", "bigobj"], ["locb"])]
            lw_of, loc_of = "lwb", "locb"
            if p.get("TS") is not None:
                # 11. (v2.6) a recolouring out of a still scene is lighting: a change of brightness with
                # next to no change of structure (sarea under TS of area), over more than AR x TA,
                # on a frame after one that was not motion. An IR-cut filter or a day/night switch
                # recolours regions whose outlines stay where they were; an object brings structure
                # of its own (its outline), and one that stood still long enough to lose it (a
                # person standing) is held by the moving channel and covers about TA
                inits += [const("ts", np.array(p["TS"])), const("ks", np.array(KS)),
                          const("inv_arta", np.array(1.0 / (p["AR"] * p["TA"]))), const("eps9", np.array(1e-9))]
                nodes += [n("Add", ["area", "eps9"], ["area9"]), n("Div", ["sarea", "area9"], ["share"]),
                          n("Sub", ["ts", "share"], ["sh1"]), n("Mul", ["sh1", "ks"], ["sh2"]), n("Sigmoid", ["sh2"], ["flat"]),
                          n("Mul", ["area", "inv_arta"], ["rar"]), n("Sub", ["rar", "one"], ["rar1"]), n("Mul", ["rar1", "k2"], ["rar2"]),
                          n("Sigmoid", ["rar2"], ["wide"]), n("Sub", ["one", "held"], ["still_before"]),
                          n("Mul", ["flat", "wide"], ["recol0"]), n("Mul", ["recol0", "still_before"], ["recol"]),
                          n("Sub", ["one", "recol"], ["nrecol"]), n("Sub", ["one", "lwb"], ["nlwb"]),
                          n("Mul", ["nlwb", "nrecol"], ["nlwr"]), n("Sub", ["one", "nlwr"], ["lwr"])]
                lw_of = "lwr"
        nodes += [
            n("Sub", ["one", loc_of], ["nloc"]), n("Mul", ["lg0", "nloc"], ["lg"]),
            n("Sub", ["one", lw_of], ["nlw"]), n("Sub", ["one", "lg"], ["nlg"]), n("Mul", ["nlw", "nlg"], ["nl"]),
            n("Sub", ["one", "nl"], ["l"]),
            n("Mul", ["m", "nl"], ["pm_"]), n("Sub", ["nl", "pm_"], ["ps"]),
            n("Reshape", ["ps", "shape_p"], ["ps2"]), n("Reshape", ["pm_", "shape_p"], ["pm2"]),
            n("Reshape", ["l", "shape_p"], ["pl2"]),
            n("Concat", ["ps2", "pm2", "pl2"], ["scores"], axis=1),
        ]
        out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3])
    channels = (CHANNELS if p.get("TD") is None else CHANNELS.replace("activity", "restless")) + (",moving" if p.get("HELD") else "")
    inp = helper.make_tensor_value_info("frames", TensorProto.FLOAT, [1, len(channels.split(",")), H, W])
    meta = {
        "vigil.task": "motion",
        "vigil.labels": LABELS,
        "vigil.threshold": "0.5",
        "vigil.frame": f"{H}x{W}",
        "vigil.channels": channels,
        "vigil.min_area": f"{p['TA']}",
        "vigil.background_s": f"{p.get('background_s', 20.0)}",
        "vigil.activity_s": f"{p.get('activity_s', 60.0)}",
        # v2.7: the state's, not the graph's: how much slower the background learns where the
        # frame differs from it (motion_stream.CameraState hold); absent before v2.7 (1)
        **({"vigil.background_hold": f"{p['HOLD']}"} if p.get("HOLD", 1.0) != 1.0 else {}),
        # v2.9: the state's too: seconds a pixel must match the clean background (and not the
        # background) before the background is reset there (motion_stream GHOST_S); absent: 1 s
        **({"vigil.ghost_s": f"{p['GS']}"} if p.get("GS") is not None else {}),
        # v2.14 (v2.11's candidate): the state's: the moving channel stays 1 through one `lighting` frame
        # after a `motion` frame (motion_stream.CameraState moving_through_lighting; vigild's CameraState.observe)
        **({"vigil.moving_through_lighting": "1"} if p.get("MTL") else {}),
        # v2.12: the state's: each frame moved back onto the device's view before the state reads it
        # (motion_stream align_step; vigild's ViewAligner); absent: not aligned
        **({"vigil.align": "1"} if p.get("ALIGN") else {}),
        # v2.14: px on each side the aligner's warp invents left out of the weight plane (vigild's ImageAdapter.bandedWeights)
        **({"vigil.align_band": f"{p['ABAND']}"} if p.get("ABAND") else {}),
        "vigil.version": version,
        "vigil.description": ("Background-subtraction motion detector: gain-compensated SSIM structure "
                              f"or local brightness change of the current frame against the device's background ({WIN}x{WIN} windows), "
                              "unstable areas (activity) and masked pixels (weight 0) left out; motion when the "
                              "changed area passes vigil.min_area, lighting when most of the frame changed or its light level moved "
                              f"(unless a local{' or large' if p.get('AH') is not None else ''} structure change came with a moderate light-level move: an object the auto-exposure reacted to). "
                              f"T1={p['T1']} TU={p['TU']} TM={p.get('TM')} TA={p['TA']} TL={p['TL']} TG={p.get('TG')} TT={p.get('TT')} AL={p.get('AL')} TGL={p.get('TGL')}"
                              + (f" AH={p['AH']} TW={p['TW']} TGB={p.get('TGB', p.get('TGL'))}" if p.get("AH") is not None else "")
                              + (f" TD={p['TD']}" if p.get("TD") is not None else "") + (f" RS={p['RS']}" if p.get("RS") else "") + "."),
    }
    return make_model(nodes, [inp], [out], inits, meta, "vigil_motion_bg")
