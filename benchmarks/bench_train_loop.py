"""Benchmark: the whole training loop of the stellar Transformer (sampling, forward, loss, backward,
AdamW, the schedule), this checkout side by side with a reference one, in stars/s and peak memory.

    .venv/bin/python benchmarks/bench_train_loop.py --reference 648bdf2          # CPU, 2 threads
    .venv/bin/python benchmarks/bench_train_loop.py --presets paper --device cuda --reference ../ref/src

``--reference`` is a git revision (checked out here into a temporary worktree) or the ``src/``
folder of another checkout: the implementation before the device-resident sampler is 648bdf2.
Each measurement runs in a fresh process (``--worker``) that imports the one implementation
from its ``src/``, drives that version's own training job (its sampler and its loss) and the
engine's step for ``--steps`` timed steps after ``--warmup``; the two implementations run
alternately, ``--repeats`` times, and the best of each is kept (this machine is shared and noisy).
Data: the default run's token store (``--store``, when present) and a synthetic store of
``--synthetic`` stars (the paper's scale: 400,000 by default; built once, cached in ``--cache``).
Peak memory: the process's peak resident set on the CPU (the data held plus the model), torch's
peak allocation on CUDA. Variants of this checkout: ``+bf16`` (train.precision bfloat16),
``+compile`` (train.compile on),
``groups1``/``groups4``/``groups16`` (train.length_groups: each batch run as that many groups of similar input
counts; the default is 8 on the CPU, so ``groups1`` is the whole padded batch at once), ``batch256`` and
``batch256g4`` (train.batch_size 256, with the CPU's 8 groups or 4: a smaller batch, stars/s side by side
with ``--batch``'s). Ends with one line of ratios: over the reference, or over this checkout without one.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def worker(args):
    sys.path.insert(0, args.src)
    import resource

    import torch

    from pipeline import engine
    from pipeline.model import train as tr
    from pipeline.model.model import StellarTransformer, preset

    torch.set_num_threads(args.threads)
    extra = json.loads(args.variant)
    cfg = tr.TrainConfig(**{"batch_size": args.batch, "targets_per_star": 4, "device": args.device, **extra})
    device, amp, _ = engine.device_and_precision(*([cfg.device, cfg.precision] if hasattr(cfg, "precision") else [cfg.device]))
    model_cfg = preset(args.preset)
    torch.manual_seed(0)
    model = StellarTransformer(model_cfg).to(device)
    net = model  # earlier checkouts: the job holds its forward
    if hasattr(engine, "run"):  # this checkout: the device-resident sampler, its settings as one object
        from pipeline.model.data import TokenSampler

        train_batches = TokenSampler(args.store, "train", cfg.sampling(), model_cfg.context, device)
        val = TokenSampler(args.store, "val", cfg.sampling(validation=True), model_cfg.context, device)
        forward = engine.compiled(model, cfg.compile, device)
        job = tr.TokenJob(train_batches, val, train_batches, device, amp, tr.resolve_length_groups(cfg.length_groups, device))
        net = forward  # the job runs the network the engine gives it
    elif hasattr(tr, "_samplers"):  # earlier checkouts: the device-resident sampler
        train_batches, val = tr._samplers(args.store, model_cfg, cfg, device)
        forward = tr.compiled(model, cfg.compile, device)
        groups = tr.resolve_length_groups(cfg.length_groups, device) if hasattr(tr, "resolve_length_groups") else 1
        job = tr.TokenJob(train_batches, val, train_batches, forward, device, amp, *([groups] if groups > 1 else []))
    else:  # the reference: the Zarr stream and the NumPy sampler
        train_batches, val = tr._streams(args.store, model_cfg, cfg)
        loader = torch.utils.data.DataLoader(train_batches, batch_size=None, num_workers=0)
        job = tr.TokenJob(train_batches, val, loader, device, amp)
    schedule = engine.Schedule(epochs=10, lr=1e-3, lr_min=1e-6)
    opt, sched = engine._optimiser(model, schedule, None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    n_batches = max(job.n_batches(), 1)
    stars, t0, done, epoch = 0, None, 0, 0
    total = torch.zeros((), device=device)
    while done < args.warmup + args.steps:
        for batch in job.batches(epoch):
            if done == args.warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0, stars = time.perf_counter(), 0
            loss, n = job.loss(net, batch)
            engine._step(model, opt, None, loss, 1.0)
            sched.step(epoch + (done % n_batches + 1) / n_batches)
            total += loss.detach().float() * n
            stars += job.stars(batch)
            done += 1
            if done == args.warmup + args.steps:
                break
        epoch += 1
    float(total)  # the loop's one read back
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"stars_per_s": stars / dt, "peak_mb": peak, "resident": getattr(train_batches, "resident", "stream")}))


def synthetic_store(n_stars: int, cache: Path) -> Path:
    """A token store of ``n_stars`` stars with the real store's layout and a realistic share of absent tokens."""
    path = cache / f"synthetic_{n_stars}.zarr"
    if path.exists():
        return path
    sys.path.insert(0, str(SRC))
    import numpy as np
    import pandas as pd

    from pipeline.tokens.store import build_token_store
    from pipeline.tokens.vocab import vocabulary

    rng = np.random.default_rng(0)
    vocab = vocabulary()
    values = rng.normal(size=(n_stars, len(vocab))).astype(np.float32)
    values[rng.random(values.shape) < 0.12] = np.nan  # ~104 of 118 present, as in the APOGEE x XP catalog
    cols = {"source_id": np.arange(1, n_stars + 1)}
    for j, t in enumerate(vocab):
        cols[t], cols[f"{t}_err"] = values[:, j], np.full(n_stars, 0.05, np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    build_token_store(pd.DataFrame(cols), path, vocab, chunk_stars=4096)
    return path


def measure(src, store, preset, args, variant=None) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--src", str(src), "--store", str(store), "--preset", preset]
    cmd += ["--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    cmd += ["--device", args.device, "--variant", json.dumps(variant or {})]
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def reference_src(ref: str) -> Path:
    """The ``src/`` of the reference: a folder as given, or a git revision checked out into a
    temporary worktree that is removed when the benchmark exits."""
    if Path(ref, "pipeline").is_dir():
        return Path(ref)
    tree = Path(tempfile.mkdtemp(prefix="bench_reference_")) / "ref"
    git = ["git", "-C", str(HERE.parent), "worktree"]
    subprocess.run([*git, "add", "--detach", str(tree), ref], check=True, capture_output=True)
    atexit.register(subprocess.run, [*git, "remove", "--force", str(tree)], capture_output=True)
    return tree / "src"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--src", default=str(SRC), help=argparse.SUPPRESS)
    p.add_argument("--variant", default="{}", help=argparse.SUPPRESS)
    p.add_argument("--store", default="results/tokens/stars.zarr")
    p.add_argument("--preset", default="small", help=argparse.SUPPRESS)
    p.add_argument("--presets", default="tiny,small,paper")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--reference", default="", help="git revision or src/ folder of the implementation to compare with")
    p.add_argument("--synthetic", type=int, default=400_000, help="stars of the synthetic store (0: none)")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "bench_train_loop"))
    p.add_argument(
        "--variants",
        default="groups4",
        help="extra runs of this checkout: bf16, compile, groups1, groups4, groups16, batch256, batch256g4 (comma-separated)",
    )
    args = p.parse_args()
    if args.worker:
        return worker(args)
    ref = reference_src(args.reference) if args.reference else None
    stores = {"default run": Path(args.store)} if Path(args.store).exists() else {}
    if args.synthetic:
        t = time.perf_counter()
        stores[f"synthetic {args.synthetic // 1000}k"] = synthetic_store(args.synthetic, Path(args.cache))
        print(f"synthetic store of {args.synthetic} stars ready in {time.perf_counter() - t:.0f} s", flush=True)
    variants = {
        "bf16": {"precision": "bfloat16"},
        "compile": {"compile": "on"},
        "groups1": {"length_groups": 1},
        "groups4": {"length_groups": 4},
        "groups16": {"length_groups": 16},
        "batch256": {"batch_size": 256},
        "batch256g4": {"batch_size": 256, "length_groups": 4},
    }
    ratios = []
    print(
        f"device {args.device}, {args.threads} threads, batch {args.batch}, {args.steps} steps after {args.warmup}, best of {args.repeats}"
    )
    for label, store in stores.items():
        for preset in args.presets.split(","):
            runs = {"this": (SRC, None)} | ({"reference": (ref, None)} if ref else {})
            runs |= {f"this+{v}": (SRC, variants[v]) for v in filter(None, args.variants.split(","))}
            best = {k: None for k in runs}
            for _ in range(args.repeats):
                for name, (src, variant) in runs.items():
                    r = measure(src, store, preset, args, variant)
                    if best[name] is None or r["stars_per_s"] > best[name]["stars_per_s"]:
                        best[name] = r
            for name, r in best.items():
                print(
                    f"{label:14s} {preset:6s} {name:16s} {r['stars_per_s']:10.0f} stars/s  peak {r['peak_mb']:7.0f} MB  ({r['resident']})",
                    flush=True,
                )
            base = "reference" if ref else "this"
            if ref:
                x = best["this"]["stars_per_s"] / best["reference"]["stars_per_s"]
                ratios.append(f"{preset}@{label.split()[0]} {x:.2f}x")
            for v in (k for k in best if k.startswith("this+")):
                ratios.append(f"{preset}@{label.split()[0]}{v[4:]} {best[v]['stars_per_s'] / best[base]['stars_per_s']:.2f}x")
    print(f"ratios (this / {'reference' if ref else 'this checkout as it is'}, stars/s): " + ", ".join(ratios))


if __name__ == "__main__":
    main()
