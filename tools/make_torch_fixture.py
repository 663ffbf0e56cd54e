#!/usr/bin/python3
"""make_torch_fixture.py — PyTorch reference outputs and gradients for braggflow's nn engine.

Run (Debian's PyTorch 1.13 for the system Python; not needed to build or test):

    /usr/bin/python3 tools/make_torch_fixture.py [OUTDIR]

OUTDIR defaults to tests/nn/fixtures/ next to this script's repository root. Writes:

  layers.safetensors
      One case per reference layer / loss of include/braggflow/nn.h section 1. A case
      "NAME" holds its inputs and weights, a random upstream gradient NAME.dout and
      what torch's autograd computes from them (float32, CPU):
        conv1d_s1, conv1d_s2    .inp .w .b .out .dout .dinp .dw .db
        conv2d_p0, conv2d_p1    .inp .w .b .out .dout .dinp .dw .db
        maxpool1d, maxpool2d    .inp .out .dout .dinp       (no ties in .inp)
        lrelu_s0p1, lrelu_s0p01 .inp .out .dout .dinp       (slope 0.1, 0.01)
        linear                  .inp .w .b .out .dout .dinp .dw .db
        bmm_nn, bmm_tn, bmm_nt, bmm_tt   .a .b .out .dout .da .db
                                (c = op(a) op(b) as bf_bmm_forward; bmm_tn is a
                                non-local block's theta^T phi)
        softmax                 .inp .out .dout .dinp       (over the last axis)
        cross_entropy           .pred (logits) .labels (I32) .loss .dpred
        hetero                  .pred (B, P+1) .target (B, P) .loss .dpred
        mse                     .pred .target .loss .dpred
      Losses are means over the batch (.loss has shape [1]); .dpred is d loss / d pred.
      __metadata__ "<case>" holds the case's integer arguments as "key=value ...".

  structure_net_small.safetensors
      DESIGN §4's structure-finding network (the seed's FullModel) in a small
      configuration (L = 64, hidden = 32, B = 4): the initial state_dict under its
      PyTorch names, input (B, L) min-max scaled per row, labels (B) I32, targets
      (B, 3), the outputs logits (B, 3) and regression (B, 4), loss_class, loss_reg,
      loss (their sum), grad.<name> (d loss / d parameter), clipped.<name> (after
      clip_grad_norm_(max_norm), which does clip), step1.<name> (after one Adam step,
      lr 5e-4) and step2.<name> (after a second iteration: forward, loss, backward,
      clip, Adam step, from step1's parameters). __metadata__ records the torch
      version, seeds, L, hidden, B, max_norm, grad_norm (before clipping), grad_norm2
      (second iteration), the parameter names in state_dict order and this script.

The safetensors files are written here (json + struct, no `safetensors` package):
u64 LE header length, JSON header padded with spaces to a multiple of 8, then the
tensors' little-endian bytes, contiguous, in header order.
"""

import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 20240611            # torch.manual_seed for every case (re-seeded per case)
DATA_SEED = 7              # numpy generator for the model's input patterns
SMALL_L, SMALL_HIDDEN, SMALL_B = 64, 32, 4
LR = 5e-4

_DTYPES = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int32"): "I32",
           np.dtype("int64"): "I64", np.dtype("uint8"): "U8"}


# ---- safetensors --------------------------------------------------------------------------

def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, array); metadata: {str: str}. Atomic (temp file + rename)."""
    header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    blobs, offset, seen = [], 0, set()
    for name, arr in tensors:
        if name in seen:
            raise ValueError(f"duplicate tensor name {name}")
        seen.add(name)
        arr = np.ascontiguousarray(arr)
        dtype = _DTYPES[arr.dtype]
        raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_safetensors(path):
    """Independent re-read for the sanity check: ({name: array}, metadata)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0, "header length not a multiple of 8"
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    inv = {v: k for k, v in _DTYPES.items()}
    out, end = {}, 0
    for name, h in header.items():
        b, e = h["data_offsets"]
        assert b == end, f"{name}: not contiguous"
        dt = inv[h["dtype"]].newbyteorder("<")
        arr = np.frombuffer(data[8 + n + b:8 + n + e], dtype=dt).reshape(h["shape"])
        assert arr.nbytes == e - b
        out[name] = arr
        end = e
    assert 8 + n + end == len(data), "trailing bytes"
    return out, meta


# ---- helpers --------------------------------------------------------------------------------

