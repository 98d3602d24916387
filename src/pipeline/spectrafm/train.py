"""The training stages of SpectraFM, chunked prediction and the attention read-out.

A stage trains on one kind of spectra (synthetic or observed) in one wavelength range, starting
from random weights or from an earlier stage, optionally with parts frozen:

    pretrain       synthetic spectra, the whole range, all labels
    finetune_real  observed spectra, the first half of the range, all labels
    finetune_fe    observed spectra of 100 iron-rich stars in one 512-pixel window of the second
                   half, [Fe/H] only, decoder, head and last encoder block frozen

Each step shows every star one window of ``context`` consecutive pixels drawn at random inside
the stage's range (NaN pixels masked) and asks for the stage's labels; the loss is eq. 11 of the
tabular model in standardised label units (the pre-training's medians and MAD-std, inherited by
the fine-tunes). Predictions for longer spectra average those of consecutive chunks of
``context`` pixels (the last chunk ends at the last pixel), as in the paper.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .. import distributed, engine
from ..engine import Schedule
from ..model.model import robust_gaussian_nll
from ..settings import from_dict, plain
from .model import SpectraFM, SpectraFMConfig, freeze, init_weights_like, pixel_tokens
from .predict import load_checkpoint, save_checkpoint
from .store import SpectraStore

log = logging.getLogger(__name__)


@dataclass
class StageConfig:
    spectra: str = "synthetic"  # synthetic | observed
    range_aa: tuple | None = None  # [lo, hi) Angstrom; None: every pixel
    window_centre_aa: float | None = None  # or one window of `window_pixels` pixels around this wavelength
    window_pixels: int = 512
    targets: tuple = ("teff", "logg", "fe_h", "o_fe", "mg_fe")
    n_stars: int = 0  # 0: every training star; else a seeded random subset of this many
    fe_h_min: float | None = None  # keep training stars with [Fe/H] above this (the iron-rich 100)
    # survey (every stage, the paper's rule: each of its stages saw APOGEE's stars as they come): iron-poor training
    # stars thinned to the survey's share (``survey_mix``; a real store is the survey); store: every training star
    mix: str = "survey"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    lr_min: float = 1e-6
    restart_epochs: int = 0  # cosine annealing with warm restarts every this many epochs (0: one cycle)
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    freeze: tuple = ()  # e.g. (decoder, head, encoder.-1)
    keep: str = "last"  # last | best: the epoch of lowest validation loss (the engine's Schedule.keep)
    validation: str = "stage"  # stage: the val split's stars that pass the stage's cuts; all: every val star (no fe_h_min)
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # CPU threads of the job, shared by the ranks
    processes: int = 1  # data-parallel ranks (DDP through torchrun: pipeline/distributed.py)

    def __post_init__(self):
        for key, allowed in (("keep", ("last", "best")), ("validation", ("stage", "all")), ("mix", ("store", "survey"))):
            if getattr(self, key) not in allowed:
                raise ValueError(f"spectrafm stage: {key} is {getattr(self, key)!r}, not one of {', '.join(allowed)}")

    def schedule(self, **overrides) -> Schedule:
        """The engine's schedule of this stage (``overrides`` for the FCNN's)."""
        return Schedule(
            **{
                "epochs": self.epochs,
                "lr": self.lr,
                "lr_min": self.lr_min,
                "cycle_epochs": self.restart_epochs,
                "weight_decay": self.weight_decay,
                "grad_clip": self.grad_clip,
                "keep": self.keep,
                **overrides,
            }
        )

    @classmethod
    def from_dict(cls, d):
        return from_dict(cls, d, "spectrafm stage", ignore=("init",))


# -- data ------------------------------------------------------------------------------------------
def stage_columns(store: SpectraStore, stage: StageConfig) -> np.ndarray:
    """The stage's pixel columns: its window, or every pixel in its range (SpectraFM reads random
    chunks of its context inside them)."""
    if stage.window_centre_aa is not None:
        return store.pixels_in(centre_aa=stage.window_centre_aa, n_pixels=stage.window_pixels)
    lo, hi = stage.range_aa or (None, None)
    cols = store.pixels_in(lo, hi)
    if cols.size == 0:
        raise ValueError(f"{store.path}: no pixels in range_aa {stage.range_aa}")
    return cols


def survey_mix(rows, fe_h_dex, poor_fraction, seed: int) -> np.ndarray:
    """``rows`` with their iron-poor ones ([Fe/H] < -1 dex) thinned at random (seeded) to
    ``poor_fraction`` of the result, every other row kept; unchanged where they are that rare
    already or ``poor_fraction`` is None (a store that is the survey itself)."""
    rows = np.asarray(rows)
    poor = np.asarray(fe_h_dex, float)[rows] < -1.0
    if poor_fraction is None or not poor.any() or poor.mean() <= poor_fraction:
        return rows
    n_poor = int(round(poor_fraction / (1.0 - poor_fraction) * (~poor).sum()))
    kept = np.random.default_rng([seed, 1]).choice(rows[poor], n_poor, replace=False)
    return np.sort(np.concatenate([rows[~poor], kept]))


def stage_rows(store: SpectraStore, stage: StageConfig, split: str) -> np.ndarray:
    """Rows of a split that the stage trains on: with any requested label, above fe_h_min, in the
    survey's mix of metallicities if the stage asks (``mix``; training rows only), n_stars of them."""
    s = store.stars
    ok = (s["split"] == split).to_numpy() & np.isfinite(s[list(stage.targets)].to_numpy(float)).any(axis=1)
    if stage.fe_h_min is not None:
        ok &= s["fe_h"].to_numpy(float) > stage.fe_h_min
    rows = np.flatnonzero(ok)
    if stage.mix == "survey" and split == "train":
        rows = survey_mix(rows, s["fe_h"].to_numpy(float), store.attrs.get("survey_fe_h_poor_fraction"), stage.seed)
    if stage.n_stars and split == "train":
        if rows.size < stage.n_stars:
            raise ValueError(f"{store.path}: only {rows.size} {split} stars pass the stage's cuts; n_stars asks for {stage.n_stars}")
        rows = np.sort(np.random.default_rng(stage.seed).choice(rows, stage.n_stars, replace=False))
    return rows


