"""Training experiments on a GPU (device tool): which schedule and size reach what held-out scatter.

    PYTHONPATH=/tmp/site:src python3 benchmarks/gpu_experiments.py OUT_DIR
Carries the token store and .gpu/ (slim catalog ids and truth, see gpu_session.sh).
"""

import json
import logging
import sys
import time

logging.basicConfig(level=logging.WARNING)
from pipeline.model.check import heldout_check  # noqa: E402
from pipeline.model.model import preset  # noqa: E402
from pipeline.model.train import TrainConfig, train  # noqa: E402

out = sys.argv[1]
WIDE = dict(embed_dim=128, encoder_heads=8, encoder_ffn=512, decoder_heads=8, decoder_ffn=1024)
RUNS_FIRST = [
    ("A_small_1t", "small", {}, dict(epochs_per_cycle=12, cycles=2, batch_size=512, lr=2e-3, targets_per_star=1)),
    ("B_small_4t", "small", {}, dict(epochs_per_cycle=12, cycles=2, batch_size=512, lr=2e-3, targets_per_star=4)),
    ("C_small_4t_48", "small", {}, dict(epochs_per_cycle=24, cycles=2, batch_size=512, lr=2e-3, targets_per_star=4)),
    ("D_wide_4t", "small", WIDE, dict(epochs_per_cycle=12, cycles=2, batch_size=512, lr=1e-3, targets_per_star=4)),
    ("E_paper_4t", "paper", {}, dict(epochs_per_cycle=12, cycles=2, batch_size=1024, lr=5e-4, targets_per_star=4)),
]
RUNS_LONG = [
    ("F_paper_4t_96", "paper", {}, dict(epochs_per_cycle=32, cycles=3, batch_size=1024, lr=5e-4, targets_per_star=4)),
]
RUNS = RUNS_LONG if len(sys.argv) > 2 and sys.argv[2] == "long" else RUNS_FIRST
rows = []
for name, p, over, tc in RUNS:
    t = time.time()
    _, hist = train(
        "results/tokens/stars.zarr",
        f"/tmp/{name}",
        preset(p, **over),
        TrainConfig(device="cuda", num_workers=6, checkpoint_every=1000, **tc),
        resume=False,
    )
    secs = time.time() - t
    r = heldout_check(f"/tmp/{name}", "results/tokens/stars.zarr", ".gpu/catalog_ids.parquet", ".gpu/truth_slim.parquet")
    json.dump({"config": tc, "model": over, "heldout": r, "history": hist}, open(f"{out}/{name}.json", "w"), indent=1)
    s = {t_: (round(v["robust_scatter_vs_labels"], 3), round(v["z_robust_std"], 2)) for t_, v in r["targets"].items()}
    rows.append((name, round(secs), round(hist[-1]["train_loss"], 3), round(hist[-1]["val_loss"], 3), s))
    print(rows[-1], flush=True)
print("name, seconds, final train loss, final val loss, {target: (scatter vs labels, z robust std)}")
for r in rows:
    print(r)
