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
        nonlocal                .inp (B, C, H, W) .theta_w .theta_b .phi_w .phi_b .g_w .g_b
                                .out_w .out_b (Conv2d 1x1 shapes, C' = C/2) .attn (B, N, N)
                                .out .dout .dinp .dtheta_w .dtheta_b .dphi_w .dphi_b .dg_w
                                .dg_b .dout_w .dout_b: BraggNN's non-local block alone,
                                B=2 C=8 5x5, attention sharp enough (max 0.8) to test it;
                                .dphi_b is exactly 0 in exact arithmetic (see metadata
                                "nonlocal.dphi_b"): what is stored is round-off
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

  braggnn.safetensors
      DESIGN §7's BraggNN (the repository's model.py, fcsz (16, 8, 4, 2), 33,172
      parameters) at S = 11, B = 4: the initial state_dict under its PyTorch names and in
      its order (nlb.{theta_layer,phi_layer,g_layer,out_cnn}.{weight,bias}, then
      cnn_layers.{0,2,4}.*, then dense_layers.{0,2,4,6,8}.*: model.py registers nlb
      first), Xavier-uniform weights as BraggNN but biases U(-0.1, 0.1) instead of zeros
      so the bias gradients are tested; input (B, 1, S, S) peak-like patches min-max
      scaled per patch, target (B, 2) = true centre (col, row) / S in [0.4, 0.6], output
      (B, 2), loss [1] (MSE mean), act.conv1 (1, 64, 9, 9), act.attn (1, 81, 81), act.nlb
      (1, 64, 9, 9), act.conv3 (1, 8, 5, 5) (first patch only; see __metadata__ "act.*"),
      grad.<name>, step1.<name> (one Adam step, lr 3e-4, torch defaults, no clipping)
      and step2.<name> (a second full iteration). grad.nlb.phi_layer.bias is exactly 0
      in exact arithmetic (round-off stored). __metadata__ describes every tensor and
      records the torch version, seeds, S, B, lr, fcsz and the parameter names in order.

  braggnn_state_dict.safetensors
      Only a BraggNN state_dict for S = 15 (dense 648-16-8-4-2-2), laid out as
      safetensors.torch.save_file(model.state_dict(), path) writes it: no __metadata__,
      tensors sorted by name (the safetensors library orders them by dtype, then name).
      A loader must take every size from the tensors' shapes.

  braggnn_state_dict_io.safetensors
      input (3, 1, 15, 15) and output (3, 2) of that model, for the loader's test.

The safetensors files are written here (json + struct, no `safetensors` package):
u64 LE header length, JSON header padded with spaces to a multiple of 8, then the
tensors' little-endian bytes, contiguous, in header order.