def f32(t):
    return t.detach().cpu().to(torch.float32).numpy().copy()


def leaf(shape, scale=1.0, away_from_zero=0.0):
    """A random float32 leaf tensor; |x| >= away_from_zero when given."""
    x = torch.randn(*shape) * scale
    if away_from_zero > 0:
        x = torch.where(x.abs() < away_from_zero, torch.sign(x + 1e-30) * away_from_zero + x, x)
    return x.to(torch.float32).requires_grad_(True)


def distinct(shape, spread=4.0):
    """Values with no ties (a random permutation of an even grid), for max pooling."""
    n = int(np.prod(shape))
    perm = torch.randperm(n).to(torch.float32)
    return ((perm / n - 0.5) * spread).reshape(shape).requires_grad_(True)


class Cases:
    def __init__(self):
        self.tensors, self.meta = [], {}

    def add(self, case, **arrays):
        for k, v in arrays.items():
            self.tensors.append((f"{case}.{k}", v if isinstance(v, np.ndarray) else f32(v)))


# ---- layers.safetensors -------------------------------------------------------------------

def layer_cases():
    cs = Cases()

    def seeded(i):
        torch.manual_seed(SEED + i)

    # Conv1d, no padding
    for i, (name, B, C_in, L, C_out, K, s) in enumerate(
            [("conv1d_s1", 2, 2, 11, 3, 3, 1), ("conv1d_s2", 2, 2, 12, 3, 4, 2)]):
        seeded(i)
        inp, w, b = leaf((B, C_in, L)), leaf((C_out, C_in, K), 0.5), leaf((C_out,), 0.5)
        out = F.conv1d(inp, w, b, stride=s)
        assert out.shape == (B, C_out, (L - K) // s + 1)
        dout = torch.randn(out.shape)
        out.backward(dout)
        cs.add(name, inp=inp, w=w, b=b, out=out, dout=dout, dinp=inp.grad, dw=w.grad, db=b.grad)
        cs.meta[name] = f"B={B} C_in={C_in} L_in={L} C_out={C_out} K={K} stride={s}"

    # Conv2d, square kernel, zero padding
    for i, (name, pad) in enumerate([("conv2d_p0", 0), ("conv2d_p1", 1)]):
        seeded(10 + i)
        B, C_in, H, W, C_out, K = 2, 2, 6, 6, 3, 3
        inp, w, b = leaf((B, C_in, H, W)), leaf((C_out, C_in, K, K), 0.5), leaf((C_out,), 0.5)
        out = F.conv2d(inp, w, b, stride=1, padding=pad)
        assert out.shape == (B, C_out, H + 2 * pad - K + 1, W + 2 * pad - K + 1)
        dout = torch.randn(out.shape)
        out.backward(dout)
        cs.add(name, inp=inp, w=w, b=b, out=out, dout=dout, dinp=inp.grad, dw=w.grad, db=b.grad)
        cs.meta[name] = f"B={B} C_in={C_in} H={H} W={W} C_out={C_out} K={K} stride=1 pad={pad}"

    # MaxPool1d(2, 2) over (B, C, L) = (N, L); odd L drops the last value
    seeded(20)
    inp = distinct((2, 3, 9))
    out = F.max_pool1d(inp, 2, 2)
    assert out.shape == (2, 3, 4)
    dout = torch.randn(out.shape)
    out.backward(dout)
    cs.add("maxpool1d", inp=inp, out=out, dout=dout, dinp=inp.grad)
    cs.meta["maxpool1d"] = "N=6 L=9 K=2 stride=2"

    # MaxPool2d(2, 2) over (B, C, H, W) = (N, H, W); odd H, W drop the last row/column
    seeded(21)
    inp = distinct((2, 3, 7, 7))
    out = F.max_pool2d(inp, 2, 2)
    assert out.shape == (2, 3, 3, 3)
    dout = torch.randn(out.shape)
    out.backward(dout)
    cs.add("maxpool2d", inp=inp, out=out, dout=dout, dinp=inp.grad)
    cs.meta["maxpool2d"] = "N=6 H=7 W=7 K=2 stride=2"

    # LeakyReLU (inputs kept away from the kink)
    for i, (name, slope) in enumerate([("lrelu_s0p1", 0.1), ("lrelu_s0p01", 0.01)]):
        seeded(30 + i)
        inp = leaf((4, 10), away_from_zero=1e-3)
        out = F.leaky_relu(inp, slope)
        dout = torch.randn(out.shape)
        out.backward(dout)
        cs.add(name, inp=inp, out=out, dout=dout, dinp=inp.grad)
        cs.meta[name] = f"n=40 slope={slope}"

    # Linear
    seeded(40)
    B, I, O = 3, 5, 4
    inp, w, b = leaf((B, I)), leaf((O, I), 0.5), leaf((O,), 0.5)
    out = F.linear(inp, w, b)
    dout = torch.randn(out.shape)
    out.backward(dout)
    cs.add("linear", inp=inp, w=w, b=b, out=out, dout=dout, dinp=inp.grad, dw=w.grad, db=b.grad)
    cs.meta["linear"] = f"B={B} I={I} O={O}"

    # Batched matmul c (N, M, P) = op(a) op(b); a stored (N, M, K) or (N, K, M) when
    # trans_a; b stored (N, K, P) or (N, P, K) when trans_b.
    N, M, K, P = 2, 3, 4, 5
    for i, (ta, tb) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        seeded(50 + i)
        name = "bmm_" + ("t" if ta else "n") + ("t" if tb else "n")
        a = leaf((N, K, M) if ta else (N, M, K))
        b = leaf((N, P, K) if tb else (N, K, P))
        out = torch.bmm(a.transpose(1, 2) if ta else a, b.transpose(1, 2) if tb else b)
        assert out.shape == (N, M, P)
        dout = torch.randn(out.shape)
        out.backward(dout)
        cs.add(name, a=a, b=b, out=out, dout=dout, da=a.grad, db=b.grad)
        cs.meta[name] = f"N={N} M={M} K={K} P={P} trans_a={ta} trans_b={tb}"

    # Softmax over the last axis
    seeded(60)
    inp = leaf((4, 6), 2.0)
    out = torch.softmax(inp, dim=-1)
    dout = torch.randn(out.shape)
    out.backward(dout)
    cs.add("softmax", inp=inp, out=out, dout=dout, dinp=inp.grad)
    cs.meta["softmax"] = "rows=4 cols=6"

    # Cross-entropy (mean over the batch)
    seeded(70)
    B, C = 5, 3
    pred = leaf((B, C), 2.0)
    labels = torch.tensor([0, 2, 1, 2, 0], dtype=torch.int64)
    loss = F.cross_entropy(pred, labels)
    loss.backward()
    cs.add("cross_entropy", pred=pred, labels=labels.numpy().astype(np.int32),
           loss=loss.reshape(1), dpred=pred.grad)
    cs.meta["cross_entropy"] = f"B={B} C={C}"

    # Heteroscedastic loss: pred (B, P+1), last column s = log sigma^2
    seeded(80)
    B, P = 5, 3
    pred = leaf((B, P + 1), 0.5)
    target = torch.rand(B, P)
    loss = hetero_loss(pred, target)
    loss.backward()
    cs.add("hetero", pred=pred, target=target, loss=loss.reshape(1), dpred=pred.grad)
    cs.meta["hetero"] = f"B={B} P={P}"

    # MSE (mean over all B*P values)
    seeded(90)
    B, P = 4, 2
    pred = leaf((B, P))
    target = torch.randn(B, P)
    loss = F.mse_loss(pred, target)
    loss.backward()
    cs.add("mse", pred=pred, target=target, loss=loss.reshape(1), dpred=pred.grad)
    cs.meta["mse"] = f"B={B} P={P}"
    return cs


def hetero_loss(pred, target):
    """mean_n( sum_j (y_nj - yhat_nj)^2 exp(-s_n) + s_n ), s = pred[:, -1] (seed 001 Eq. 6)."""
    yhat, s = pred[:, :-1], pred[:, -1]
    return (((target - yhat) ** 2).sum(dim=1) * torch.exp(-s) + s).mean()


# ---- structure_net_small.safetensors ------------------------------------------------------

class FullModel(nn.Module):
    """DESIGN §4 (the seed's FullModel); attribute names give the state_dict names."""

    def __init__(self, L, hidden):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 16, kernel_size=3, stride=1)
        self.conv2 = nn.Conv1d(16, 32, kernel_size=4, stride=2)
        p2 = (((L - 2) // 2 - 4) // 2 + 1) // 2
        self.fc1 = nn.Linear(32 * p2, hidden)
        self.fc2 = nn.Linear(hidden, 3)
        self.regression_layer = nn.Linear(hidden, 4)

    def trunk(self, x):
        """x (B, L) -> the activations whose signs / pooling choices matter, and features."""
        a1 = self.conv1(x.unsqueeze(1))
        h1 = F.max_pool1d(F.leaky_relu(a1, 0.1), 2, 2)
        a2 = self.conv2(h1)
        h2 = F.max_pool1d(F.leaky_relu(a2, 0.1), 2, 2)
        a3 = self.fc1(h2.flatten(1))
        return (a1, a2, a3), F.leaky_relu(a3, 0.1)

    def forward(self, x):
        _, h = self.trunk(x)
        return self.fc2(h), self.regression_layer(h)


def peaky_patterns(rng, B, L):
    """Positive diffraction-like rows: a decaying background, Gaussian peaks and counting
    noise (so no stretch is flat: flat input gives near-ties in the max-pools), min-max
    scaled per row to [0, 1]."""
    t = np.linspace(0.0, 1.0, L)
    x = np.empty((B, L))
    for n in range(B):
        y = 0.1 + 0.2 * np.exp(-3.0 * t)
        for _ in range(rng.integers(3, 7)):
            c, w, h = rng.uniform(0.05, 0.95), rng.uniform(0.015, 0.05), rng.uniform(0.2, 1.0)
            y = y + h * np.exp(-0.5 * ((t - c) / w) ** 2)
        y = rng.poisson(y * 2000.0) / 2000.0 + 0.0
        x[n] = (y - y.min()) / (y.max() - y.min())
    return x.astype(np.float32)


def margins(model, x):
    """Smallest |pre-activation| (LeakyReLU kink) and smallest gap between the two
    (pre-activation) candidates of any max-pool window: both must be far above float32
    rounding (terms are O(1), so ~1e-7), or a float32 re-implementation may
    legitimately take the other branch and its gradients differ from torch's."""
    with torch.no_grad():
        (a1, a2, a3), _ = model.trunk(x)
    kink = min(float(a.abs().min()) for a in (a1, a2, a3))
    gap = float("inf")
    for a in (a1, a2):
        n = a.shape[-1] // 2 * 2
        pair = a[..., :n].reshape(*a.shape[:-1], n // 2, 2)
        gap = min(gap, float((pair[..., 0] - pair[..., 1]).abs().min()))
    return kink, gap


def total_loss(model, x, labels, targets):
    logits, reg = model(x)
    lc = F.cross_entropy(logits, labels)
    lreg = hetero_loss(reg, targets)
    return logits, reg, lc, lreg, lc + lreg


def structure_net_case():
    L, hidden, B = SMALL_L, SMALL_HIDDEN, SMALL_B
    torch.manual_seed(SEED)
    model = FullModel(L, hidden)
    names = [k for k, _ in model.named_parameters()]
    assert names == list(model.state_dict().keys())
    assert names == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight",
                     "fc1.bias", "fc2.weight", "fc2.bias", "regression_layer.weight",
                     "regression_layer.bias"]
    init = {k: f32(v) for k, v in model.state_dict().items()}

    # input patterns: redraw until no activation sits on the kink / no pool window is a tie
    for attempt in range(1000):
        rng = np.random.default_rng(DATA_SEED + attempt)
        x_np = peaky_patterns(rng, B, L)
        kink, gap = margins(model, torch.from_numpy(x_np))
        if kink > 1e-5 and gap > 1e-5:
            break
    else:
        raise RuntimeError("no input pattern with safe margins")
    data_seed = DATA_SEED + attempt
    x = torch.from_numpy(x_np)
    labels = torch.tensor([0, 1, 2, 1], dtype=torch.int64)
    targets = torch.from_numpy(rng.uniform(0.0, 1.0, (B, 3)).astype(np.float32))

    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=LR)

    # iteration 1
    opt.zero_grad()
    logits, reg, lc, lreg, loss = total_loss(model, x, labels, targets)
    loss.backward()
    grads = {k: f32(p.grad) for k, p in model.named_parameters()}
    norm = float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params)))
    max_norm = float(f"{0.5 * norm:.2g}")        # a round number well below the norm
    norm_t = float(nn.utils.clip_grad_norm_(params, max_norm=max_norm))
    assert abs(norm_t - norm) <= 1e-5 * norm and norm_t > max_norm, (norm_t, max_norm)
    clipped = {k: f32(p.grad) for k, p in model.named_parameters()}
    opt.step()
    step1 = {k: f32(v) for k, v in model.state_dict().items()}

    # iteration 2 from step1's parameters (Adam's moments and bias corrections in play)
    opt.zero_grad()
    _, _, _, _, loss2 = total_loss(model, x, labels, targets)
    loss2.backward()
    norm2 = float(nn.utils.clip_grad_norm_(params, max_norm=max_norm))
    opt.step()
    step2 = {k: f32(v) for k, v in model.state_dict().items()}

    tensors = [(k, init[k]) for k in names]
    tensors += [("input", x_np), ("labels", labels.numpy().astype(np.int32)),
                ("targets", targets.numpy()), ("logits", f32(logits)), ("regression", f32(reg)),
                ("loss_class", f32(lc).reshape(1)), ("loss_reg", f32(lreg).reshape(1)),
                ("loss", f32(loss).reshape(1))]
    for prefix, d in (("grad", grads), ("clipped", clipped), ("step1", step1), ("step2", step2)):
        tensors += [(f"{prefix}.{k}", d[k]) for k in names]
    meta = {"torch_version": torch.__version__, "seed": str(SEED), "data_seed": str(data_seed),
            "L": str(L), "hidden": str(hidden), "B": str(B), "lr": repr(LR),
            "max_norm": repr(max_norm), "grad_norm": repr(norm_t), "grad_norm2": repr(norm2),
            "params": ",".join(names), "kink_margin": f"{kink:.3g}", "pool_gap": f"{gap:.3g}",
            "generator": "tools/make_torch_fixture.py"}
    summary = dict(loss=float(loss), loss_class=float(lc), loss_reg=float(lreg), loss2=float(loss2),
                   grad_norm=norm_t, max_norm=max_norm, grad_norm2=norm2, kink=kink, gap=gap,
                   data_seed=data_seed, n_params=sum(p.numel() for p in params))
    return tensors, meta, summary