def label_standardisation(store: SpectraStore, rows, labels):
    """Median and MAD-std of each label over ``rows`` (the pre-training set), as the token store's."""
    from ..tokens.store import robust_standardisation

    return robust_standardisation(store.stars[list(labels)].to_numpy(float), rows)


class Windows:
    """A stage's data in memory: flux (stars x pixels), wavelengths, standardised labels and errors."""

    def __init__(self, store: SpectraStore, stage: StageConfig, rows, columns, median, scale, labels, context: int):
        self.flux = store.read(stage.spectra, rows, columns)
        self.wavelength = store.wavelength_aa[columns].astype(np.float32)
        s = store.stars.iloc[rows]
        self.target_idx = [labels.index(t) for t in stage.targets]
        med, sc = median[self.target_idx], scale[self.target_idx]
        self.y = ((s[list(stage.targets)].to_numpy(float) - med) / sc).astype(np.float32)
        err = s[[f"{t}_err" for t in stage.targets]].to_numpy(float) / sc
        self.yerr = np.where(np.isfinite(err), err, 0.0).astype(np.float32)
        self.request = np.array([1 + i for i in self.target_idx])  # token ids of the labels (0 is flux)
        self.context = min(context, self.flux.shape[1])

    def __len__(self):
        return self.flux.shape[0]

    def batch(self, idx, rng):
        p = self.flux.shape[1]
        start = rng.integers(0, p - self.context + 1, size=len(idx))
        cols = start[:, None] + np.arange(self.context)
        flux = self.flux[np.asarray(idx)[:, None], cols]
        tid = np.broadcast_to(self.request, (len(idx), self.request.size))
        return (
            torch.from_numpy(flux),
            torch.from_numpy(self.wavelength[cols]),
            torch.from_numpy(np.ascontiguousarray(tid)),
            torch.from_numpy(self.y[idx]),
            torch.from_numpy(self.yerr[idx]),
        )


def _loss(model, batch, device, amp_dtype):
    flux, lam, tid, y, yerr = (t.to(device) for t in batch)
    ids, values, mask = pixel_tokens(flux)
    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        mean, logvar, _ = model(ids, values, mask, tid, lam)
    ok = torch.isfinite(y) & mask.any(1, keepdim=True)
    nll = robust_gaussian_nll(mean, logvar, torch.nan_to_num(y), yerr)
    n = ok.sum()
    return (nll * ok).sum() / n.clamp(min=1), int(n)


