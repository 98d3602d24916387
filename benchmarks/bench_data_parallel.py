"""Benchmark: data-parallel training (DDP through torchrun) against one process, side by side.

On the CPU: ``--ranks`` ranks x (threads / ranks) threads each against one process with all
``--threads`` threads, the same global batch, the default run's token store. On a GPU machine
(``--device cuda``): one DDP rank (a process group of one, gradients through DDP's reducer)
against plain training, the overhead the issue bounds at 5%; more ranks where more GPUs are seen.
The rate is the training loop's (stars/s of the epochs after the first, from history.csv); the
wall time includes the processes' start-up.

    .venv/bin/python benchmarks/bench_data_parallel.py --store results/tokens/stars.zarr
    .venv/bin/python benchmarks/bench_data_parallel.py --store results/tokens/stars.zarr --device cuda --preset paper --batch 1024

Ends with one line of ratios.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))


def run(variant: str, store, out: Path, model_cfg, cfg, ranks: int, ddp_of_one: bool = False) -> dict:
    import pandas as pd

    from pipeline import distributed
    from pipeline.model.train import rank_spec, train

    t0 = time.perf_counter()
    if ddp_of_one:  # one rank under torchrun: DDP's reducer without a second process
        spec = rank_spec(store, out, model_cfg, cfg, resume=False)
        distributed.launch("pipeline.model.train:train_from_spec", spec, 1, cfg.threads, variant)
    else:
        train(store, out, model_cfg, replace(cfg, processes=ranks), resume=False)
    wall = time.perf_counter() - t0
    h = pd.read_csv(out / "history.csv")
    steady = h["stars_per_s"].iloc[1:] if len(h) > 1 else h["stars_per_s"]
    res = {"variant": variant, "stars_per_s": float(steady.mean()), "wall_s": wall, "val_loss": float(h["val_loss"].iloc[-1])}
    print(f"{variant:34s} {res['stars_per_s']:9.0f} stars/s  {wall:7.1f} s wall  val {res['val_loss']:.4f}", flush=True)
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", default="results/tokens/stars.zarr")
    p.add_argument("--preset", default="small")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is left out of the rate)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--resident", default="auto", help="train.resident (auto: the default run's)")
    args = p.parse_args()

    import torch

    from pipeline.model.model import preset
    from pipeline.model.train import TrainConfig
    from pipeline.tokens.store import open_token_store

    n_tokens = len(open_token_store(args.store).attrs["vocabulary"])
    model_cfg = preset(args.preset, vocab_size=n_tokens)
    cfg = TrainConfig(
        epochs_per_cycle=args.epochs,
        cycles=1,
        batch_size=args.batch,
        lr=2e-3,
        targets_per_star=4,
        identity_fraction=0.25,
        checkpoint_every=args.epochs,
        device=args.device,
        resident=args.resident,
        threads=args.threads,
    )
    print(f"{args.preset} preset, batch {args.batch}, {args.epochs} epochs, {args.device}, {args.threads} threads, store {args.store}")
    work = Path(tempfile.mkdtemp(prefix="bench_ddp_"))
    results = []
    if args.device == "cuda":
        results.append(run("plain, 1 GPU", args.store, work / "plain", model_cfg, cfg, 1))
        results.append(run("DDP, 1 rank on 1 GPU", args.store, work / "ddp1", model_cfg, cfg, 1, ddp_of_one=True))
        if torch.cuda.device_count() >= args.ranks > 1:
            results.append(run(f"DDP, {args.ranks} ranks on {args.ranks} GPUs", args.store, work / "ddpn", model_cfg, cfg, args.ranks))
        ratios = [f"DDP-1/plain {results[1]['stars_per_s'] / results[0]['stars_per_s']:.3f}"]
        if len(results) > 2:
            ratios.append(f"DDP-{args.ranks}/plain {results[2]['stars_per_s'] / results[0]['stars_per_s']:.2f}")
    else:
        per = max(args.threads // args.ranks, 1)
        results.append(run(f"1 process x {args.threads} threads", args.store, work / "one", model_cfg, cfg, 1))
        results.append(run(f"{args.ranks} ranks x {per} thread(s) (gloo)", args.store, work / "ranks", model_cfg, cfg, args.ranks))
        ratios = [
            f"{args.ranks}x{per}/1x{args.threads} stars/s {results[1]['stars_per_s'] / results[0]['stars_per_s']:.2f}",
            f"wall {results[1]['wall_s'] / results[0]['wall_s']:.2f}",
        ]
    print("ratios: " + ", ".join(ratios))


if __name__ == "__main__":
    main()
