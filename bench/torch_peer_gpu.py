#!/usr/bin/python3
"""PyTorch peer benchmark for the two braggflow models (CPU, or a GPU with --device).

bench/torch_peer_gpu.py: a copy of shared/anchors/torch/bench.py with --device
cpu|cuda|cuda:N (models, optimiser state and the pre-generated data on that device;
every timed call ends with torch.cuda.synchronize()), --infer-batches, --variants, and
on a GPU an extra inference variant "eager_host_io" (inputs from host memory, outputs
copied back: the work braggflow's bf_model_predict does). Run by bench/gpu.sh; it has
NEVER RUN on a GPU (written on a machine without one).

Models
  multitask : 1-D CNN for TOF powder patterns, input (B,1,2806),
              class head (3 logits) + regression head (3 lattice values + log-variance)
  braggnn   : BraggNN with non-local block, input (B,1,11,11), output (row, col)

Measures, in one process with a fixed thread count:
  * training throughput (samples/s), steady state, median of N reps of >= T seconds
  * inference throughput at fixed batch sizes (eager, jit.script, jit.script+freeze
    +optimize_for_inference), median of N reps
  * parameter count, analytic forward FLOPs per sample (2*MACs)

Timing covers compute only: batches are contiguous slices of a pre-generated tensor
(no shuffling / DataLoader cost), data is synthetic.

Usage: /usr/bin/python3 bench.py --threads 1 --out results_t1.json
       python3 bench/torch_peer_gpu.py --device cuda --threads 1 --out gpu.json \
           --infer-batches 1,8,64,512,4096
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# --------------------------------------------------------------------------- models
class MultitaskDiffractionNet(nn.Module):
    def __init__(self, n_in=2806, n_class=3, n_reg=3):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 16, kernel_size=3, stride=1)
        self.pool1 = nn.MaxPool1d(2, 2)
        self.conv2 = nn.Conv1d(16, 32, kernel_size=4, stride=2)
        self.pool2 = nn.MaxPool1d(2, 2)
        l1 = (n_in - 3) // 1 + 1          # 2804
        l1p = l1 // 2                     # 1402
        l2 = (l1p - 4) // 2 + 1           # 700
        l2p = l2 // 2                     # 350
        self.n_flat = 32 * l2p            # 11200
        self.fc = nn.Linear(self.n_flat, 256)
        self.head_cls = nn.Linear(256, n_class)
        self.head_reg = nn.Linear(256, n_reg + 1)  # + log-variance
        self.shapes = dict(n_in=n_in, l1=l1, l1p=l1p, l2=l2, l2p=l2p)

    def forward(self, x):
        x = self.pool1(F.leaky_relu(self.conv1(x), 0.1))
        x = self.pool2(F.leaky_relu(self.conv2(x), 0.1))
        x = torch.flatten(x, 1)
        x = F.leaky_relu(self.fc(x), 0.1)
        return self.head_cls(x), self.head_reg(x)

    def macs_per_sample(self):
        s = self.shapes
        m = {}
        m["conv1"] = 16 * s["l1"] * (1 * 3)
        m["conv2"] = 32 * s["l2"] * (16 * 4)
        m["fc"] = self.n_flat * 256
        m["heads"] = 256 * (self.head_cls.out_features + self.head_reg.out_features)
        return m


def multitask_loss(logits, reg, y_cls, y_reg):
    yhat = reg[:, :-1]
    s = reg[:, -1]
    nll = ((y_reg - yhat) ** 2).sum(dim=1) / torch.exp(s) + s
    return nll.mean() + F.cross_entropy(logits, y_cls)


class NLB(nn.Module):
    """Non-local block as in the published BraggNN code (embedded-Gaussian, residual)."""

    def __init__(self, in_ch=64):
        super().__init__()
        self.inter = in_ch // 2
        self.theta = nn.Conv2d(in_ch, self.inter, 1)
        self.phi = nn.Conv2d(in_ch, self.inter, 1)
        self.g = nn.Conv2d(in_ch, self.inter, 1)
        self.out = nn.Conv2d(self.inter, in_ch, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        theta = self.theta(x).view(b, self.inter, h * w).permute(0, 2, 1)  # (b, hw, ci)
        phi = self.phi(x).view(b, self.inter, h * w)                         # (b, ci, hw)
        g = self.g(x).view(b, self.inter, h * w).permute(0, 2, 1)           # (b, hw, ci)
        att = torch.softmax(torch.matmul(theta, phi), dim=-1)               # (b, hw, hw)
        y = torch.matmul(att, g).permute(0, 2, 1).contiguous().view(b, self.inter, h, w)
        return self.out(y) + x


class BraggNN(nn.Module):
    def __init__(self, imgsz=11, fcsz=(16, 8, 4, 2)):
        super().__init__()
        self.imgsz = imgsz
        self.conv1 = nn.Conv2d(1, 64, 3)
        self.nlb = NLB(64)
        self.conv2 = nn.Conv2d(64, 32, 3)
        self.conv3 = nn.Conv2d(32, 8, 3)
        self.fsz = imgsz - 6
        dims = (8 * self.fsz * self.fsz,) + tuple(fcsz)
        self.fcs = nn.ModuleList([nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])])
        self.fc_out = nn.Linear(fcsz[-1], 2)

    def forward(self, x):
        x = self.conv1(x)
        x = self.nlb(x)
        x = F.leaky_relu(x, 0.01)
        x = F.leaky_relu(self.conv2(x), 0.01)
        x = F.leaky_relu(self.conv3(x), 0.01)
        x = torch.flatten(x, 1)
        for fc in self.fcs:
            x = F.leaky_relu(fc(x), 0.01)
        return self.fc_out(x)

    def macs_per_sample(self):
        n1 = self.imgsz - 2          # 9
        hw = n1 * n1                 # 81
        ci = self.nlb.inter          # 32
        n2 = n1 - 2                  # 7
        n3 = n2 - 2                  # 5
        m = {}
        m["conv1"] = 64 * hw * (1 * 9)
        m["nlb_theta_phi_g"] = 3 * ci * hw * 64
        m["nlb_theta_T_phi"] = hw * hw * ci
        m["nlb_att_g"] = hw * ci * hw
        m["nlb_out"] = 64 * hw * ci
        m["conv2"] = 32 * n2 * n2 * (64 * 9)
        m["conv3"] = 8 * n3 * n3 * (32 * 9)
        m["fc"] = sum(fc.in_features * fc.out_features for fc in self.fcs) + \
            self.fc_out.in_features * self.fc_out.out_features
        return m


# --------------------------------------------------------------------------- data
def make_data(model_name, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    if model_name == "multitask":
        x = torch.rand(n, 1, 2806, generator=g)
        y_cls = torch.randint(0, 3, (n,), generator=g)
        y_reg = torch.randn(n, 3, generator=g)
        return x, (y_cls, y_reg)
    else:
        x = torch.rand(n, 1, 11, 11, generator=g)
        y = torch.rand(n, 2, generator=g)
        return x, (y,)


def build(model_name):
    torch.manual_seed(1234)
    if model_name == "multitask":
        model = MultitaskDiffractionNet().to(DEVICE)
        opt = torch.optim.Adam(model.parameters(), lr=5e-4)

        def step(xb, tb):
            opt.zero_grad(set_to_none=True)
            logits, reg = model(xb)
            loss = multitask_loss(logits, reg, tb[0], tb[1])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=50.0)
            opt.step()
            return loss
    else:
        model = BraggNN().to(DEVICE)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(xb, tb):
            opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(model(xb), tb[0])
            loss.backward()
            opt.step()
            return loss
    return model, opt, step


DEVICE = torch.device("cpu")


def sync():
    """Waits for the device: a timed call must include its kernels."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


