"""Figures of the evaluation tasks, drawn only from each task's cached tables and metrics.

Restyling a figure reruns only its figure rule: nothing here touches the model. ``FIGURES``
maps task -> figure name -> function(tables, metrics) returning a matplotlib Figure; the
captions shown in the HTML report live in workflow/report/figures.yaml under the same names.
``SUMMARY_FIGURES`` are the catalog_all summary's (function(tables, summary), drawn into
results/catalog_all/ by the rule catalog_all_figure, on real data as on the mock).
"""

from __future__ import annotations

from ...io.tables import read_tables
from ..data import read_metrics
from .catalog_all import kiel_summary_fig, residuals_by_g_fig, sigma_fig, sky_ebv_fig, sky_m_h_fig, zscores_fig
from .common import _plt
from .mass_age import _mass_age_panels, mass_luminosity_fig
from .parameters import _task_a, attention_fig, colours_fig, kiel_fig, perception_fig, rp0_fig
from .search import queries_fig, recovery_fig
from .spectra import coefficients_fig, curve_fig, examples_fig, metallicity_fig, residuals_fig, sequences_fig
from .spectrafm import spectrafm_attention_fig, spectrafm_fe_fig, spectrafm_table1_fig

FIGURES = {
    "spectra_to_parameters": {"teff": _task_a("teff"), "logg": _task_a("logg"), "m_h": _task_a("m_h")},
    "perception": {"fig5": perception_fig},
    "parameters_to_spectra": {"sequences": sequences_fig, "metallicity": metallicity_fig, "coefficients": coefficients_fig},
    "spectra_to_spectra": {"examples": examples_fig, "residuals": residuals_fig},
    "parameters_to_parameters": {"kiel": kiel_fig},
    "extinction_curve": {"curve": curve_fig},
    "never_requested": {"colours": colours_fig},
    "rp0_experts": {"rp0": rp0_fig},
    "attention": {"attention": attention_fig},
    "mass_age": {
        "mass": _mass_age_panels("mass", r"$M_\odot$"),
        "age": _mass_age_panels("age", "Gyr"),
        "mass_luminosity": mass_luminosity_fig,
    },
    "search": {"recovery": recovery_fig, "queries": queries_fig},
    "spectrafm": {"fe_h": spectrafm_fe_fig, "table1": spectrafm_table1_fig, "attention": spectrafm_attention_fig},
    "catalog_all": {"residuals": residuals_by_g_fig, "zscores": zscores_fig},
}
SUMMARY_FIGURES = {"sky_m_h": sky_m_h_fig, "sky_ebv": sky_ebv_fig, "kiel": kiel_summary_fig, "sigma": sigma_fig}


def draw(task, figure, predictions_path, metrics_path, out_png, dpi: int = 110):
    """Draw one figure of a task (or of ``catalog_all_summary``: ``SUMMARY_FIGURES``, from the
    summary's tables and summary.json) from its cache and write it as PNG."""
    known = {**FIGURES, "catalog_all_summary": SUMMARY_FIGURES}
    if task not in known or figure not in known[task]:
        raise ValueError(f"no figure {task}/{figure}; known: { {t: sorted(f) for t, f in known.items()} }")
    fig = known[task][figure](read_tables(predictions_path), read_metrics(metrics_path))
    fig.savefig(out_png, dpi=dpi)  # Snakemake removes the output of a failed job
    _plt().close(fig)
