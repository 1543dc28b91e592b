"""ONNX graph for the sound model: raw audio -> log-mel (DFT by MatMul) -> pooled statistics
(+ a small CNN on the log-mel, sound_cnn.py; or the v1.0 MLPs) -> softmax over normal,
glass_breaking, smoke_alarm, door_bell.

The same builder makes (a) a feature-only graph with a dynamic batch used for training,
(b) the shipped model (batch 1), so training features are exactly what ORT computes.
"""
import numpy as np
from onnx import helper, TensorProto

from common import const, make_model
from sound_data import N, SR, LABELS

FRAME, STEP = 400, 160                     # 25 ms window, 10 ms hop (YAMNet's framing)
NFFT = 512        # 512-point DFT of 400-sample Hann-windowed frames (zero-padded), as YAMNet
N_FRAMES = 1 + (N - FRAME) // STEP         # 96
N_MEL, F_LO, F_HI = 64, 125.0, 7500.0
TONAL_BANDS = [(2000.0, 4600.0), (400.0, 2000.0)]   # smoke-alarm tones; chimes
N_FEAT = 4 * N_MEL + 3 * len(TONAL_BANDS)


def hz_to_mel(f):
    return 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)


def mel_matrix(n_fft, n_mel=N_MEL, lo=F_LO, hi=F_HI, sr=SR):
    """YAMNet / VGGish-style (HTK mel, triangular, unnormalised, DC bin zeroed).
    Returns [n_fft//2+1, n_mel]."""
    n_bins = n_fft // 2 + 1
    bins_mel = hz_to_mel(np.linspace(0.0, sr / 2, n_bins))
    edges = np.linspace(hz_to_mel(lo), hz_to_mel(hi), n_mel + 2)
    w = np.zeros((n_bins, n_mel))
    for i in range(n_mel):
        l, c, u = edges[i:i + 3]
        lower = (bins_mel - l) / (c - l)
        upper = (u - bins_mel) / (u - c)
        w[:, i] = np.maximum(0.0, np.minimum(lower, upper))
    w[0, :] = 0.0
    return w.astype(np.float32)


def hann(n):
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)  # periodic


# DFT bins the features need: the mel filters use bins 5-239, the tonality reference
# (1-8 kHz) bins 32-255; bin 0-4 (< 156 Hz) and 256 (Nyquist) are never read.
BIN_LO, BIN_HI = 5, 256
K_BINS = BIN_HI - BIN_LO                   # 251


def _spectrum_stft():
    """v1.0 front end (ONNX STFT): audio -> mag [B, 96, 257], bin offset 0. Kept only
    to check that the DFT front end computes the same features."""
    n = helper.make_node
    inits = [
        const("step", np.array(STEP), np.int64),
        const("flen", np.array(NFFT), np.int64),
        const("win", np.concatenate([hann(FRAME), np.zeros(NFFT - FRAME, np.float32)])),
        const("tailpad", np.array([0, 0, 0, NFFT - FRAME]), np.int64),
        const("ax2", np.array([2]), np.int64),
        const("ax_last", np.array([3]), np.int64),
    ]
    nodes = [
        n("Pad", ["audio", "tailpad"], ["audio_p"]),                        # [B, N+112]
        n("Unsqueeze", ["audio_p", "ax2"], ["sig"]),                        # [B, N+112, 1]
        n("STFT", ["sig", "step", "win", "flen"], ["spec"], onesided=1),      # [B, 96, 257, 2]
        n("Mul", ["spec", "spec"], ["spec2"]),
        n("ReduceSum", ["spec2", "ax_last"], ["pow"], keepdims=0),          # [B, 96, 257]
        n("Sqrt", ["pow"], ["mag"]),                                       # [B, 96, 257]
    ]
    return nodes, inits, 0, NFFT // 2 + 1


