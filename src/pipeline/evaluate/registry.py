"""The one registry of the evaluation tasks: a-i of Leung & Bovy (sections 6-7), the mass/age task,
the star search and SpectraFM's. Light on purpose (no numerical imports): the workflow reads it to
build its rules (workflow/rules/common.smk), ``tasks.run_task`` to run one, the figures module to
draw theirs. Each task's figures are named where they are drawn (``figures.FIGURES``).
"""

from __future__ import annotations

from dataclasses import dataclass

RP0_SETS = ("params", "params_2mass", "params_2mass_bprp")  # task h: rp0 from parameters, + 2MASS, + BP-RP
MASS_AGE_SETS = ("xp30_colours", "xp29_colours_params")  # the mass/age model's two input sets


@dataclass(frozen=True)
class Task:
    letter: str  # in issue 5 (a-i), or the issue that added it
    paper_figures: str
    experts: tuple = ()  # the XGBoost input sets (results/baselines/<set>) it compares with
    own_rule: bool = False  # a rule and models of its own (SpectraFM), not the shared evaluate rule


TASKS = {
    "spectra_to_parameters": Task("a", "Fig. 4, B1", experts=("xp30_colours",)),
    "perception": Task("b", "Fig. 5", experts=("xp30_colours",)),
    "parameters_to_spectra": Task("c", "Figs. 6, 7, B3"),
    "spectra_to_spectra": Task("d", "Fig. 9", experts=("rp55", "bp55")),
    "parameters_to_parameters": Task("e", "Fig. 10"),
    "extinction_curve": Task("f", "Fig. 11"),
    "never_requested": Task("g", "Fig. 14", experts=("xp32",)),
    "rp0_experts": Task("h", "Fig. 13", experts=RP0_SETS),
    "attention": Task("i", "Fig. 12"),
    "mass_age": Task("7", "Zhang et al. 2026, Fig. 5", experts=MASS_AGE_SETS),
    "search": Task("C", "appendix C"),
    "spectrafm": Task("8", "Koblischke & Bovy 2024, Table 1, Figs. 4-5", own_rule=True),
    # the answers for every XP source against the mock's truth: with catalog_all.enabled, on the
    # mock sky's all-sky sources (its rule evaluate_catalog_all in workflow/rules/apply.smk)
    "catalog_all": Task("20", "the scale of Andrae et al. 2023 and Zhang et al. 2023", own_rule=True),
}
MODEL_TASKS = tuple(t for t, task in TASKS.items() if not task.own_rule)  # the shared evaluate rule's