# --------------------------------------------------------------------------- timing
def timed_loop(fn, n_items_per_call, min_seconds, min_calls):
    """Call fn() until >= min_seconds and >= min_calls. Returns dict."""
    per_call = []
    t_start = time.perf_counter()
    calls = 0
    while True:
        t0 = time.perf_counter()
        fn(calls)
        sync()
        t1 = time.perf_counter()
        per_call.append(t1 - t0)
        calls += 1
        if calls >= min_calls and (t1 - t_start) >= min_seconds:
            break
    total = time.perf_counter() - t_start
    return dict(calls=calls, seconds=total,
                samples_per_s=calls * n_items_per_call / total,
                median_call_s=statistics.median(per_call))


def bench_train(model_name, batch, n_data, warmup, min_seconds, reps):
    model, opt, step = build(model_name)
    model.train()
    x, t = make_data(model_name, n_data)
    x, t = x.to(DEVICE), tuple(tt.to(DEVICE) for tt in t)
    nb = n_data // batch
    batches = [(x[i * batch:(i + 1) * batch], tuple(tt[i * batch:(i + 1) * batch] for tt in t))
               for i in range(nb)]
    losses = []

    def fn(i):
        xb, tb = batches[i % nb]
        losses.append(step(xb, tb).item())   # .item() forces completion (and is what a loop would log)

    for i in range(warmup):
        fn(i)
    first_loss = losses[0]
    runs = [timed_loop(fn, batch, min_seconds, 3) for _ in range(reps)]
    sps = [r["samples_per_s"] for r in runs]
    return dict(batch=batch, warmup_iters=warmup, reps=runs,
                samples_per_s_median=statistics.median(sps),
                step_ms_median=1e3 * statistics.median(r["median_call_s"] for r in runs),
                loss_first=first_loss, loss_last=losses[-1], steps_total=len(losses))