def _spectrum_dft():
    """audio -> mag [B, 96, K_BINS] (bins BIN_LO..BIN_HI-1), as a plain DFT by MatMul:
    - frames [B, 96, 400] by slicing 10 ms blocks (no Gather, no STFT op);
    - the periodic Hann window is symmetric about the frame's sample 200 (and zero at 0),
      so with a[u] = frame[200 + u], X_k = e^{-i 2 pi k 200/512} (C_k - i S_k) where
      C_k = sum_u w_u (a[u] + a[-u]) cos(2 pi k u/512) (u = 0 counted once) and
      S_k = sum_u w_u (a[u] - a[-u]) sin(2 pi k u/512), u = 0..199; |X_k| = sqrt(C^2 + S^2).
      Two MatMuls [96, 200] x [200, K] instead of one [96, 400] x [400, 2K]: half the work.
    ~3.5x faster than ORT's STFT op here, and closer to YAMNet's float64 features.
    The DFT matrices are computed *in the graph* from two 512-entry cos/sin tables (exact
    float32) and a few scalars (Range/Mul/Mod/Gather on constants only), so ORT folds them
    into constants when the session is created (graph optimisation level >= basic, ORT's
    default and vigild's ORT_ENABLE_ALL); the file stays small (they would be 0.4 MB)."""
    n = helper.make_node
    i64 = lambda name, v: const(name, np.array(v), np.int64)
    half = FRAME // 2
    w_sym = hann(FRAME)[half:].copy()
    w_sym[0] *= 0.5                        # u = 0: a[0] + a[-0] counts the centre sample twice
    inits = [i64("r0", 0), i64("r_half", half), i64("r_one", 1),
             i64("r_blo", BIN_LO), i64("r_bhi", BIN_HI), i64("r_nfft", NFFT), i64("ax_m1", [-1]),
             const("cos_tab", np.cos(2 * np.pi * np.arange(NFFT) / NFFT)),
             const("sin_tab", np.sin(2 * np.pi * np.arange(NFFT) / NFFT)),
             const("w_sym", w_sym[:, None]),
             i64("blk_pad", [0, 0, 0, 98 * STEP - N]), i64("blk_shape", [0, 98, STEP]),
             i64("b0_s", [0]), i64("b0_e", [N_FRAMES]), i64("b_ax", [1]),
             i64("b1_s", [1]), i64("b1_e", [N_FRAMES + 1]),
             i64("b2_s", [2, 0]), i64("b2_e", [N_FRAMES + 2, FRAME - 2 * STEP]), i64("b2_ax", [1, 2]),
             i64("r_s", [half]), i64("r_e", [FRAME]), i64("l_s", [half]), i64("l_e", [0]),
             i64("l_step", [-1]), i64("ax2", [2])]
    nodes = [
        # DFT matrices [200, K]: w_u cos / sin(2 pi ((u k) mod 512) / 512), by table look-up
        n("Range", ["r0", "r_half", "r_one"], ["ui"]),                        # [200]
        n("Unsqueeze", ["ui", "ax_m1"], ["u_c"]),                             # [200, 1]
        n("Range", ["r_blo", "r_bhi", "r_one"], ["ki"]),                      # [K]
        n("Mul", ["u_c", "ki"], ["u_k"]),
        n("Mod", ["u_k", "r_nfft"], ["uk_m"]),
        n("Gather", ["cos_tab", "uk_m"], ["cos_uk"], axis=0),
        n("Gather", ["sin_tab", "uk_m"], ["sin_uk"], axis=0),
        n("Mul", ["cos_uk", "w_sym"], ["dft_c"]),                             # [200, K]
        n("Mul", ["sin_uk", "w_sym"], ["dft_s"]),
        # frames [B, 96, 400]: the audio padded to 98 x 160 samples; frame i is 10 ms blocks
        # i, i+1 and the first half of i+2 (three slices and a concat: much faster than Gather)
        n("Pad", ["audio", "blk_pad"], ["audio_p"]),                        # [B, 15680]
        n("Reshape", ["audio_p", "blk_shape"], ["blocks"]),                 # [B, 98, 160]
        n("Slice", ["blocks", "b0_s", "b0_e", "b_ax"], ["blk_a"]),          # blocks 0..95
        n("Slice", ["blocks", "b1_s", "b1_e", "b_ax"], ["blk_b"]),          # blocks 1..96
        n("Slice", ["blocks", "b2_s", "b2_e", "b2_ax"], ["blk_c"]),         # blocks 2..97, first 80
        n("Concat", ["blk_a", "blk_b", "blk_c"], ["frames"], axis=2),        # [B, 96, 400]
        n("Slice", ["frames", "r_s", "r_e", "ax2"], ["right"]),              # a[u], u = 0..199
        n("Slice", ["frames", "l_s", "l_e", "ax2", "l_step"], ["left"]),     # a[-u], u = 0..199
        n("Add", ["right", "left"], ["even"]),
        n("Sub", ["right", "left"], ["odd"]),
        n("MatMul", ["even", "dft_c"], ["re"]),                             # [B, 96, K]
        n("MatMul", ["odd", "dft_s"], ["im"]),
        n("Mul", ["re", "re"], ["re2"]),
        n("Mul", ["im", "im"], ["im2"]),
        n("Add", ["re2", "im2"], ["pow"]),
        n("Sqrt", ["pow"], ["mag"]),                                        # [B, 96, K]
    ]
    return nodes, inits, BIN_LO, BIN_HI


