#!/usr/bin/env bash
# The CUDA checks in one go, on any machine with a GPU and this project installed (`make install`):
# the model's throughput, the whole training loop, inference, DDP's overhead with one rank, and
# training through the train rule's own code path with its held-out check. Every figure lands in
# $OUT (default: gpu-session/), one file per benchmark, each ending in its line of ratios.
#
#   benchmarks/gpu_session.sh [results folder]      # default: results (its tokens/stars.zarr is used)
#
# Environment: PYTHON (default .venv/bin/python, else python3), OUT, DEVICE (default cuda),
# EPOCHS (training epochs per cycle, default 12), REF (a git revision or src/ folder to compare the
# loop and inference with; optional), SKY (the mock sky with truth.parquet, default resources/mock_sky).
set -uo pipefail
RESULTS=${1:-results}
OUT=${OUT:-gpu-session}
DEVICE=${DEVICE:-cuda}
EPOCHS=${EPOCHS:-12}
SKY=${SKY:-resources/mock_sky}
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
STORE=$RESULTS/tokens/stars.zarr
if [ ! -d "$STORE" ]; then
    echo "error: no token store at $STORE; make one first: snakemake --cores all $STORE" >&2
    exit 2
fi
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 OUT RESULTS DEVICE EPOCHS SKY
REF_ARGS=()
[ -n "${REF:-}" ] && REF_ARGS=(--reference "$REF")
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
"$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')" | tee -a "$OUT/gpu.txt"

"$PY" benchmarks/bench_model.py --device "$DEVICE" 2>&1 | tee "$OUT/bench_model.txt"
timeout 300 "$PY" benchmarks/bench_train_loop.py --device "$DEVICE" --threads 8 --presets small,paper --batch 1024 \
    --steps 200 --warmup 20 --store "$STORE" --variants bf16,compile,groups4 "${REF_ARGS[@]}" 2>&1 | tee "$OUT/bench_train_loop.txt"
timeout 180 "$PY" benchmarks/bench_inference.py --device "$DEVICE" --threads 8 --stars 1000000 --batch 32768 \
    "${REF_ARGS[@]}" 2>&1 | tee "$OUT/bench_inference.txt"
# DDP's overhead with one rank against plain training (target: under 5%)
timeout 300 "$PY" benchmarks/bench_data_parallel.py --device "$DEVICE" --preset paper --batch 1024 --epochs 3 --threads 8 \
    --resident memory --store "$STORE" 2>&1 | tee "$OUT/bench_data_parallel.txt"

# Training as the train rule does it (train(), the same engine), then the held-out check
"$PY" - <<'PY' 2>&1 | tee "$OUT/train.txt"
import json, logging, os, shutil, time
from pathlib import Path

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
from pipeline.model.check import heldout_check
from pipeline.model.model import preset
from pipeline.model.train import TrainConfig, train

out, results, device, epochs = Path(os.environ["OUT"]), Path(os.environ["RESULTS"]), os.environ["DEVICE"], int(os.environ["EPOCHS"])
store = results / "tokens/stars.zarr"
catalog = results / "catalog/catalog.parquet"
truth = Path(os.environ["SKY"]) / "truth.parquet"
for name, p, bs, lr in [("small", "small", 512, 2e-3), ("paper", "paper", 1024, 5e-4)]:
    folder = out / f"model_{name}"
    shutil.rmtree(folder, ignore_errors=True)
    t = time.time()
    cfg = TrainConfig(epochs_per_cycle=epochs, cycles=1, batch_size=bs, lr=lr, device=device, checkpoint_every=100)
    train(str(store), str(folder), preset(p), cfg, resume=False)
    print(name, "train seconds", round(time.time() - t, 1))
    r = heldout_check(str(folder), str(store), str(catalog) if catalog.exists() else None, str(truth) if truth.exists() else None)
    (out / f"{name}_heldout.json").write_text(json.dumps(r, indent=1))
    print(name, json.dumps({k: {m: round(v, 4) for m, v in row.items() if isinstance(v, float)} for k, row in r["targets"].items()}))
PY