def make_infer_variants(model_name, sample, wanted):
    model, _, _ = build(model_name)
    model.eval()
    variants = {"eager": model}
    with torch.no_grad():
        ref = model(sample)
        if "jit_script" in wanted:
            scripted = torch.jit.script(model)
            scripted.eval()
            variants["jit_script"] = scripted
        if "jit_freeze_opt" in wanted:
            try:
                frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(model).eval()))
                variants["jit_freeze_opt"] = frozen
            except Exception as e:  # pragma: no cover
                print("optimize_for_inference failed:", repr(e), file=sys.stderr)
        # check numerical agreement with eager
        checks = {}
        for name, m in variants.items():
            out = m(sample)
            out = out if isinstance(out, tuple) else (out,)
            r = ref if isinstance(ref, tuple) else (ref,)
            checks[name] = max(float((a - b).abs().max()) for a, b in zip(out, r))
    return variants, checks


def bench_infer(model_name, batches, warmup, min_seconds, reps, wanted, host_io):
    x_host, _ = make_data(model_name, max(batches) * 4, seed=7)
    x = x_host.to(DEVICE)
    variants, checks = make_infer_variants(model_name, x[:16], wanted)
    res = {"max_abs_diff_vs_eager": checks, "rows": []}
    runs_of = list(variants.items())
    if host_io:  # inputs from host memory, outputs back to it
        runs_of.append(("eager_host_io", variants["eager"]))
    for vname, m in runs_of:
        for b in batches:
            nb = x.shape[0] // b
            src = x_host if vname == "eager_host_io" else x
            xs = [src[i * b:(i + 1) * b] for i in range(min(nb, 64))]
            with torch.no_grad():
                if vname == "eager_host_io":
                    def fn(i):
                        out = m(xs[i % len(xs)].to(DEVICE))
                        out = out if isinstance(out, tuple) else (out,)
                        [o.cpu() for o in out]
                else:
                    def fn(i):
                        m(xs[i % len(xs)])
                for i in range(warmup):
                    fn(i)
                sync()
                runs = [timed_loop(fn, b, min_seconds, 3) for _ in range(reps)]
            sps = [r["samples_per_s"] for r in runs]
            med = statistics.median(sps)
            row = dict(variant=vname, batch=b, samples_per_s_median=med,
                       us_per_sample=1e6 / med,
                       us_per_call_median=1e6 * statistics.median(r["median_call_s"] for r in runs),
                       reps=runs)
            res["rows"].append(row)
            print(f"  infer {model_name:9s} {vname:15s} b={b:4d}: {med:12.1f} samples/s "
                  f"{1e6/med:10.2f} us/sample", flush=True)
    return res