def _logmel_nodes(front="dft"):
    """audio [B, N] -> logmel [B, 96, 64] and mag (see _spectrum_*)."""
    nodes, inits, lo, hi = (_spectrum_dft if front == "dft" else _spectrum_stft)()
    inits += [const("mel", mel_matrix(NFFT)[lo:hi]), const("floor", np.array(0.001))]
    nodes += [helper.make_node("MatMul", ["mag", "mel"], ["melspec"]),     # [B, 96, 64]
              helper.make_node("Add", ["melspec", "floor"], ["melf"]),
              helper.make_node("Log", ["melf"], ["logmel"])]
    return nodes, inits, lo


def _frontend(batch, front="dft"):
    """Nodes/inits: audio [batch, N] -> logmel [batch, 96, 64], feat [batch, N_FEAT]."""
    n = helper.make_node
    nodes, inits, off = _logmel_nodes(front)
    inits += [
        const("s0", np.array([0]), np.int64), const("s1", np.array([1]), np.int64),
        const("e_last", np.array([N_FRAMES - 1]), np.int64), const("e_all", np.array([N_FRAMES]), np.int64),
        const("axis1", np.array([1]), np.int64),
    ]
    nodes += [
        n("ReduceMean", ["logmel"], ["f_mean"], axes=[1], keepdims=0),
        n("ReduceMax", ["logmel"], ["f_max"], axes=[1], keepdims=0),
        n("ReduceMean", ["logmel"], ["mean_k"], axes=[1], keepdims=1),
        n("Sub", ["logmel", "mean_k"], ["dev"]),
        n("Mul", ["dev", "dev"], ["dev2"]),
        n("ReduceMean", ["dev2"], ["var"], axes=[1], keepdims=0),
        n("Sqrt", ["var"], ["f_std"]),
        n("Slice", ["logmel", "s1", "e_all", "axis1"], ["lm_next"]),
        n("Slice", ["logmel", "s0", "e_last", "axis1"], ["lm_prev"]),
        n("Sub", ["lm_next", "lm_prev"], ["delta"]),
        n("ReduceMax", ["delta"], ["f_onset"], axes=[1], keepdims=0),     # strongest rise per band
    ]
    # tonality: per frame, ln(strongest bin in a band / mean magnitude 1-8 kHz); pooled as
    # mean, max and the share of frames more than ~18 dB tonal. Shift-invariant within
    # the band, so a 2.5 kHz alarm looks like a 3.4 kHz one.
    hz = SR / NFFT
    inits += [const("ax_bins", np.array([2]), np.int64), const("teps", np.array(1e-3)),
              const("tthr", np.array(np.log(8.0))), const("tk", np.array(4.0)),
              const("ref_lo", np.array([int(1000 / hz) - off]), np.int64),
              const("ref_hi", np.array([int(8000 / hz) - off]), np.int64)]
    nodes += [n("Slice", ["mag", "ref_lo", "ref_hi", "ax_bins"], ["ref_band"]),
              n("ReduceMean", ["ref_band"], ["ref_mean"], axes=[2], keepdims=0),
              n("Add", ["ref_mean", "teps"], ["ref_e"])]
    tonal_feats = []
    for j, (lo, hi) in enumerate(TONAL_BANDS):
        inits += [const(f"tb{j}_lo", np.array([int(lo / hz) - off]), np.int64),
                  const(f"tb{j}_hi", np.array([int(hi / hz) + 1 - off]), np.int64)]
        nodes += [n("Slice", ["mag", f"tb{j}_lo", f"tb{j}_hi", "ax_bins"], [f"tb{j}"]),
                  n("ReduceMax", [f"tb{j}"], [f"tb{j}_pk"], axes=[2], keepdims=0),
                  n("Add", [f"tb{j}_pk", "teps"], [f"tb{j}_pke"]),
                  n("Div", [f"tb{j}_pke", "ref_e"], [f"tb{j}_r"]),
                  n("Log", [f"tb{j}_r"], [f"tb{j}_t"]),                       # [B, 96]
                  n("ReduceMean", [f"tb{j}_t"], [f"tb{j}_mean"], axes=[1], keepdims=1),
                  n("ReduceMax", [f"tb{j}_t"], [f"tb{j}_max"], axes=[1], keepdims=1),
                  n("Sub", [f"tb{j}_t", "tthr"], [f"tb{j}_d"]),
                  n("Mul", [f"tb{j}_d", "tk"], [f"tb{j}_dk"]),
                  n("Sigmoid", [f"tb{j}_dk"], [f"tb{j}_s"]),
                  n("ReduceMean", [f"tb{j}_s"], [f"tb{j}_frac"], axes=[1], keepdims=1)]
        tonal_feats += [f"tb{j}_mean", f"tb{j}_max", f"tb{j}_frac"]
    nodes.append(n("Concat", ["f_mean", "f_std", "f_max", "f_onset"] + tonal_feats, ["feat"], axis=1))
    return nodes, inits