# ---- float64 cross-check of the float32 references ---------------------------------------
# The metric of tests/nn/test_torch_fixture.c: err = |a - b| / max(|b|, floor / rel), i.e.
# relative error with an absolute floor; values are outputs (rel 1e-5, floor 1e-6) and
# gradients (rel 1e-4, floor 1e-6). Printed in units of rel: <= 1 passes.

OUT_REL, GRAD_REL, FLOOR = 1e-5, 1e-4, 1e-6


def scaled_err(a32, a64, rel):
    a = torch.as_tensor(np.asarray(a32)).to(torch.float64)
    b = a64.detach().to(torch.float64)
    return float(((a - b).abs() / b.abs().clamp_min(FLOOR / rel)).max()) / rel


def float32_noise(cs):
    """How far torch's own float32 results are from the same computation in float64, in
    the test's units: the noise floor any float32 re-implementation faces."""
    t = {k: torch.from_numpy(v) for k, v in cs.tensors}
    res = {}

    def d64(name):
        return t[name].to(torch.float64).requires_grad_(True)

    def up(name):
        return t[name].to(torch.float64)

    for name in ("conv1d_s1", "conv1d_s2", "conv2d_p0", "conv2d_p1", "linear"):
        inp, w, b = d64(f"{name}.inp"), d64(f"{name}.w"), d64(f"{name}.b")
        kw = dict(x.split("=") for x in cs.meta[name].split())
        if name.startswith("conv1d"):
            out = F.conv1d(inp, w, b, stride=int(kw["stride"]))
        elif name.startswith("conv2d"):
            out = F.conv2d(inp, w, b, padding=int(kw["pad"]))
        else:
            out = F.linear(inp, w, b)
        out.backward(up(f"{name}.dout"))
        res[name] = (scaled_err(t[f"{name}.out"], out, OUT_REL),
                     max(scaled_err(t[f"{name}.{g}"], v.grad, GRAD_REL)
                         for g, v in (("dinp", inp), ("dw", w), ("db", b))))
    for name in ("bmm_nn", "bmm_tn", "bmm_nt", "bmm_tt"):
        a, b = d64(f"{name}.a"), d64(f"{name}.b")
        out = torch.bmm(a.transpose(1, 2) if name[4] == "t" else a,
                        b.transpose(1, 2) if name[5] == "t" else b)
        out.backward(up(f"{name}.dout"))
        res[name] = (scaled_err(t[f"{name}.out"], out, OUT_REL),
                     max(scaled_err(t[f"{name}.da"], a.grad, GRAD_REL),
                         scaled_err(t[f"{name}.db"], b.grad, GRAD_REL)))
    inp = d64("softmax.inp")
    out = torch.softmax(inp, -1)
    out.backward(up("softmax.dout"))
    res["softmax"] = (scaled_err(t["softmax.out"], out, OUT_REL),
                      scaled_err(t["softmax.dinp"], inp.grad, GRAD_REL))
    for name in ("cross_entropy", "hetero", "mse"):
        pred = d64(f"{name}.pred")
        if name == "cross_entropy":
            loss = F.cross_entropy(pred, t[f"{name}.labels"].long())
        elif name == "hetero":
            loss = hetero_loss(pred, up(f"{name}.target"))
        else:
            loss = F.mse_loss(pred, up(f"{name}.target"))
        loss.backward()
        res[name] = (scaled_err(t[f"{name}.loss"], loss.reshape(1), OUT_REL),
                     scaled_err(t[f"{name}.dpred"], pred.grad, GRAD_REL))
    return res


