"""Benchmark: inference of the stellar Transformer through its API (StellarModel.predict), in stars/s,
for stars with 63 inputs and 1, 3 and 10 requests, both paths: all requests in one decoder pass
(the encoder once, its keys and values once per block) and one request at a time (a call per
request, as one would without it); this checkout side by side with a reference one.

    .venv/bin/python benchmarks/bench_inference.py --reference 648bdf2
    .venv/bin/python benchmarks/bench_inference.py --device cuda --stars 200000 --batch 16384

Random weights (the speed does not depend on them), the preset of ``--preset`` (paper by
default); each measurement in a fresh process importing one implementation's ``src/``; the
best of ``--repeats``. ``+bf16``: StellarModel's precision bfloat16. Ends with one line of ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
REQUESTS = ["teff", "logg", "m_h", "logebv", "g_fakemag", "jh", "bp0", "bp1", "rp0", "rp1"]


def worker(args):
    sys.path.insert(0, args.src)
    import numpy as np
    import pandas as pd
    import torch

    from pipeline.model.api import StellarModel
    from pipeline.model.model import StellarTransformer, preset
    from pipeline.tokens.vocab import BASE_VOCABULARY

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = StellarTransformer(preset(args.preset, dropout=0.0))
    vocab = list(BASE_VOCABULARY)
    meta = {"vocabulary": vocab, "median": [0.0] * len(vocab), "mad_std": [1.0] * len(vocab), "model": net.cfg.to_dict()}
    kwargs = {"precision": args.precision} if args.precision else {}
    model = StellarModel(net, meta, args.device, **kwargs)
    inputs = [t for t in vocab if t not in REQUESTS][:63]
    table = pd.DataFrame(np.random.default_rng(0).normal(size=(args.stars, 63)), columns=inputs)
    asked = REQUESTS[: args.requests]
    model.predict(table.iloc[: args.batch], asked, batch_size=args.batch)  # warm-up
    t0 = time.perf_counter()
    if args.path == "one pass":
        model.predict(table, asked, batch_size=args.batch)
    else:
        for t in asked:
            model.predict(table, [t], batch_size=args.batch)
    print(json.dumps({"stars_per_s": args.stars / (time.perf_counter() - t0)}))


def measure(src, args, requests, path, precision="") -> float:
    cmd = [sys.executable, __file__, "--worker", "--src", str(src), "--requests", str(requests), "--path", path]
    cmd += ["--stars", str(args.stars), "--batch", str(args.batch), "--threads", str(args.threads), "--device", args.device]
    cmd += ["--preset", args.preset, "--precision", precision]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(src)})
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["stars_per_s"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--src", default=str(SRC), help=argparse.SUPPRESS)
    p.add_argument("--requests", type=int, default=3, help=argparse.SUPPRESS)
    p.add_argument("--path", default="one pass", help=argparse.SUPPRESS)
    p.add_argument("--precision", default="", help=argparse.SUPPRESS)
    p.add_argument("--preset", default="paper")
    p.add_argument("--stars", type=int, default=8192)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--reference", default="", help="git revision or src/ folder to compare with")
    p.add_argument("--bf16", action="store_true", help="also StellarModel(precision='bfloat16')")
    args = p.parse_args()
    if args.worker:
        return worker(args)
    sys.path.insert(0, str(HERE))
    from bench_train_loop import reference_src

    ref = reference_src(args.reference) if args.reference else None
    ratios = []
    print(f"{args.preset} preset, device {args.device}, {args.threads} threads, {args.stars} stars of 63 inputs, batch {args.batch}")
    for r in (1, 3, 10):
        runs = {"one pass": (SRC, "one pass", ""), "one at a time": (SRC, "one at a time", "")}
        if args.bf16:
            runs["one pass+bf16"] = (SRC, "one pass", "bfloat16")
        if ref:
            runs["reference one pass"] = (ref, "one pass", "")
        best = {k: max(measure(s, args, r, path, prec) for _ in range(args.repeats)) for k, (s, path, prec) in runs.items()}
        for k, v in best.items():
            print(f"{r:3d} requests  {k:20s} {v:10.0f} stars/s", flush=True)
        ratios.append(f"{r} req one pass/one at a time {best['one pass'] / best['one at a time']:.2f}x")
        if ref:
            ratios.append(f"{r} req this/reference {best['one pass'] / best['reference one pass']:.2f}x")
        if args.bf16:
            ratios.append(f"{r} req bf16/float32 {best['one pass+bf16'] / best['one pass']:.2f}x")
    print("ratios: " + ", ".join(ratios))


if __name__ == "__main__":
    main()