Regeneration is bit-for-bit only on the same CPU and torch build: elsewhere torch's
convolutions round differently (1 ulp in a few outputs), well inside the tests'
tolerances.
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
    """tensors: list of (name, array); metadata: {str: str}, or None for no __metadata__
    entry at all (as safetensors.torch.save_file without metadata). Atomic (temp file +
    rename)."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
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

    # Non-local block (BraggNN's NLB) alone: weights in their Conv2d 1x1 shapes
    seeded(100)
    B, C, H, W = 2, 8, 5, 5
    Ci = C // 2
    inp = leaf((B, C, H, W))
    wts = {}
    for k in ("theta", "phi", "g"):
        wts[k + "_w"], wts[k + "_b"] = leaf((Ci, C, 1, 1), 0.3), leaf((Ci,), 0.1)
    wts["out_w"], wts["out_b"] = leaf((C, Ci, 1, 1), 0.3), leaf((C,), 0.1)
    out, attn = nonlocal_block(inp, *(wts[k] for k in NONLOCAL_WEIGHTS))
    assert out.shape == inp.shape and attn.shape == (B, H * W, H * W)
    dout = torch.randn(out.shape)
    out.backward(dout)
    cs.add("nonlocal", inp=inp, **wts, attn=attn, out=out, dout=dout, dinp=inp.grad,
           **{"d" + k: v.grad for k, v in wts.items()})
    cs.meta["nonlocal"] = f"B={B} C={C} H={H} W={W} C_inner={Ci}"
    cs.meta["nonlocal.dphi_b"] = PHI_BIAS_NOTE
    return cs


PHI_BIAS_NOTE = ("d loss / d phi bias is exactly 0 (phi_b adds theta_i . phi_b to every logit "
                 "of row i, and the softmax over j ignores that); the stored value is float32 "
                 "round-off: compare it with an absolute tolerance, not relatively")
NONLOCAL_WEIGHTS = ("theta_w", "theta_b", "phi_w", "phi_b", "g_w", "g_b", "out_w", "out_b")


def nonlocal_block(x, theta_w, theta_b, phi_w, phi_b, g_w, g_b, out_w, out_b):
    """BraggNN's NLB.forward on x (B, C, H, W), N = H*W, C' = C/2; returns (out, attn):
    theta (B, N, C') = conv1x1(x) viewed (B, C', N) and transposed; phi (B, C', N);
    g (B, N, C') like theta; attn (B, N, N) = softmax_lastaxis(theta phi) (no 1/sqrt(C'));
    y (B, C', H, W) = (attn g) transposed to (B, C', N), then viewed; out = conv1x1(y) + x."""
    B, _, H, W = x.shape
    Ci = theta_w.shape[0]
    theta = F.conv2d(x, theta_w, theta_b).view(B, Ci, -1).permute(0, 2, 1)
    phi = F.conv2d(x, phi_w, phi_b).view(B, Ci, -1)
    g = F.conv2d(x, g_w, g_b).view(B, Ci, -1).permute(0, 2, 1)
    attn = torch.softmax(torch.matmul(theta, phi), dim=-1)
    y = torch.matmul(attn, g).permute(0, 2, 1).contiguous().view(B, Ci, H, W)
    return F.conv2d(y, out_w, out_b) + x, attn


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


# ---- braggnn.safetensors, braggnn_state_dict*.safetensors ---------------------------------

BRAGG_S, BRAGG_B, BRAGG_LR = 11, 4, 3e-4
BRAGG_SD_S, BRAGG_SD_B = 15, 3             # the metadata-less state_dict file
BRAGG_FCSZ = (16, 8, 4, 2)                 # the repository's main.py: 200-16-8-4-2-2 at S = 11
BRAGG_BIAS = 0.1                           # fixture biases ~ U(-0.1, 0.1), not BraggNN's zeros


class NLB(nn.Module):
    """BraggNN's non-local block (model.py); attribute names give the state_dict names."""

    def __init__(self, in_ch):
        super().__init__()
        self.inter_ch = in_ch // 2
        self.theta_layer = nn.Conv2d(in_ch, self.inter_ch, kernel_size=1, stride=1, padding=0)
        self.phi_layer = nn.Conv2d(in_ch, self.inter_ch, kernel_size=1, stride=1, padding=0)
        self.g_layer = nn.Conv2d(in_ch, self.inter_ch, kernel_size=1, stride=1, padding=0)
        self.out_cnn = nn.Conv2d(self.inter_ch, in_ch, kernel_size=1, stride=1, padding=0)

    def forward(self, x):
        return nonlocal_block(x, self.theta_layer.weight, self.theta_layer.bias,
                              self.phi_layer.weight, self.phi_layer.bias, self.g_layer.weight,
                              self.g_layer.bias, self.out_cnn.weight, self.out_cnn.bias)[0]