# -- a stage ---------------------------------------------------------------------------------------
class WindowJob:
    """The engine's job for a SpectraFM stage: batches of stars, each read through a random window of
    the model's context, drawn from (seed, epoch); the same validation windows every epoch
    (``model``: the network as the engine runs it, DDP-wrapped among data-parallel ranks)."""

    def __init__(self, train: Windows, val: Windows, stage: StageConfig, device, amp_dtype, ranks=None):
        self.train, self.val, self.stage, self.device, self.amp_dtype = train, val, stage, device, amp_dtype
        self.ranks = ranks or distributed.Ranks()

    def n_batches(self):
        return max(1, -(-len(self.train) // self.stage.batch_size))

    def batches(self, epoch):
        rng = np.random.default_rng([self.stage.seed, epoch])
        order = rng.permutation(len(self.train))
        bs = self.stage.batch_size
        for i in range(self.n_batches()):
            yield self.train.batch(order[i * bs : (i + 1) * bs], rng)

    def stars(self, batch):
        return len(batch[0])

    def loss(self, model, batch):
        return _loss(model, batch, self.device, self.amp_dtype)

    def validation_loss(self, model):
        return validation_loss(model, self.val, self.stage, self.device, self.amp_dtype, self.ranks)


def stage_signature(stage: StageConfig, model_cfg, store: SpectraStore, rows, init_from) -> str:
    """What a checkpoint of a stage must match to be resumed: settings, architecture, data, start, code."""
    import hashlib

    from ..hashing import config_hash
    from ..workflow.codedeps import code_hash

    start = hashlib.sha256((Path(init_from) / "model.pt").read_bytes()).hexdigest()[:16] if init_from else None
    return config_hash(
        {
            "stage": {k: v for k, v in asdict(stage).items() if k not in ("threads", "device", "processes")},
            "model": model_cfg.to_dict(),
            "store": [str(store.path.resolve()), len(store.stars), store.wavelength_aa.size],
            "rows": [int(r) for r in rows],
            "init": start,
            "code": code_hash(__file__),
        }
    )


def _stage_model(store: SpectraStore, stage: StageConfig, model_cfg, init_from):
    """(model, its config, label median, label scale): the earlier stage's when ``init_from`` names
    one (architecture and standardisation kept), else a fresh model of ``model_cfg`` standardised on
    this stage's training stars."""
    if init_from:
        ckpt = load_checkpoint(init_from)
        model_cfg, median, scale = ckpt["config"], ckpt["median"], ckpt["scale"]
        model = SpectraFM(model_cfg)
        init_weights_like(model, ckpt["state"])
    else:
        model = SpectraFM(model_cfg)
        median, scale = label_standardisation(store, stage_rows(store, stage, "train"), list(model_cfg.labels))
    unknown = [t for t in stage.targets if t not in model_cfg.labels]
    if unknown:
        raise ValueError(f"stage targets {unknown} are not among the model's labels {list(model_cfg.labels)}")
    return model, model_cfg, median, scale


def train_stage(
    store_path,
    out_dir,
    stage: StageConfig,
    model_cfg: SpectraFMConfig | None = None,
    init_from=None,
    on_epoch=None,
    resume: bool = True,
    stop_after_epoch=None,
):
    """Train one stage through the shared engine (``engine.run``: resumable); writes ``model.pt``
    (weights, architecture, label standardisation, stage) and ``history.csv`` in out_dir.
    ``init_from``: the folder of the stage to start from (its architecture and standardisation are
    kept); otherwise ``model_cfg`` builds a fresh model. ``stage.processes`` > 1: as that many DDP ranks."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = {
        "store": str(store_path),
        "out": str(out),
        "stage": plain(stage),
        "model": model_cfg.to_dict() if model_cfg is not None else None,
        "init_from": str(init_from) if init_from else None,
        "resume": resume,
        "stop_after_epoch": stop_after_epoch,
    }
    model, history = engine.run(
        partial(_stage_training, store_path, out, stage, model_cfg, init_from),
        engine.Setup.of(stage),
        out,
        ranks_entry=(f"{__name__}:stage_from_spec", spec),
        resume=resume,
        stop_after_epoch=stop_after_epoch,
        on_epoch=on_epoch,
    )
    if model is None:  # trained by DDP ranks: the weights they wrote
        model = _stage_model(SpectraStore(store_path), stage, model_cfg, init_from)[0]
        model.load_state_dict(engine.trained_weights(out, stage.keep))
    return model, history


def _stage_training(store_path, out: Path, stage: StageConfig, model_cfg, init_from, place: engine.Place) -> engine.Training:
    """The engine's training of one stage on ``place``: the stage's windows of the store, the
    network (the earlier stage's or fresh, parts frozen) and the checkpoint to write at the end."""
    store = SpectraStore(store_path)
    model, model_cfg, median, scale = _stage_model(store, stage, model_cfg, init_from)
    frozen = freeze(model, stage.freeze)
    labels = list(model_cfg.labels)
    cols = stage_columns(store, stage)
    rows = stage_rows(store, stage, "train")
    train = Windows(store, stage, rows, cols, median, scale, labels, model_cfg.context)
    val = validation_windows(store, stage, cols, median, scale, labels, model_cfg.context)
    job = WindowJob(train, val, stage, place.device, place.amp_dtype, place.ranks)
    params = [p for p in model.parameters() if p.requires_grad]
    log.info(
        "stage on %s spectra %.0f-%.0f A (%d pixels, context %d): %d train / %d val stars, %d trainable of %d parameters "
        "(frozen: %s), %s %s, %d epochs of %d batches",
        stage.spectra,
        train.wavelength[0],
        train.wavelength[-1],
        cols.size,
        train.context,
        len(train),
        len(val),
        sum(p.numel() for p in params),
        sum(p.numel() for p in model.parameters()),
        ", ".join(frozen) or "none",
        place.device,
        place.amp_dtype or "float32",
        stage.epochs,
        job.n_batches(),
    )
    stage_info = {**asdict(stage), "n_train": len(train), "pixels_aa": [float(train.wavelength[0]), float(train.wavelength[-1])]}
    return engine.Training(
        model,
        job,
        stage.schedule(),
        stage_signature(stage, model_cfg, store, rows, init_from),
        param_groups=[params],
        finish=lambda trained: save_checkpoint(out / "model.pt", trained, model_cfg, median, scale, stage_info),
    )


def stage_from_spec(spec: dict):
    """One DDP rank of ``train_stage`` (``python -m pipeline.distributed``, launched by engine.run)."""
    cfg = SpectraFMConfig.from_dict(spec["model"]) if spec["model"] else None
    stage = StageConfig.from_dict(spec["stage"])
    train_stage(spec["store"], spec["out"], stage, cfg, spec["init_from"], resume=spec["resume"], stop_after_epoch=spec["stop_after_epoch"])


@torch.no_grad()
def validation_windows(store, stage: StageConfig, cols, median, scale, labels, context) -> Windows:
    """The stage's validation stars: every val-split star that passes its cuts (``validation: stage``)
    or, with ``validation: all``, every one whatever its [Fe/H] (the authors' [Fe/H] fine-tune)"""
    val_stage = StageConfig(**{**asdict(stage), "n_stars": 0} | ({"fe_h_min": None} if stage.validation == "all" else {}))
    return Windows(store, val_stage, stage_rows(store, val_stage, "val"), cols, median, scale, labels, context)


def validation_loss(model, data: Windows, stage, device, amp_dtype, ranks=None):
    """The mean loss over the fixed validation windows (each rank its share of every batch, summed)."""
    if len(data) == 0:
        return float("nan")
    r = ranks or distributed.Ranks()
    model.eval()
    rng = np.random.default_rng(12345)  # the same windows every epoch
    total, count = torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)
    for i in range(0, len(data), stage.batch_size):
        batch = r.shard(data.batch(np.arange(i, min(len(data), i + stage.batch_size)), rng))
        loss, n = _loss(model, batch, device, amp_dtype)
        total += float(loss) * n
        count += n
    model.train()
    if r.world > 1:  # gloo and NCCL: on the rank's device
        both = r.sum(torch.stack([total, count]).to(device))
        total, count = both[0].cpu(), both[1].cpu()
    return float(total) / max(float(count), 1.0)
