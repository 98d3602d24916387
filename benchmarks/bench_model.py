"""Benchmark: training and inference throughput of the stellar Transformer.

    .venv/bin/python benchmarks/bench_model.py                      # paper preset, CPU, float32
    PYTHONPATH=src python3 benchmarks/bench_model.py --device cuda  # on a GPU: float32 (TF32) and bf16

Training: batches of 1024 stars with 5-64 present inputs of the 118 tokens and one target,
AdamW steps; reports stars per second and peak memory (CPU: the process's peak resident set;
CUDA: torch's peak allocated). Inference: 63 inputs per star, 3 requests, no gradients.
Synthetic standardised values: the speed does not depend on them. Only torch is needed.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch


def make_batch(b, context, vocab, n_inputs=None, device="cpu", gen=None):
    keys = torch.rand(b, vocab, generator=gen)
    ids = keys.argsort(dim=1)[:, :context]
    n = torch.randint(5, context + 1, (b,), generator=gen) if n_inputs is None else torch.full((b,), n_inputs)
    mask = torch.arange(context)[None, :] < n[:, None]
    vals = torch.randn(b, context, generator=gen)
    tid = torch.randint(0, vocab, (b,), generator=gen)
    return [t.to(device) for t in (ids, vals, mask, tid, torch.randn(b, generator=gen), torch.full((b,), 0.05))]


def peak_mb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(preset_name, device, dtype, batch, steps, infer_batch, infer_steps):
    from pipeline.model.model import StellarTransformer, preset, robust_gaussian_nll

    cfg = preset(preset_name)
    torch.manual_seed(0)
    model = StellarTransformer(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    amp = dtype if dtype != torch.float32 else None
    gen = torch.Generator().manual_seed(0)
    batches = [make_batch(batch, cfg.context, cfg.vocab_size, device=device, gen=gen) for _ in range(4)]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step(b):
        ids, vals, mask, tid, target, terr = b
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            mean, logvar = model(ids, vals, mask, tid[:, None])
        loss = robust_gaussian_nll(mean[:, 0], logvar[:, 0], target, terr).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for b in batches[:2]:  # warm-up
        step(b)
    sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        step(batches[i % len(batches)])
    sync(device)
    train_rate = steps * batch / (time.perf_counter() - t0)
    train_peak = peak_mb(device)

    model.eval()
    req = torch.tensor([[113, 114, 115]], device=device).expand(infer_batch, 3)  # teff, logg, m_h
    ib = [make_batch(infer_batch, cfg.context, cfg.vocab_size, n_inputs=63, device=device, gen=gen) for _ in range(2)]
    with torch.no_grad(), torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
        for b in ib:
            model.decode(model.encode(*b[:3]), b[2], req)
        sync(device)
        t0 = time.perf_counter()
        for i in range(infer_steps):
            ids, vals, mask = ib[i % 2][:3]
            model.decode(model.encode(ids, vals, mask), mask, req)
        sync(device)
    infer_rate = infer_steps * infer_batch / (time.perf_counter() - t0)
    return model.n_parameters(), train_rate, train_peak, infer_rate


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        dtypes = [torch.float32, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16]
        steps, infer_batch, infer_steps = args.steps or 50, 8192, 50
        name = torch.cuda.get_device_name()
    else:
        dtypes = [torch.float32]
        steps, infer_batch, infer_steps = args.steps or 3, 1024, 3
        name = f"CPU, {torch.get_num_threads()} threads"
    for dt in dtypes:
        n, tr, peak, inf = bench(args.preset, device, dt, args.batch, steps, infer_batch, infer_steps)
        rows.append((str(dt).replace("torch.", ""), tr, peak, inf))
    print(f"preset {args.preset} ({n:,} parameters) on {name}; training batch {args.batch}, inference 63 inputs + 3 requests")
    print(f"{'precision':>10} {'train stars/s':>14} {'peak MB':>9} {'inference stars/s':>18}")
    for dt, tr, peak, inf in rows:
        print(f"{dt:>10} {tr:14.0f} {peak:9.0f} {inf:18.0f}")


if __name__ == "__main__":
    main()