class BraggNN(nn.Module):
    """DESIGN §7, the repository's model.py: cnn_layers = (Conv2d 3x3, LeakyReLU(0.01)) x 3
    at indices 0..5 (64, 32, 8 channels), the non-local block applied after cnn_layers[0]
    and before cnn_layers[1] (its LeakyReLU); dense_layers = (Linear, LeakyReLU) per fcsz
    entry, then Linear(fcsz[-1], 2) (indices 0..8 for four entries)."""

    def __init__(self, imgsz, fcsz=BRAGG_FCSZ):
        super().__init__()
        cnn_out = (64, 32, 8)
        cnn, fsz = [], imgsz
        for ic, oc in zip((1,) + cnn_out[:-1], cnn_out):
            cnn += [nn.Conv2d(ic, oc, kernel_size=3, stride=1, padding=0), nn.LeakyReLU(0.01)]
            fsz -= 2
        self.nlb = NLB(cnn_out[0])
        dense = []
        for ic, oc in zip((fsz * fsz * cnn_out[-1],) + tuple(fcsz[:-1]), fcsz):
            dense += [nn.Linear(ic, oc), nn.LeakyReLU(0.01)]
        dense += [nn.Linear(fcsz[-1], 2)]
        self.cnn_layers = nn.Sequential(*cnn)
        self.dense_layers = nn.Sequential(*dense)

    def trunk(self, x):
        """x (B, 1, S, S) -> (activations, output). Activations: conv1 (B, 64, S-2, S-2)
        before the block, attn (B, N, N), nlb (B, 64, S-2, S-2) (the block's output, before
        the LeakyReLU), conv3 (B, 8, S-6, S-6) before its LeakyReLU, and every
        pre-activation that meets a LeakyReLU (for the kink margin) in kinks."""
        c = self.cnn_layers
        a1 = c[0](x)
        m = self.nlb
        nlb, attn = nonlocal_block(a1, m.theta_layer.weight, m.theta_layer.bias,
                                   m.phi_layer.weight, m.phi_layer.bias, m.g_layer.weight,
                                   m.g_layer.bias, m.out_cnn.weight, m.out_cnn.bias)
        a2 = c[2](c[1](nlb))
        a3 = c[4](c[3](a2))
        h = c[5](a3).flatten(1)
        kinks = [nlb, a2, a3]
        for i, layer in enumerate(self.dense_layers):
            h = layer(h)
            if isinstance(layer, nn.Linear) and i + 1 < len(self.dense_layers):
                kinks.append(h)
        return dict(conv1=a1, attn=attn, nlb=nlb, conv3=a3, kinks=kinks), h

    def forward(self, x):
        _out = self.cnn_layers[0](x)
        _out = self.nlb(_out)
        for layer in self.cnn_layers[1:]:
            _out = layer(_out)
        _out = _out.flatten(start_dim=1)
        for layer in self.dense_layers:
            _out = layer(_out)
        return _out


def braggnn_names(fcsz=BRAGG_FCSZ):
    """state_dict order, which is registration order, not forward order: model.py assigns
    self.nlb before self.cnn_layers (its conv list is a plain list until the end)."""
    names = [f"nlb.{m}.{k}" for m in ("theta_layer", "phi_layer", "g_layer", "out_cnn")
             for k in ("weight", "bias")]
    names += [f"cnn_layers.{i}.{k}" for i in (0, 2, 4) for k in ("weight", "bias")]
    names += [f"dense_layers.{2 * i}.{k}" for i in range(len(fcsz) + 1)
              for k in ("weight", "bias")]
    return names