def feature_model(batch="batch", front="dft", with_logmel=False):
    """audio -> feat [batch, N_FEAT] (and logmel [batch, 96, 64] if with_logmel)."""
    nodes, inits = _frontend(batch, front)
    inp = helper.make_tensor_value_info("audio", TensorProto.FLOAT, [batch, N])
    outs = [helper.make_tensor_value_info("feat", TensorProto.FLOAT, [batch, N_FEAT])]
    if with_logmel:
        outs.append(helper.make_tensor_value_info("logmel", TensorProto.FLOAT, [batch, N_FRAMES, N_MEL]))
    return make_model(nodes, [inp], outs, inits, {}, "vigil_sound_features")


def logmel_model(batch="batch", front="dft"):
    """audio [batch, N] -> logmel [batch, 96, 64] (for checks and YAMNet-patch use)."""
    nodes, inits, _ = _logmel_nodes(front)
    inp = helper.make_tensor_value_info("audio", TensorProto.FLOAT, [batch, N])
    out = helper.make_tensor_value_info("logmel", TensorProto.FLOAT, [batch, N_FRAMES, N_MEL])
    return make_model(nodes, [inp], [out], inits, {}, "vigil_sound_logmel")


def check_frontend(X):
    """The in-graph front end against YAMNet's features (numpy float64 FFT, yamnet_patch)
    and against the v1.0 ONNX-STFT front end, on windows X [n, N]. Returns the largest
    absolute differences; raises if the log-mel differs from YAMNet's by more than 1e-5
    on average (1e-3 at most) or is further from them than the STFT front end's."""
    from common import session
    lm = session(logmel_model()).run(None, {"audio": X})[0]
    lm_stft = session(logmel_model(front="stft")).run(None, {"audio": X})[0]
    ref = np.stack([yamnet_patch(x) for x in X])
    f_dft = session(feature_model()).run(None, {"audio": X})[0]
    f_stft = session(feature_model(front="stft")).run(None, {"audio": X})[0]
    d, d_stft = np.abs(lm - ref), np.abs(lm_stft - ref)
    out = {"windows": int(len(X)),
           "logmel_vs_yamnet_mean_abs": float(d.mean()), "logmel_vs_yamnet_max_abs": float(d.max()),
           "stft_logmel_vs_yamnet_mean_abs": float(d_stft.mean()), "stft_logmel_vs_yamnet_max_abs": float(d_stft.max()),
           "features_vs_stft_max_abs": float(np.abs(f_dft - f_stft).max()),
           "features_vs_stft_mean_abs": float(np.abs(f_dft - f_stft).mean())}
    assert out["logmel_vs_yamnet_mean_abs"] < 1e-5 and out["logmel_vs_yamnet_max_abs"] < 1e-3, out
    assert out["logmel_vs_yamnet_mean_abs"] <= out["stft_logmel_vs_yamnet_mean_abs"], out
    return out


