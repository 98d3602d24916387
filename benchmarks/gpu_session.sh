#!/usr/bin/env bash
# One device call: benchmark the model, then train on CUDA through the same code path as the
# train rule and check it on held-out stars. Carried: .whl (zarr and its needs), the token store,
# and .gpu/ (slim catalog ids and truth). Results land in $OUT.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
python3 benchmarks/bench_model.py --device cuda 2>&1 | tee $OUT/bench_model_cuda.txt
# The whole loop and inference against the implementation before the device-resident sampler:
# before the call, `git worktree add .bench_ref 648bdf2` here and carry .bench_ref (and the store).
REF=${REF:-.bench_ref/src}
timeout 240 python3 benchmarks/bench_train_loop.py --device cuda --threads 8 --presets small,paper --batch 1024 \
    --steps 200 --warmup 20 --reference $REF --variants compile,bucket,groups4 --cache /tmp/bench 2>&1 | tee $OUT/bench_train_loop_cuda.txt
timeout 120 python3 benchmarks/bench_inference.py --device cuda --threads 8 --stars 1000000 --batch 32768 \
    --reference $REF 2>&1 | tee $OUT/bench_inference_cuda.txt
# DDP's overhead with one rank on the one GPU against plain training (target under 5%)
timeout 240 python3 benchmarks/bench_data_parallel.py --device cuda --preset paper --batch 1024 --epochs 3 --threads 8 \
    --resident memory --store results/tokens/stars.zarr 2>&1 | tee $OUT/bench_data_parallel_cuda.txt
python3 - <<'PY' 2>&1 | tee $OUT/train_cuda.txt
import json, logging, os, time
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
from pipeline.model.model import preset
from pipeline.model.train import TrainConfig, train
from pipeline.model.check import heldout_check
out = os.environ["OUT"]
for name, p, epochs, bs, lr in [("small_gpu", "small", 12, 512, 2e-3), ("paper_gpu", "paper", 12, 1024, 5e-4)]:
    t = time.time()
    train("results/tokens/stars.zarr", f"/tmp/{name}", preset(p), TrainConfig(epochs_per_cycle=epochs, cycles=2, batch_size=bs, lr=lr,
          device="cuda", checkpoint_every=100, num_workers=4), resume=False)
    print(name, "train seconds", round(time.time() - t, 1))
    r = heldout_check(f"/tmp/{name}", "results/tokens/stars.zarr", ".gpu/catalog_ids.parquet", ".gpu/truth_slim.parquet")
    json.dump(r, open(f"{out}/{name}_heldout.json", "w"), indent=1)
    print(name, json.dumps({t: {k: round(v, 4) for k, v in row.items() if isinstance(v, float)} for t, row in r["targets"].items()}))
    os.system(f"cp /tmp/{name}/history.csv {out}/{name}_history.csv")
PY