def braggnn_init(model):
    """BraggNN's init (Xavier-uniform weights), but biases U(-BRAGG_BIAS, BRAGG_BIAS)
    instead of zeros so that the bias gradients and the bias paths are tested."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            with torch.no_grad():
                m.bias.uniform_(-BRAGG_BIAS, BRAGG_BIAS)


def peak_patches(rng, B, S):
    """Peak-like patches (B, 1, S, S): a rotated 2-D Gaussian/Lorentzian mix at a sub-pixel
    centre within one pixel of the middle (pixel k spans [k, k+1), as sim.h), a sloped
    background, counting noise; min-max scaled per patch to [0, 1]. Returns (patches,
    targets (B, 2) = (col, row) / S, column first as BraggNN)."""
    k = np.arange(S) + 0.5
    cols, rows = np.meshgrid(k, k)
    x = np.empty((B, 1, S, S))
    t = np.empty((B, 2))
    for n in range(B):
        r0, c0 = rng.uniform(S / 2 - 1, S / 2 + 1, 2)
        sr, sc, phi = rng.uniform(0.8, 2.0), rng.uniform(0.8, 2.0), rng.uniform(0, np.pi)
        dr, dc = rows - r0, cols - c0
        u = (np.cos(phi) * dc + np.sin(phi) * dr) / sc
        v = (-np.sin(phi) * dc + np.cos(phi) * dr) / sr
        q = u * u + v * v
        eta = rng.uniform(0.0, 0.6)
        y = eta / (1 + q) + (1 - eta) * np.exp(-0.5 * q)
        y = rng.uniform(0.02, 0.1) + rng.uniform(-0.005, 0.005) * (rows + cols) + y
        y = rng.poisson(np.clip(y, 0, None) * 3000.0) / 3000.0
        x[n, 0] = (y - y.min()) / (y.max() - y.min())
        t[n] = (c0 / S, r0 / S)
    return x.astype(np.float32), t.astype(np.float32)


def braggnn_kink(model, x):
    with torch.no_grad():
        acts, _ = model.trunk(x)
    return min(float(a.abs().min()) for a in acts["kinks"])


def braggnn_case():
    S, B = BRAGG_S, BRAGG_B
    torch.manual_seed(SEED + 200)
    model = BraggNN(S)
    braggnn_init(model)
    names = [k for k, _ in model.named_parameters()]
    assert names == list(model.state_dict().keys()) == braggnn_names(), names
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 33172, n_params
    init = {k: f32(v) for k, v in model.state_dict().items()}

    # input patches: redraw until no pre-activation sits on a LeakyReLU kink, at the
    # initial parameters and at step1's (where the second iteration runs)
    for attempt in range(1000):
        rng = np.random.default_rng(DATA_SEED + 100 + attempt)
        x_np, t_np = peak_patches(rng, B, S)
        x, target = torch.from_numpy(x_np), torch.from_numpy(t_np)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in init.items()})
        kink = braggnn_kink(model, x)
        if kink <= 1e-5:
            continue
        params = list(model.parameters())
        opt = torch.optim.Adam(params, lr=BRAGG_LR)
        opt.zero_grad()
        acts, _ = model.trunk(x)
        out = model(x)
        assert torch.equal(out, model.trunk(x)[1])
        loss = F.mse_loss(out, target)
        loss.backward()
        grads = {k: f32(p.grad) for k, p in model.named_parameters()}
        opt.step()
        step1 = {k: f32(v) for k, v in model.state_dict().items()}
        kink1 = braggnn_kink(model, x)
        if kink1 > 1e-5:
            break
    else:
        raise RuntimeError("no patches with a safe kink margin")
    data_seed = DATA_SEED + 100 + attempt
    assert float(target.min()) >= 0.4 and float(target.max()) <= 0.6

    # iteration 2 from step1's parameters (Adam's moments and bias corrections in play)
    opt.zero_grad()
    loss2 = F.mse_loss(model(x), target)
    loss2.backward()
    opt.step()
    step2 = {k: f32(v) for k, v in model.state_dict().items()}

    tensors = [(k, init[k]) for k in names]
    tensors += [("input", x_np), ("target", t_np), ("output", f32(out)),
                ("loss", f32(loss).reshape(1))]
    # activations of the first patch only: all four patches' would add 200 KB
    tensors += [(f"act.{k}", f32(acts[k][:1])) for k in ("conv1", "attn", "nlb", "conv3")]
    for prefix, d in (("grad", grads), ("step1", step1), ("step2", step2)):
        tensors += [(f"{prefix}.{k}", d[k]) for k in names]
    N = (S - 2) ** 2
    logits = nlb_logits(init, torch.from_numpy(f32(acts["conv1"])))
    meta = {"torch_version": torch.__version__, "seed": str(SEED + 200),
            "data_seed": str(data_seed), "S": str(S), "B": str(B), "lr": repr(BRAGG_LR),
            "fcsz": ",".join(map(str, BRAGG_FCSZ)), "params": ",".join(names),
            "init": "Xavier-uniform weights (as BraggNN); biases U(-0.1, 0.1), NOT BraggNN's "
                    "zeros, so bias gradients are tested",
            "optimizer": "torch.optim.Adam defaults (betas 0.9, 0.999; eps 1e-8; no weight "
                         "decay), no gradient clipping",
            "input": f"(B, 1, S, S) peak-like patches, min-max scaled per patch to [0, 1]",
            "target": "(B, 2) true peak centre (col, row) / S, column first",
            "output": "(B, 2) the model's output at the initial parameters",
            "loss": "[1] F.mse_loss(output, target), mean over B*2",
            "act.conv1": f"(1, 64, {S - 2}, {S - 2}) cnn_layers.0 output, the block's input",
            "act.attn": f"(1, {N}, {N}) softmax over the last axis of theta phi, row i = "
                        "query position i (row-major over the 9x9 map), no 1/sqrt(d)",
            "act.nlb": f"(1, 64, {S - 2}, {S - 2}) non-local block output (out_cnn(y) + x), "
                       "before the first LeakyReLU",
            "act.conv3": f"(1, 8, {S - 6}, {S - 6}) cnn_layers.4 output before its LeakyReLU",
            "act": "act.*: activations of the first patch (input[0]) only",
            "grad": "grad.<name>: d loss / d parameter at the initial parameters",
            "grad.nlb.phi_layer.bias": PHI_BIAS_NOTE,
            "step1": "step1.<name>: parameters after one Adam step",
            "step2": "step2.<name>: after a second iteration (forward, MSE, backward, Adam "
                     "step) from step1's parameters",
            "kink_margin": f"{min(kink, kink1):.3g}",
            "attn_logit_absmax": f"{float(logits.abs().max()):.4g}",
            "generator": "tools/make_torch_fixture.py"}
    small = sum(int((np.abs(g) < 1e-6).sum()) for g in grads.values())
    summary = dict(loss=float(loss), loss2=float(loss2), kink=min(kink, kink1),
                   phi_bias_grad_absmax=float(np.abs(grads["nlb.phi_layer.bias"]).max()),
                   data_seed=data_seed, n_params=n_params, grads_below_1e6=small,
                   attn_logit_absmax=float(logits.abs().max()),
                   attn_max=float(acts["attn"].max()))
    return tensors, meta, summary


def nlb_logits(st, a1):
    """theta phi (B, N, N), the block's pre-softmax logits, from state_dict arrays st."""
    def conv(m):
        return F.conv2d(a1, torch.from_numpy(st[f"nlb.{m}.weight"]),
                        torch.from_numpy(st[f"nlb.{m}.bias"])).flatten(2)
    return torch.matmul(conv("theta_layer").transpose(1, 2), conv("phi_layer"))


