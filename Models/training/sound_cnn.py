"""Small CNN head for the sound model, trained with JAX (CPU) and exported as ONNX nodes.

Input: the in-graph log-mel [B, 96, 64] and the 262 pooled/tonality features of
sound_model._frontend. Network (NCHW, as ONNX):

  logmel -> (x - mu) / sd -> [B, 1, 96, 64]
  conv 3x3 stride 2, C1 ch, ReLU          -> [B, C1, 48, 32]
  maxpool 2x2                             -> [B, C1, 24, 16]
  conv 3x3, C2 ch, ReLU, maxpool 2x2      -> [B, C2, 12, 8]
  conv 3x3, C3 ch, ReLU                   -> [B, C3, 12, 8]
  global max and mean pool                -> [B, 2 C3]
  concat standardised pooled features     -> [B, 2 C3 + 262]
  dense H, ReLU, dense 4, softmax

Trained with Adam, class-weighted cross-entropy (optionally mixed with a teacher's soft
targets), SpecAugment-style masks and random band shifts on the log-mel.
"""
import numpy as np
from onnx import helper

from common import const

C1, C2, C3, HID = 8, 16, 32, 64


# ---------------------------------------------------------------- JAX model
def init_params(rng, n_feat, c=(C1, C2, C3), hid=HID, n_out=4):
    c1, c2, c3 = c

    def he(shape, fan_in):
        return (rng.normal(0, np.sqrt(2.0 / fan_in), shape)).astype(np.float32)
    return {
        "k1": he((c1, 1, 3, 3), 9), "b1": np.zeros(c1, np.float32),
        "k2": he((c2, c1, 3, 3), 9 * c1), "b2": np.zeros(c2, np.float32),
        "k3": he((c3, c2, 3, 3), 9 * c2), "b3": np.zeros(c3, np.float32),
        "W1": he((2 * c3 + n_feat, hid), 2 * c3 + n_feat), "bW1": np.zeros(hid, np.float32),
        "W2": (rng.normal(0, 0.01, (hid, n_out))).astype(np.float32), "bW2": np.zeros(n_out, np.float32),
    }


def forward(params, lm, ft, train=False, key=None, drop=0.0, return_hidden=False):
    """lm: standardised log-mel [B, 96, 64]; ft: standardised features [B, F] -> logits."""
    import jax
    import jax.numpy as jnp
    from jax import lax
    dn = ("NCHW", "OIHW", "NCHW")
    x = lm[:, None]
    x = lax.conv_general_dilated(x, params["k1"], (2, 2), [(0, 1), (0, 1)], dimension_numbers=dn)
    x = jax.nn.relu(x + params["b1"][None, :, None, None])
    x = lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    x = lax.conv_general_dilated(x, params["k2"], (1, 1), "SAME", dimension_numbers=dn)
    x = jax.nn.relu(x + params["b2"][None, :, None, None])
    x = lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    x = lax.conv_general_dilated(x, params["k3"], (1, 1), "SAME", dimension_numbers=dn)
    x = jax.nn.relu(x + params["b3"][None, :, None, None])
    g = jnp.concatenate([x.max(axis=(2, 3)), x.mean(axis=(2, 3)), ft], axis=1)
    h = jax.nn.relu(g @ params["W1"] + params["bW1"])
    hd = h
    if train and drop > 0:
        hd = h * jax.random.bernoulli(key, 1 - drop, h.shape) / (1 - drop)
    out = hd @ params["W2"] + params["bW2"]
    return (out, h) if return_hidden else out


def augment(key, lm, fill):
    """SpecAugment-ish on standardised log-mel: one time mask (<= 16 frames), one
    frequency mask (<= 8 bands), random shift of all bands by -2..2 (edge-filled)."""
    import jax
    import jax.numpy as jnp
    B = lm.shape[0]
    k1, k2, k3, k4, k5 = jax.random.split(key, 5)
    t0 = jax.random.randint(k1, (B, 1), 0, 96)
    tw = jax.random.randint(k2, (B, 1), 0, 17)
    f0 = jax.random.randint(k3, (B, 1), 0, 64)
    fw = jax.random.randint(k4, (B, 1), 0, 9)
    t = jnp.arange(96)[None]
    f = jnp.arange(64)[None]
    tm = (t >= t0) & (t < t0 + tw)
    fm = (f >= f0) & (f < f0 + fw)
    lm = jnp.where(tm[:, :, None] | fm[:, None, :], fill, lm)
    sh = jax.random.randint(k5, (B,), -2, 3)
    idx = jnp.clip(jnp.arange(64)[None] - sh[:, None], 0, 63)
    return jnp.take_along_axis(lm, idx[:, None, :].repeat(96, axis=1), axis=2)


