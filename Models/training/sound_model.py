"""ONNX graph for the sound model: raw audio -> log-mel (ONNX STFT) -> pooled statistics
-> small MLP -> softmax over normal, glass_breaking, smoke_alarm, door_bell.

The same builder makes (a) a feature-only graph with a dynamic batch used for training,
(b) the shipped model (batch 1), so training features are exactly what ORT computes.
"""
import numpy as np
from onnx import helper, TensorProto

from common import const, make_model
from sound_data import N, SR, LABELS

FRAME, STEP = 400, 160                     # 25 ms window, 10 ms hop (YAMNet's framing)
NFFT = 512        # ONNX STFT frame of 512 with a 400-sample Hann window zero-padded to 512
                  # == YAMNet's 512-point FFT of 400-sample frames (and ORT's radix-2 path
                  # is ~4x faster than a 400-point DFT)
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


def _frontend(batch):
    """Nodes/inits: audio [batch, N] -> feat [batch, 256]."""
    n = helper.make_node
    inits = [
        const("step", np.array(STEP), np.int64),
        const("flen", np.array(NFFT), np.int64),
        const("win", np.concatenate([hann(FRAME), np.zeros(NFFT - FRAME, np.float32)])),
        const("tailpad", np.array([0, 0, 0, NFFT - FRAME]), np.int64),
        const("ax2", np.array([2]), np.int64),
        const("ax_last", np.array([3]), np.int64),
        const("mel", mel_matrix(NFFT)),
        const("floor", np.array(0.001)),
        const("s0", np.array([0]), np.int64), const("s1", np.array([1]), np.int64),
        const("e_last", np.array([N_FRAMES - 1]), np.int64), const("e_all", np.array([N_FRAMES]), np.int64),
        const("axis1", np.array([1]), np.int64),
    ]
    nodes = [
        n("Pad", ["audio", "tailpad"], ["audio_p"]),                        # [B, N+112]
        n("Unsqueeze", ["audio_p", "ax2"], ["sig"]),                        # [B, N+112, 1]
        n("STFT", ["sig", "step", "win", "flen"], ["spec"], onesided=1),      # [B, 96, 257, 2]
        n("Mul", ["spec", "spec"], ["spec2"]),
        n("ReduceSum", ["spec2", "ax_last"], ["pow"], keepdims=0),          # [B, 96, 201]
        n("Sqrt", ["pow"], ["mag"]),                                       # [B, 96, 257]
        n("MatMul", ["mag", "mel"], ["melspec"]),                          # [B, 96, 64]
        n("Add", ["melspec", "floor"], ["melf"]),
        n("Log", ["melf"], ["logmel"]),
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
              const("ref_lo", np.array([int(1000 / hz)]), np.int64), const("ref_hi", np.array([int(8000 / hz)]), np.int64)]
    nodes += [n("Slice", ["mag", "ref_lo", "ref_hi", "ax_bins"], ["ref_band"]),
              n("ReduceMean", ["ref_band"], ["ref_mean"], axes=[2], keepdims=0),
              n("Add", ["ref_mean", "teps"], ["ref_e"])]
    tonal_feats = []
    for j, (lo, hi) in enumerate(TONAL_BANDS):
        inits += [const(f"tb{j}_lo", np.array([int(lo / hz)]), np.int64),
                  const(f"tb{j}_hi", np.array([int(hi / hz) + 1]), np.int64)]
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


def feature_model(batch="batch"):
    nodes, inits = _frontend(batch)
    inp = helper.make_tensor_value_info("audio", TensorProto.FLOAT, [batch, N])
    out = helper.make_tensor_value_info("feat", TensorProto.FLOAT, [batch, N_FEAT])
    return make_model(nodes, [inp], [out], inits, {}, "vigil_sound_features")


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
    meta = {
        "vigil.task": "sound",
        "vigil.labels": ",".join(LABELS),
        "vigil.threshold": str(threshold),
        "vigil.sample_rate": str(SR),
        "vigil.window": str(N),
        "vigil.version": version,
        "vigil.description": description,
    }
    return make_model(nodes, [inp], [out], inits, meta, "vigil_sound")


# ---------------------------------------------------------------- YAMNet reference frontend
def yamnet_patch(x):
    """[N] audio -> [96, 64] log-mel patch exactly as YAMNet's features.py computes it
    (25 ms periodic Hann, 10 ms hop, 512-point FFT magnitude, 64 HTK mel bands
    125-7500 Hz, log(mel + 0.001))."""
    frames = np.stack([x[i * STEP:i * STEP + FRAME] for i in range(N_FRAMES)])
    mag = np.abs(np.fft.rfft(frames * hann(FRAME), 512))
    return np.log(mag @ mel_matrix(512) + 0.001).astype(np.float32)