def model_float32_noise(tensors):
    """The same for structure_net_small: forward, loss and gradients in float64 from the
    fixture's initial parameters."""
    st = dict(tensors)
    model = FullModel(SMALL_L, SMALL_HIDDEN).double()
    model.load_state_dict({k: torch.from_numpy(st[k]).double() for k in model.state_dict()})
    x = torch.from_numpy(st["input"]).double()
    labels = torch.from_numpy(st["labels"]).long()
    logits, reg, lc, lreg, loss = total_loss(model, x, labels,
                                             torch.from_numpy(st["targets"]).double())
    loss.backward()
    res = {"logits": (scaled_err(st["logits"], logits, OUT_REL), 0.0),
           "regression": (scaled_err(st["regression"], reg, OUT_REL), 0.0),
           "loss": (scaled_err(st["loss"], loss.reshape(1), OUT_REL), 0.0)}
    for k, p in model.named_parameters():
        res["grad." + k] = (0.0, scaled_err(st["grad." + k], p.grad, GRAD_REL))
    return res


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "nn", "fixtures")
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)                      # deterministic reductions

    cs = layer_cases()
    meta = dict(cs.meta, torch_version=torch.__version__, seed=str(SEED),
                generator="tools/make_torch_fixture.py")
    layers_path = os.path.join(outdir, "layers.safetensors")
    write_safetensors(layers_path, cs.tensors, meta)

    tensors, smeta, summary = structure_net_case()
    model_path = os.path.join(outdir, "structure_net_small.safetensors")
    write_safetensors(model_path, tensors, smeta)

    # sanity checks: re-read both files, compare bytes-for-value, shapes, no NaN/Inf,
    # no ties in the pooling cases
    for path, want, wmeta in ((layers_path, cs.tensors, meta), (model_path, tensors, smeta)):
        got, gmeta = read_safetensors(path)
        assert list(got) == [k for k, _ in want], path
        assert gmeta == {k: str(v) for k, v in wmeta.items()}, path
        for k, v in want:
            assert got[k].shape == v.shape and got[k].dtype == v.dtype, k
            assert np.array_equal(got[k], v), k
            if v.dtype.kind == "f":
                assert np.isfinite(v).all(), k
        size = os.path.getsize(path)
        print(f"wrote {path}: {len(want)} tensors, {size} bytes")
    assert os.path.getsize(model_path) < 300 * 1024
    for name in ("maxpool1d", "maxpool2d"):
        v = dict(cs.tensors)[f"{name}.inp"]
        assert len(np.unique(v)) == v.size, f"{name}: ties"
    st = dict(tensors)
    L, H = SMALL_L, SMALL_HIDDEN
    p2 = (((L - 2) // 2 - 4) // 2 + 1) // 2
    assert st["conv1.weight"].shape == (16, 1, 3) and st["conv2.weight"].shape == (32, 16, 4)
    assert st["fc1.weight"].shape == (H, 32 * p2) and st["fc2.weight"].shape == (3, H)
    assert st["regression_layer.weight"].shape == (4, H)
    assert st["input"].shape == (SMALL_B, L) and st["regression"].shape == (SMALL_B, 4)
    assert np.allclose(st["input"].min(1), 0) and np.allclose(st["input"].max(1), 1)

    print("torch float32 vs float64, in units of the test's tolerance (outputs 1e-5, "
          "gradients 1e-4, floor 1e-6; <= 1 passes):")
    for k, (o, g) in list(float32_noise(cs).items()) + list(model_float32_noise(tensors).items()):
        print(f"  {k:32s} out {o:6.3f}  grad {g:6.3f}")
    print("structure_net_small: " + ", ".join(
        f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