def train(LM, F, y, seed, epochs=12, bs=64, lr=2e-3, wd=1e-4, class_w=None, soft=None, soft_w=0.0,
          aug=True, drop=0.2, c=(C1, C2, C3), hid=HID, log=None, aux=None, aux_w=0.0):
    """LM [n, 96, 64] log-mel, F [n, n_feat] features, y [n] labels. soft: optional
    [n, 4] teacher probabilities (loss = (1 - soft_w) CE(y) + soft_w CE(soft)).
    aux: optional [n, A] teacher scores in [0, 1] (e.g. YAMNet's AudioSet classes) that an
    auxiliary sigmoid head on the hidden layer learns to predict (loss weight aux_w;
    distillation of the teacher's representation; the head is not exported).
    Returns params and the standardisation constants."""
    import jax
    import jax.numpy as jnp
    import optax
    rng = np.random.default_rng(seed)
    lm_mu, lm_sd = float(LM.mean()), float(LM.std())
    f_mu, f_sd = F.mean(0), F.std(0) + 1e-3
    LMs = ((LM - lm_mu) / lm_sd).astype(np.float32)
    Fs = ((F - f_mu) / f_sd).astype(np.float32)
    p0 = init_params(rng, F.shape[1], c, hid)
    A = aux.shape[1] if aux is not None else 1
    p0["Wa"] = (rng.normal(0, 0.01, (hid, A))).astype(np.float32)
    p0["ba"] = np.zeros(A, np.float32)
    params = jax.tree_util.tree_map(jnp.asarray, p0)
    AUX = aux.astype(np.float32) if aux is not None else np.zeros((len(y), 1), np.float32)
    cw = jnp.asarray(class_w if class_w is not None else np.ones(4), jnp.float32)
    steps = epochs * (len(y) // bs)
    sched = optax.cosine_decay_schedule(lr, steps)
    opt = optax.adamw(sched, weight_decay=wd)
    state = opt.init(params)
    fill = float((-6.9 - lm_mu) / lm_sd)       # log(0.001): silence
    Y1 = np.eye(4, dtype=np.float32)[y]
    T = soft.astype(np.float32) if soft is not None else Y1

    def loss_fn(p, lm, ft, yy, tt, aa, key):
        ka, kd = jax.random.split(key)
        if aug:
            lm = augment(ka, lm, fill)
        logits, h = forward(p, lm, ft, train=True, key=kd, drop=drop, return_hidden=True)
        lp = jax.nn.log_softmax(logits)
        w = cw[jnp.argmax(yy, 1)]
        ce = -(yy * lp).sum(1)
        ces = -(tt * lp).sum(1)
        loss = jnp.sum(w * ((1 - soft_w) * ce + soft_w * ces)) / jnp.sum(w)
        if aux_w > 0:
            z = h @ p["Wa"] + p["ba"]
            bce = jnp.maximum(z, 0) - z * aa + jnp.log1p(jnp.exp(-jnp.abs(z)))
            loss = loss + aux_w * bce.mean()
        return loss

    @jax.jit
    def step(p, s, lm, ft, yy, tt, aa, key):
        l, g = jax.value_and_grad(loss_fn)(p, lm, ft, yy, tt, aa, key)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, l

    key = jax.random.PRNGKey(seed % (2 ** 31))
    n = len(y)
    for ep in range(epochs):
        perm = rng.permutation(n)
        tot = 0.0
        for i in range(0, n - bs + 1, bs):
            b = perm[i:i + bs]
            key, k = jax.random.split(key)
            params, state, l = step(params, state, LMs[b], Fs[b], Y1[b], T[b], AUX[b], k)
            tot += float(l)
        if log:
            log(f"  epoch {ep + 1}/{epochs} loss {tot / (n // bs):.4f}")
    params = {k: np.asarray(v) for k, v in params.items() if k not in ("Wa", "ba")}
    return {"params": params, "lm_mu": lm_mu, "lm_sd": lm_sd, "f_mu": f_mu.astype(np.float32),
            "f_sd": f_sd.astype(np.float32)}


def predict_np(model, LM, F, bs=512):
    """Softmax probabilities with JAX (for quick experiments; the ONNX graph is the reference)."""
    import jax
    p = model["params"]
    fwd = jax.jit(lambda lm, ft: jax.nn.softmax(forward(p, lm, ft)))
    out = []
    for i in range(0, len(LM), bs):
        lm = (LM[i:i + bs] - model["lm_mu"]) / model["lm_sd"]
        ft = (F[i:i + bs] - model["f_mu"]) / model["f_sd"]
        out.append(np.asarray(fwd(lm.astype(np.float32), ft.astype(np.float32))))
    return np.concatenate(out)


# ---------------------------------------------------------------- ONNX export
def onnx_nodes(model, prefix="c_", logmel="logmel", feat="feat", out="probs"):
    """Nodes and initializers: logmel [B, 96, 64], feat [B, F] -> out [B, 4] (softmax)."""
    n = helper.make_node
    p = model["params"]
    P = lambda s: prefix + s
    inits = [const(P("lm_mu"), np.array(model["lm_mu"])), const(P("lm_isd"), np.array(1.0 / model["lm_sd"])),
             const(P("ax1"), np.array([1]), np.int64),
             const(P("k1"), p["k1"]), const(P("b1"), p["b1"]),
             const(P("k2"), p["k2"]), const(P("b2"), p["b2"]),
             const(P("k3"), p["k3"]), const(P("b3"), p["b3"])]
    # feature standardisation folded into the dense layer's rows for `feat`
    c3 = p["k3"].shape[0]
    W1 = p["W1"].copy()
    b1 = p["bW1"].copy()
    Wf = W1[2 * c3:] / model["f_sd"][:, None]
    b1 = b1 - (model["f_mu"] / model["f_sd"]) @ W1[2 * c3:]
    W1 = np.concatenate([W1[:2 * c3], Wf])
    inits += [const(P("W1"), W1), const(P("bW1"), b1), const(P("W2"), p["W2"]), const(P("bW2"), p["bW2"])]
    nodes = [
        n("Sub", [logmel, P("lm_mu")], [P("x0")]),
        n("Mul", [P("x0"), P("lm_isd")], [P("x1")]),
        n("Unsqueeze", [P("x1"), P("ax1")], [P("x")]),                          # [B, 1, 96, 64]
        n("Conv", [P("x"), P("k1"), P("b1")], [P("c1")], kernel_shape=[3, 3], strides=[2, 2],
          pads=[0, 0, 1, 1]),
        n("Relu", [P("c1")], [P("r1")]),
        n("MaxPool", [P("r1")], [P("p1")], kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", [P("p1"), P("k2"), P("b2")], [P("c2")], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("Relu", [P("c2")], [P("r2")]),
        n("MaxPool", [P("r2")], [P("p2")], kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", [P("p2"), P("k3"), P("b3")], [P("c3")], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("Relu", [P("c3")], [P("r3")]),
        n("GlobalMaxPool", [P("r3")], [P("gmx")]),
        n("GlobalAveragePool", [P("r3")], [P("gav")]),
        n("Flatten", [P("gmx")], [P("gmx_f")]),
        n("Flatten", [P("gav")], [P("gav_f")]),
        n("Concat", [P("gmx_f"), P("gav_f"), feat], [P("g")], axis=1),
        n("Gemm", [P("g"), P("W1"), P("bW1")], [P("h0")]),
        n("Relu", [P("h0")], [P("h")]),
        n("Gemm", [P("h"), P("W2"), P("bW2")], [P("logits")]),
        n("Softmax", [P("logits")], [out], axis=1),
    ]
    return nodes, inits