def braggnn_state_dict_case():
    """A state_dict as safetensors.torch.save_file(model.state_dict(), path) writes it: no
    __metadata__, tensors sorted by name (safetensors orders by dtype, then name), for
    S = 15 (flatten 8 * 9 * 9 = 648); and the (input, output) pair in a separate file."""
    S, B = BRAGG_SD_S, BRAGG_SD_B
    torch.manual_seed(SEED + 300)
    model = BraggNN(S)
    braggnn_init(model)
    sd = {k: f32(v) for k, v in model.state_dict().items()}
    assert sd["dense_layers.0.weight"].shape == (BRAGG_FCSZ[0], 8 * (S - 6) ** 2)
    rng = np.random.default_rng(DATA_SEED + 300)
    x_np, _ = peak_patches(rng, B, S)
    with torch.no_grad():
        out = model(torch.from_numpy(x_np))
    io_meta = {"torch_version": torch.__version__, "seed": str(SEED + 300), "S": str(S),
               "B": str(B), "input": "(B, 1, S, S) peak-like patches, min-max scaled per patch",
               "output": "(B, 2) BraggNN(S) with braggnn_state_dict.safetensors' parameters",
               "generator": "tools/make_torch_fixture.py"}
    return sorted(sd.items()), [("input", x_np), ("output", f32(out))], io_meta


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
    ins = {k: d64(f"nonlocal.{k}") for k in ("inp",) + NONLOCAL_WEIGHTS}
    out, attn = nonlocal_block(ins["inp"], *(ins[k] for k in NONLOCAL_WEIGHTS))
    out.backward(up("nonlocal.dout"))
    res["nonlocal"] = (max(scaled_err(t["nonlocal.out"], out, OUT_REL),
                           scaled_err(t["nonlocal.attn"], attn, OUT_REL)),
                       max(scaled_err(t["nonlocal.dinp"], ins["inp"].grad, GRAD_REL),
                           *(scaled_err(t[f"nonlocal.d{k}"], ins[k].grad, GRAD_REL)
                             for k in NONLOCAL_WEIGHTS if k != "phi_b")))
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


