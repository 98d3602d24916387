"""The evaluation's settings (``evaluate:`` in config.yaml): each default here, once.

A task's function receives its settings as one frozen dataclass: the shared settings
(``batch_size``, ``seed``, ``dpi``) and the fields of its own block, built by ``task_settings``
with ``settings.from_dict`` (an unknown key is an error naming ``evaluate.<task>.<key>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..settings import from_dict


@dataclass(frozen=True)
class Shared:
    batch_size: int = 4096  # stars per inference batch
    seed: int = 0  # random draws of a task (task a's 64 random tokens)
    dpi: int = 110  # of every figure


@dataclass(frozen=True)
class SpectraToParameters(Shared):  # a (Fig. 4 / B1)
    random_tokens: int = 64  # the "64 random tokens" panel
    scatter_ratio_bar: float = 1.3  # the model's scatter within this factor of the XGBoost expert's


@dataclass(frozen=True)
class ParametersToSpectra(Shared):  # c (Figs. 6, 7, B3)
    dwarf_teff_k: tuple = (4000.0, 5000.0, 6000.0, 7000.0)
    giant_logg: tuple = (1.5, 2.0, 2.5, 3.0, 3.5)
    metallicities: tuple = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.3)


@dataclass(frozen=True)
class SpectraToSpectra(Shared):  # d (Fig. 9)
    n_stars: int = 5000


@dataclass(frozen=True)
class Grid:
    logg_min: float = 0.0
    logg_max: float = 5.0
    logg_step: float = 0.01
    m_h_min: float = -2.0
    m_h_max: float = 0.5
    m_h_step: float = 0.02


@dataclass(frozen=True)
class ParametersToParameters(Shared):  # e (Fig. 10): the (logg, [M/H]) grid
    grid: Grid = field(default_factory=Grid)


@dataclass(frozen=True)
class ExtinctionCurve(Shared):  # f (Fig. 11, eq. 15)
    logg_min: float = 1.0
    logg_max: float = 2.5
    logg_step: float = 0.02  # 76 giants: the bootstrap over them gives the curve's interval
    ebv_c19: tuple = (0.0, 0.4, 0.8, 1.2)
    reference_ebv_c19: float | str = "auto"  # a number, or the reference_percentile of the training giants' E(B-V)
    reference_percentile: float = 1.0
    wavelength_nm: tuple = (400.0, 1000.0)
    rms_bar: float = 0.35


@dataclass(frozen=True)
class Attention(Shared):  # i (Fig. 12)
    ebv_high: float = 1.0
    n_stars: int = 2000


@dataclass(frozen=True)
class StarSearch(Shared):  # the search's scoring; None: the trained search's own (search.top_n, search.queries)
    top_n: int | None = None
    queries: tuple | None = None


@dataclass(frozen=True)
class SpectraFMAttention:
    n_stars: int = 200
    top_k: int = 5
    tolerance_aa: float = 1.0
    labels: tuple = ("teff", "logg", "fe_h", "o_fe", "mg_fe")


@dataclass(frozen=True)
class SpectraFM(Shared):  # Table 1, the [Fe/H] transfer test (Fig. 4), attention against lines (Fig. 5)
    batch_size: int = 256  # spectra per batch (each ~8,500 pixels)
    logg_range: tuple = (1.0, 3.5)  # Table 1's test stars (the paper's AstroNN-like selection)
    fe_h_poor: float = -1.0  # iron-poor: below this
    cannon_order: int = 3  # the expert of Table 1 (baselines/cannon.py): polynomial order in the labels; 0 leaves it out
    attention: SpectraFMAttention = field(default_factory=SpectraFMAttention)


# each task's settings; a task without a block of its own takes the shared ones
TASK_SETTINGS = {
    "spectra_to_parameters": SpectraToParameters,
    "parameters_to_spectra": ParametersToSpectra,
    "spectra_to_spectra": SpectraToSpectra,
    "parameters_to_parameters": ParametersToParameters,
    "extinction_curve": ExtinctionCurve,
    "attention": Attention,
    "search": StarSearch,
    "spectrafm": SpectraFM,
}


def _shared(evaluate: dict) -> dict:
    """The shared keys (``Shared``'s fields) given in the ``evaluate:`` block."""
    return {f.name: evaluate[f.name] for f in fields(Shared) if f.name in evaluate}


def task_settings(task: str, evaluate: dict | None) -> Shared:
    """The settings of ``task`` from the ``evaluate:`` block (shared keys, then the task's block)."""
    evaluate = dict(evaluate or {})
    shared = _shared(evaluate)
    if task == "spectrafm":
        shared.pop("batch_size", None)  # pixel spectra: a batch size of their own
    own = evaluate.get(task) or {}
    if not isinstance(own, dict):
        raise ValueError(f"evaluate.{task}: expected a block of settings, got {own!r}")
    return from_dict(TASK_SETTINGS.get(task, Shared), {**shared, **own}, f"evaluate.{task}")


def figure_dpi(evaluate: dict | None) -> int:
    """The figures' resolution (``evaluate.dpi``)."""
    return from_dict(Shared, _shared(dict(evaluate or {})), "evaluate").dpi


def check(evaluate: dict | None) -> None:
    """Build every task's settings once, so that a wrong key fails before any job runs."""
    for task in TASK_SETTINGS:
        task_settings(task, evaluate)
