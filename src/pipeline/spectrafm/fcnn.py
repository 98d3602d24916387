"""The FCNN beside SpectraFM's [Fe/H] fine-tune (the paper's Fig. 4 comparison): a fully connected
network trained from scratch on the same stars and window as the stage (spectrafm/train.py's
``finetune_fe``), through the one engine, in one process and float32."""

from __future__ import annotations

import logging
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .. import engine
from ..model.model import robust_gaussian_nll
from .model import FCNN, FCNNConfig
from .predict import save_checkpoint
from .store import SpectraStore
from .train import StageConfig, Windows, label_standardisation, stage_columns, stage_rows, stage_signature, validation_windows

log = logging.getLogger(__name__)


class FcnnJob:
    """The engine's job for the FCNN: the window's pixels of every training star, in memory on the device."""

    def __init__(self, data: Windows, stage: StageConfig, device, val: Windows | None = None):
        self.x, self.y, self.yerr = (torch.from_numpy(a).to(device) for a in (data.flux, data.y, data.yerr))
        self.val = None if val is None else tuple(torch.from_numpy(a).to(device) for a in (val.flux, val.y, val.yerr))
        self.stage, self.device, self.n = stage, device, len(data)

    def n_batches(self):
        return max(1, -(-self.n // self.stage.batch_size))

    def batches(self, epoch):
        order = torch.from_numpy(np.random.default_rng([self.stage.seed, epoch]).permutation(self.n)).to(self.device)
        return (order[i : i + self.stage.batch_size] for i in range(0, self.n, self.stage.batch_size))

    def stars(self, b):
        return len(b)

    @staticmethod
    def _nll(model, x, y, yerr):
        mean, logvar = model(x)
        ok = torch.isfinite(y)
        return (robust_gaussian_nll(mean, logvar, torch.nan_to_num(y), yerr) * ok).sum() / ok.sum().clamp(min=1)

    def loss(self, model, b):
        return self._nll(model, self.x[b], self.y[b], self.yerr[b]), len(b)

    def validation_loss(self, model):
        return float("nan") if self.val is None else float(self._nll(model, *self.val))  # the stage's validation stars


def train_fcnn(store_path, out_dir, stage: StageConfig, fcnn_cfg: FCNNConfig, on_epoch=None, resume: bool = True, stop_after_epoch=None):
    """The fully connected network trained from scratch on the same stars and window as ``stage``
    (in one process, float32, through ``engine.run``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    setup = engine.Setup.of(stage, precision="float32", processes=1)
    prepare = partial(_fcnn_training, store_path, out, stage, fcnn_cfg)
    return engine.run(prepare, setup, out, resume=resume, stop_after_epoch=stop_after_epoch, on_epoch=on_epoch)


def _fcnn_training(store_path, out: Path, stage: StageConfig, fcnn_cfg: FCNNConfig, place: engine.Place) -> engine.Training:
    store = SpectraStore(store_path)
    labels = list(stage.targets)
    cols = stage_columns(store, stage)
    fcnn_cfg = FCNNConfig(**{**asdict(fcnn_cfg), "n_pixels": int(cols.size), "labels": tuple(labels)})
    rows = stage_rows(store, stage, "train")
    median, scale = label_standardisation(store, rows, labels)
    data = Windows(store, stage, rows, cols, median, scale, labels, cols.size)
    val = validation_windows(store, stage, cols, median, scale, labels, cols.size) if stage.keep == "best" else None
    model = FCNN(fcnn_cfg)
    log.info(
        "FCNN: %d parameters, %d stars x %d pixels (%.0f-%.0f A), %d epochs",
        model.n_parameters(),
        len(data),
        cols.size,
        data.wavelength[0],
        data.wavelength[-1],
        stage.epochs,
    )
    stage_info = {**asdict(stage), "n_train": len(data), "pixels_aa": [float(data.wavelength[0]), float(data.wavelength[-1])]}
    return engine.Training(
        model,
        FcnnJob(data, stage, place.device, val),  # validated (and kept at its best epoch) as the stage is
        stage.schedule(cycle_epochs=0, checkpoint_every=max(1, stage.epochs // 10)),  # one cosine cycle
        stage_signature(stage, fcnn_cfg, store, rows, None),
        finish=lambda trained: save_checkpoint(out / "model.pt", trained, fcnn_cfg, median, scale, stage_info),
        name="FCNN epoch",
        log_every=max(1, stage.epochs // 10),
    )