def braggnn_float32_noise(tensors):
    """The same for braggnn: output, loss, activations and gradients in float64 from the
    fixture's initial parameters."""
    st = dict(tensors)
    model = BraggNN(BRAGG_S).double()
    model.load_state_dict({k: torch.from_numpy(st[k]).double() for k in model.state_dict()})
    x = torch.from_numpy(st["input"]).double()
    acts, out = model.trunk(x)
    loss = F.mse_loss(out, torch.from_numpy(st["target"]).double())
    loss.backward()
    res = {"braggnn.output": (scaled_err(st["output"], out, OUT_REL), 0.0),
           "braggnn.loss": (scaled_err(st["loss"], loss.reshape(1), OUT_REL), 0.0)}
    for k in ("conv1", "attn", "nlb", "conv3"):
        res["braggnn.act." + k] = (scaled_err(st["act." + k], acts[k][:1], OUT_REL), 0.0)
    for k, p in model.named_parameters():
        if k != "nlb.phi_layer.bias":
            res["braggnn.grad." + k] = (0.0, scaled_err(st["grad." + k], p.grad, GRAD_REL))
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

    btensors, bmeta, bsummary = braggnn_case()
    bragg_path = os.path.join(outdir, "braggnn.safetensors")
    write_safetensors(bragg_path, btensors, bmeta)
    sd_tensors, io_tensors, io_meta = braggnn_state_dict_case()
    sd_path = os.path.join(outdir, "braggnn_state_dict.safetensors")
    write_safetensors(sd_path, sd_tensors, None)
    io_path = os.path.join(outdir, "braggnn_state_dict_io.safetensors")
    write_safetensors(io_path, io_tensors, io_meta)

    # sanity checks: re-read every file, compare bytes-for-value, shapes, no NaN/Inf,
    # no ties in the pooling cases
    for path, want, wmeta in ((layers_path, cs.tensors, meta), (model_path, tensors, smeta),
                              (bragg_path, btensors, bmeta), (sd_path, sd_tensors, {}),
                              (io_path, io_tensors, io_meta)):
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
    with open(sd_path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        assert b"__metadata__" not in f.read(n), sd_path
    bt, S = dict(btensors), BRAGG_S
    assert bt["cnn_layers.0.weight"].shape == (64, 1, 3, 3)
    assert bt["nlb.theta_layer.weight"].shape == (32, 64, 1, 1)
    assert bt["nlb.out_cnn.weight"].shape == (64, 32, 1, 1)
    assert bt["cnn_layers.2.weight"].shape == (32, 64, 3, 3)
    assert bt["cnn_layers.4.weight"].shape == (8, 32, 3, 3)
    assert [bt[f"dense_layers.{i}.weight"].shape for i in range(0, 10, 2)] == \
        [(16, 200), (8, 16), (4, 8), (2, 4), (2, 2)]
    assert bt["act.attn"].shape == (1, 81, 81) and bt["act.conv3"].shape == (1, 8, 5, 5)
    assert np.allclose(bt["act.attn"].sum(-1), 1, atol=1e-5)
    assert all(np.abs(bt[k]).max() > 0 for k in bt if k.endswith(".bias"))
    assert np.allclose(bt["input"].reshape(BRAGG_B, -1).min(1), 0)
    assert np.allclose(bt["input"].reshape(BRAGG_B, -1).max(1), 1)
    assert bt["input"].shape == (BRAGG_B, 1, S, S) and bt["output"].shape == (BRAGG_B, 2)
    assert dict(sd_tensors)["dense_layers.0.weight"].shape == (16, 648)
    new_bytes = sum(os.path.getsize(p) for p in (bragg_path, sd_path, io_path))
    # four copies of 33,172 parameters (530 KB) plus the S = 15 state_dict (163 KB)
    assert new_bytes < 800 * 1024, new_bytes

    print("torch float32 vs float64, in units of the test's tolerance (outputs 1e-5, "
          "gradients 1e-4, floor 1e-6; <= 1 passes; phi biases' gradients, exactly 0, "
          "left out):")
    for k, (o, g) in (list(float32_noise(cs).items()) + list(model_float32_noise(tensors).items())
                      + list(braggnn_float32_noise(btensors).items())):
        print(f"  {k:40s} out {o:6.3f}  grad {g:6.3f}")
    nl = dict(cs.tensors)["nonlocal.dphi_b"]
    print(f"nonlocal: dphi_b absmax={float(np.abs(nl).max()):.3g} (exactly 0), attn max="
          f"{float(dict(cs.tensors)['nonlocal.attn'].max()):.3g}")
    for name, d in (("structure_net_small", summary), ("braggnn", bsummary)):
        print(f"{name}: " + ", ".join(
            f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items()))


if __name__ == "__main__":
    main()
