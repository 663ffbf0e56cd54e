#!/usr/bin/python3
"""Checks that braggflow checkpoints and the seed's PyTorch FullModel interoperate.

    /usr/bin/python3 tools/check_torch_checkpoint.py MODEL.safetensors PATTERN.csv \
        [path/to/braggflow]

1. braggflow -> PyTorch: loads MODEL's tensors into FullModel with
   load_state_dict(strict=True) and compares its prediction for PATTERN (a CSV as
   `braggflow simulate --out x.csv` writes) with `braggflow predict --csv`.
2. PyTorch -> braggflow: perturbs the weights in PyTorch, writes them as a
   safetensors state_dict with MODEL's metadata, and compares again.
Prints the largest differences; exits 1 if any exceeds 1e-4 (relative to 1).
Needs Debian's python3-torch (not needed by the build or the tests).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_torch_fixture import FullModel, read_safetensors, write_safetensors  # noqa: E402

TOL = 1e-4


def load_pattern(path):
    rows = []
    for line in open(path):
        line = line.split("#")[0].strip()
        if not line:
            continue
        try:
            rows.append(float(line.split(",")[-1]))
        except ValueError:
            continue  # header
    x = np.array(rows, dtype=np.float32)
    return (x - x.min()) / (x.max() - x.min())


def torch_predict(model, x, meta):
    with torch.no_grad():
        logits, reg = model(torch.from_numpy(x)[None, :])
    p = torch.softmax(logits, 1)[0].numpy()
    off = [float(v) for v in meta["label_offset"].split()]
    scale = [float(v) for v in meta["label_scale"].split()]
    sigma = float(np.exp(0.5 * reg[0, 3]))
    vals = []
    for k in range(3):
        vals += [float(reg[0, k]) * scale[k] + off[k], sigma * abs(scale[k])]
    return np.concatenate([p, vals])


def braggflow_predict(bf, model_path, csv):
    out = subprocess.run([bf, "predict", "--model", model_path, "--csv", csv],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    fields = out[1].split(",")
    return np.array([float(v) for v in fields[2:]])


def compare(label, a, b):
    d = float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))
    print(f"{label}: max difference {d:.2e} ({'ok' if d <= TOL else 'TOO LARGE'})")
    return d <= TOL


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    model_path, csv = sys.argv[1], sys.argv[2]
    bf = sys.argv[3] if len(sys.argv) > 3 else "build/braggflow"
    tensors, meta = read_safetensors(model_path)
    L, hidden, _ = (int(v) for v in meta["shape"].split())
    model = FullModel(L, hidden)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()},
                          strict=True)
    x = load_pattern(csv)
    ok = compare("braggflow checkpoint in PyTorch vs braggflow predict",
                 torch_predict(model, x, meta), braggflow_predict(bf, model_path, csv))

    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + 0.05 * torch.randn_like(p))
    with tempfile.TemporaryDirectory() as d:
        back = os.path.join(d, "from-torch.safetensors")
        write_safetensors(back, [(k, v.numpy()) for k, v in model.state_dict().items()], meta)
        ok &= compare("PyTorch state_dict in braggflow vs PyTorch",
                      braggflow_predict(bf, back, csv), torch_predict(model, x, meta))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
