"""The mock sky's settings completed from their one home (the sky's dataclasses and report functions),
as ``configuration.with_library_defaults`` completes the library's: config.yaml's ``sky``,
``sky.xp_all``, ``sky.apogee_spectra``, ``realism`` and ``difficulty`` blocks then hold only what the default run changes. Called by the
Snakefile with ``mock: true`` only (real-data code never imports the mock sky)."""

from __future__ import annotations

import inspect

from ..configuration import completed
from .apogee import SyntheticGap
from .apogee_store import build_mock_store
from .build import SkyConfig
from .report import difficulty_report, realism_report
from .xp_all import XpAllConfig


def keyword_defaults(fn, leave_out=()) -> dict:
    """A function's keyword defaults (a report's settings), but ``leave_out``."""
    params = inspect.signature(fn).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty and k not in leave_out}


APOGEE_SPECTRA_KEYS = ("n_stars", "metal_poor_fraction", "bad_pixel_fraction", "seed")  # build_mock_store's, from the config


def apogee_spectra_defaults() -> dict:
    """``sky.apogee_spectra``'s settings: build_mock_store's keyword defaults and the SyntheticGap's."""
    params = inspect.signature(build_mock_store).parameters
    return {**{k: params[k].default for k in APOGEE_SPECTRA_KEYS}, "gap": completed({}, SyntheticGap)}


def with_sky_defaults(config: dict) -> dict:
    """Complete ``sky`` (SkyConfig, its dust model included), ``sky.xp_all`` (XpAllConfig),
    ``sky.apogee_spectra`` (build_mock_store's and SyntheticGap's), ``realism`` and ``difficulty``
    (the reports' keyword defaults) in place; given values win."""
    sky = config.setdefault("sky", {})
    given_xp_all, given_spectra = sky.get("xp_all") or {}, dict(sky.get("apogee_spectra") or {})
    config["sky"] = completed({k: v for k, v in sky.items() if k not in ("xp_all", "apogee_spectra")}, SkyConfig)
    config["sky"]["xp_all"] = completed(given_xp_all, XpAllConfig)
    spectra = {**apogee_spectra_defaults(), **given_spectra}
    spectra["gap"] = completed(given_spectra.get("gap") or {}, SyntheticGap)
    config["sky"]["apogee_spectra"] = spectra
    config["realism"] = {**keyword_defaults(realism_report), **(config.get("realism") or {})}
    given = dict(config.get("difficulty") or {})
    xgboost = {k: v for k, v in keyword_defaults(difficulty_report).items() if k in ("n_estimators", "max_depth", "learning_rate")}
    config["difficulty"] = {
        **keyword_defaults(difficulty_report, ("n_jobs", *xgboost)),
        **given,
        "xgboost": {**xgboost, **(given.get("xgboost") or {})},
    }
    return config