def cpu_info():
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            txt = f.read()
        for line in txt.splitlines():
            if line.startswith("model name") and "model_name" not in info:
                info["model_name"] = line.split(":", 1)[1].strip()
            if line.startswith("flags") and "flags" not in info:
                fl = line.split(":", 1)[1].split()
                info["flags"] = sorted(f for f in fl if f.startswith("avx") or f in ("fma", "f16c", "amx_tile", "amx_bf16", "amx_int8"))
        info["logical_cpus"] = os.cpu_count()
    except OSError:
        pass
    return info


def blas_in_use():
    """Which libblas.so.3 the process actually mapped."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({l.split()[-1] for l in f if "blas" in l or "lapack" in l})
        return [os.path.realpath(p) for p in libs]
    except OSError:
        return []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--models", default="multitask,braggnn")
    ap.add_argument("--out", required=True)
    ap.add_argument("--tag", default="")
    ap.add_argument("--train-seconds", type=float, default=10.0)
    ap.add_argument("--infer-seconds", type=float, default=2.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-infer", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--infer-batches", default="",
                    help="comma-separated inference batches (default: 512; braggnn 1,64,512)")
    ap.add_argument("--variants", default="eager,jit_script,jit_freeze_opt",
                    help="inference variants among eager,jit_script,jit_freeze_opt")
    a = ap.parse_args()

    global DEVICE
    DEVICE = torch.device(a.device)
    if DEVICE.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit("torch_peer_gpu.py: --device %s: torch.cuda.is_available() is False" % a.device)
        torch.cuda.set_device(DEVICE)
        torch.backends.cuda.matmul.allow_tf32 = False  # FP32 products, as braggflow's
        torch.backends.cudnn.allow_tf32 = False
    wanted = set(a.variants.split(","))

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    cfg = torch.__config__.show()
    cap = [l.strip() for l in cfg.splitlines() if "CPU capability" in l]
    out = dict(tag=a.tag, torch_version=torch.__version__, python=platform.python_version(),
               python_executable=sys.executable, threads=torch.get_num_threads(),
               interop_threads=torch.get_num_interop_threads(),
               env={k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "LD_LIBRARY_PATH", "ATEN_CPU_CAPABILITY")},
               mkldnn_enabled=torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
               cpu_capability=cap, cpu=cpu_info(), models={}, device=str(DEVICE),
               gpu=(torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else None),
               cuda_version=torch.version.cuda,
               cudnn_version=(torch.backends.cudnn.version() if DEVICE.type == "cuda" else None))
    for name in a.models.split(","):
        model = MultitaskDiffractionNet() if name == "multitask" else BraggNN()
        macs = model.macs_per_sample()
        entry = dict(params=sum(p.numel() for p in model.parameters()),
                     macs_per_sample=macs, total_macs_per_sample=sum(macs.values()),
                     fwd_flops_per_sample=2 * sum(macs.values()))
        print(f"[{a.tag} threads={a.threads}] {name}: params={entry['params']} "
              f"fwd FLOPs/sample={entry['fwd_flops_per_sample']}", flush=True)
        if not a.skip_train:
            if name == "multitask":
                tr = bench_train(name, 512, 20480, warmup=3, min_seconds=a.train_seconds, reps=a.reps)
            else:
                tr = bench_train(name, 512, 20480, warmup=10, min_seconds=a.train_seconds, reps=a.reps)
            entry["train"] = tr
            print(f"  train {name:9s} b=512: {tr['samples_per_s_median']:12.1f} samples/s "
                  f"({tr['step_ms_median']:.2f} ms/step; loss {tr['loss_first']:.4f} -> {tr['loss_last']:.4f})",
                  flush=True)
        if not a.skip_infer:
            bs = [512] if name == "multitask" else [1, 64, 512]
            if a.infer_batches:
                bs = [int(b) for b in a.infer_batches.split(",")]
            warm = 2 if name == "multitask" else 8
            entry["infer"] = bench_infer(name, bs, warm, a.infer_seconds, a.reps, wanted,
                                         DEVICE.type == "cuda")
        out["models"][name] = entry
    out["blas_libs_mapped"] = blas_in_use()
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", a.out, "blas:", out["blas_libs_mapped"], flush=True)


if __name__ == "__main__":
    main()