def _meta(threshold, version, description):
    return {
        "vigil.task": "sound",
        "vigil.labels": ",".join(LABELS),
        "vigil.threshold": str(threshold),
        "vigil.sample_rate": str(SR),
        "vigil.window": str(N),
        "vigil.version": version,
        "vigil.description": description,
    }


def full_model_cnn(cnn_models, threshold, version, description, batch=1):
    """Front end -> one or more sound_cnn heads (probabilities averaged) -> scores."""
    import sound_cnn
    nodes, inits = _frontend(batch)
    probs = []
    for j, m in enumerate(cnn_models):
        nn_, ii = sound_cnn.onnx_nodes(m, prefix=f"cnn{j}_", out=f"cnn{j}_p")
        nodes += nn_
        inits += ii
        probs.append(f"cnn{j}_p")
    if len(probs) == 1:
        nodes.append(helper.make_node("Identity", probs, ["scores"]))
    else:
        nodes.append(helper.make_node("Mean", probs, ["scores"]))
    inp = helper.make_tensor_value_info("audio", TensorProto.FLOAT, [batch, N])
    out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, len(LABELS)])
    return make_model(nodes, [inp], [out], inits, _meta(threshold, version, description), "vigil_sound")


def full_model(mu, sd, ensemble_weights, ensemble_biases, threshold, version, description, batch=1):
    """ensemble_weights[j] / ensemble_biases[j]: MLP j's layers (ReLU between, softmax at
    the end); the members' probabilities are averaged. The input standardisation
    (mu, sd) is folded into each first layer."""
    nodes, inits = _frontend(batch)
    n = helper.make_node
    probs = []
    for j, (weights, biases) in enumerate(zip(ensemble_weights, ensemble_biases)):
        W0 = weights[0] / sd[:, None]
        b0 = biases[0] - (mu / sd) @ weights[0]
        Ws = [W0] + list(weights[1:])
        bs = [b0] + list(biases[1:])
        x = "feat"
        for i, (Wi, bi) in enumerate(zip(Ws, bs)):
            inits += [const(f"m{j}_W{i}", Wi), const(f"m{j}_b{i}", bi)]
            nodes += [n("MatMul", [x, f"m{j}_W{i}"], [f"m{j}_mm{i}"]),
                      n("Add", [f"m{j}_mm{i}", f"m{j}_b{i}"], [f"m{j}_z{i}"])]
            x = f"m{j}_z{i}"
            if i < len(Ws) - 1:
                nodes.append(n("Relu", [x], [f"m{j}_h{i}"]))
                x = f"m{j}_h{i}"
        nodes.append(n("Softmax", [x], [f"m{j}_p"], axis=1))
        probs.append(f"m{j}_p")
    nodes.append(n("Mean", probs, ["scores"]))
    inp = helper.make_tensor_value_info("audio", TensorProto.FLOAT, [batch, N])
    out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, len(LABELS)])
    return make_model(nodes, [inp], [out], inits, _meta(threshold, version, description), "vigil_sound")


# ---------------------------------------------------------------- YAMNet reference frontend
def yamnet_patch(x):
    """[N] audio -> [96, 64] log-mel patch exactly as YAMNet's features.py computes it
    (25 ms periodic Hann, 10 ms hop, 512-point FFT magnitude, 64 HTK mel bands
    125-7500 Hz, log(mel + 0.001))."""
    frames = np.stack([x[i * STEP:i * STEP + FRAME] for i in range(N_FRAMES)])
    mag = np.abs(np.fft.rfft(frames * hann(FRAME), 512))
    return np.log(mag @ mel_matrix(512) + 0.001).astype(np.float32)
