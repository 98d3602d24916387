"""What a run's configuration plans, apart from the rules that carry it out: which branches run, the
models and their train settings, the claims' variants of the base model, SpectraFM's stages and
where each variant's stage lives, the experts, the evaluation tasks. workflow/rules/common.smk binds
one ``Plan`` and keeps only the rules' input functions (wildcards -> files); everything here is a
function of the configuration, tested without Snakemake (tests/test_plan.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..baselines.xgb import expert_plan
from ..evaluate.registry import TASKS
from ..evaluate.variants import (
    BASE_MODEL_TASKS,
    SCALING_TASKS,
    experiment_variants,
    is_base,
    scaling_variants,
    seed_variants,
    spectrafm_experiments,
    spectrafm_seeded,
    trains_its_own,
)
from ..spectrafm.plan import stage_plan

VARIANT_PREFIX = "claims-"  # a variant of the base model trains as results/models/claims-<variant>/
FCNN_OWN = ("hidden", "dropout")  # the FCNN block's network keys (the rest is its training schedule)


def fcnn_stage(settings: dict) -> dict:
    """The FCNN's training settings: finetune_fe's stars and window, with the fcnn block's schedule."""
    own = {k: v for k, v in (settings.get("fcnn") or {}).items() if k not in FCNN_OWN}
    return {**settings["stages"]["finetune_fe"], **own}


class Plan:
    """The plan of one run: built once from the completed configuration (Snakefile), read by the rules."""

    def __init__(self, config: dict, results: str, mock: bool):
        self.config, self.results, self.mock = config, results, mock
        # what the tabular chain depends on: the SpectraFM settings (its spectra, its real files) are left
        # out, so that switching SpectraFM on or retuning it reruns neither the sky nor the tokens
        self.sky_core = {k: v for k, v in config["sky"].items() if k not in ("apogee_spectra", "xp_all")}
        # SpectraFM: on the mock when sky.apogee_spectra.enabled, on real data when inputs.aspcapstar is given
        spectra = config["sky"].get("apogee_spectra") or {}
        self.spectrafm = bool(spectra.get("enabled")) if mock else bool(config["inputs"]["aspcapstar"])
        self.spectrafm_cfg = config["spectrafm"]
        self.spectrafm_stages = stage_plan(self.spectrafm_cfg["stages"])  # the configured stages and the paper's ablation
        # the second model: mass and age tokens of evolved stars (Zhang et al. 2026)
        self.mass_age = bool(config["mass_age"]["enabled"])
        self.mass_age_model = config["mass_age"]["train"]["name"]
        self.base_model = config["train"]["name"]
        self.import_from = config["train"].get("import_from") or ""
        # the models that are trained: every name, or all but the base model when it is imported
        self.trained_model_names = f"(?!{re.escape(self.base_model)}$)[^/]+" if self.import_from else "[^/]+"
        # the claims' targets: variants of the base model, each a name and the overrides of its train block
        claims = config.get("claims") or {}
        self.seed_variants = seed_variants(claims.get("seeds") or [])
        self.scaling_variants = scaling_variants(claims["scaling"]) if claims.get("scaling") else {}
        self.experiment_variants = experiment_variants(claims.get("experiments") or {})
        self.variants = {**self.seed_variants, **self.scaling_variants, **self.experiment_variants}
        self.claims_tasks = list(claims.get("tasks") or BASE_MODEL_TASKS)
        # a seed variant retrains SpectraFM's stages and FCNN with its seed (results/claims/<variant>/spectrafm/),
        # but for the seed the default run's SpectraFM already has; an experiment with a spectrafm part
        # retrains the stages it changes, and SpectraFM's claims are judged on it
        seeded = {v: spectrafm_seeded(self.spectrafm_cfg, o["seed"]) for v, o in self.seed_variants.items()} if self.spectrafm else {}
        self.spectrafm_experiments = spectrafm_experiments(claims.get("experiments") or {}, self.spectrafm_cfg) if self.spectrafm else {}
        self.spectrafm_seeded = {**seeded, **self.spectrafm_experiments}
        self.spectrafm_variants = [v for v, settings in self.spectrafm_seeded.items() if settings]
        # the XGBoost experts: input set -> (targets, settings)
        self.experts = expert_plan(config["baselines"]["experts"], config["baselines"]["xgboost"])

    def upstream(self, *keys) -> dict:
        """The config blocks a stage's outputs depend on (params: a change reruns the stage)."""
        blocks = {"sky": self.sky_core, "inputs": {k: v for k, v in self.config["inputs"].items() if k != "aspcapstar"}}
        return {k: blocks.get(k, self.config.get(k)) for k in keys}

    # -- the models ---------------------------------------------------------------------------------
    def is_mass_age(self, name: str) -> bool:
        return self.mass_age and name == self.mass_age_model

    def published_model_files(self) -> list[str]:
        """The files of train.import_from, a model folder in Leung & Bovy's format."""
        return [str(Path(self.import_from) / name) for name in ("config.json", "weights.pt")]

    def train_settings(self, name: str) -> dict:
        """The train block of a model: the base settings, overridden by mass_age.train for the mass/age
        model, and by a variant's overrides for claims-<variant>."""
        train = self.config["train"]
        if self.is_mass_age(name):
            return {**train, **self.config["mass_age"]["train"]}
        variant = name[len(VARIANT_PREFIX) :] if name.startswith(VARIANT_PREFIX) else None
        if variant in self.variants:
            return {**train, **self.variants[variant], "name": name}
        return train

    def token_store(self, name: str) -> str:
        return f"{self.results}/mass_age/tokens.zarr" if self.is_mass_age(name) else f"{self.results}/tokens/stars.zarr"

    def init_model(self, name: str) -> list[str]:
        """The weights a model starts from: the base model's for the mass/age model (mass_age.train.init_from_base)."""
        if self.is_mass_age(name) and self.train_settings(name)["init_from_base"]:
            return [f"{self.results}/models/{self.base_model}/model.pt"]
        return []

    # -- the claims' variants -------------------------------------------------------------------------
    def variant_model_dir(self, variant: str) -> str:
        if is_base(self.config["train"], self.variants[variant]):
            return f"{self.results}/models/{self.base_model}"
        return f"{self.results}/models/{VARIANT_PREFIX}{variant}"

    def variant_tasks(self, variant: str) -> list[str]:
        """The tasks a variant is evaluated on: a scaling point on those its figure draws, the others on
        claims.tasks, and a seed variant on SpectraFM's too when that branch is on."""
        if variant in self.scaling_variants:
            return [t for t in self.claims_tasks if t in SCALING_TASKS]
        if variant in self.spectrafm_experiments and not self.variants[variant]:
            return ["spectrafm"]  # a SpectraFM-only experiment: the base model is the default's
        return self.claims_tasks + (["spectrafm"] if variant in self.spectrafm_seeded else [])

    def variant_metrics(self, variant: str) -> list[str]:
        """The metrics.json of each task of a variant: its own evaluation, and SpectraFM's of the run it
        shares (the default run's when the variant's seed is the default run's)."""
        out = []
        for t in self.variant_tasks(variant):
            if t == "spectrafm" and variant not in self.spectrafm_variants:
                out.append(f"{self.results}/eval/spectrafm/metrics.json")
            else:
                out.append(f"{self.results}/claims/{variant}/eval/{t}/metrics.json")
        return out

    def variant_claims(self, variants) -> list[str]:
        """Each variant's claims table (results/claims/<variant>/claims.csv)."""
        return [f"{self.results}/claims/{v}/claims.csv" for v in variants]

    # -- SpectraFM's stages -----------------------------------------------------------------------------
    def spectrafm_settings(self, variant=None) -> dict:
        """The spectrafm block's stages and fcnn settings of a SpectraFM run (a seed variant's: its seed)."""
        return self.spectrafm_seeded[variant] if variant in self.spectrafm_variants else self.spectrafm_cfg

    def spectrafm_dir(self, variant=None, stage=None) -> str:
        """The folder of a SpectraFM run's stage: a variant's own when the variant changes that stage (or
        one it starts from), else the default run's."""
        if variant not in self.spectrafm_variants:
            return f"{self.results}/spectrafm"
        settings = self.spectrafm_settings(variant)
        if stage == "fcnn":
            own = fcnn_stage(settings) != fcnn_stage(self.spectrafm_cfg)
        else:
            own = stage is None or trains_its_own(stage_plan(settings["stages"]), self.spectrafm_stages, stage)
        return f"{self.results}/claims/{variant}/spectrafm" if own else f"{self.results}/spectrafm"

    def spectrafm_stage(self, stage: str, variant=None) -> dict:
        """The settings of a SpectraFM stage (the default run's, or a variant's), the ablation among them."""
        return stage_plan(self.spectrafm_settings(variant)["stages"])[stage]

    def spectrafm_init(self, stage: str, variant=None) -> list[str]:
        """The model a SpectraFM stage starts from (its `init`), or nothing for the pre-training; a
        variant's stage starts from the variant's own."""
        init = self.spectrafm_stages[stage].get("init")
        return [f"{self.spectrafm_dir(variant, init)}/{init}/model.pt"] if init else []

    # -- the evaluation ---------------------------------------------------------------------------------
    def eval_tasks(self, catalog_all_truth: bool) -> list[str]:
        """evaluate.tasks that this run can run (mass_age, spectrafm and catalog_all need their branch)."""
        return [
            t
            for t in self.config["evaluate"]["tasks"]
            if t in TASKS
            and (self.mass_age or t != "mass_age")
            and (self.spectrafm or t != "spectrafm")
            and (catalog_all_truth or t != "catalog_all")
        ]

    def evaluate_settings(self, task: str, figure_tasks) -> dict:
        """The config slice a task depends on: the shared settings plus its own block."""
        e = self.config["evaluate"]
        shared = {k: v for k, v in e.items() if k not in figure_tasks and k != "tasks"}
        if task == "search":  # how the search is scored lives in the search block
            return {**shared, "search": {k: v for k, v in self.config["search"].items() if k in ("top_n", "queries")}}
        return {**shared, task: e.get(task, {})}

    def branches_off(self, catalog_all: bool, catalog_all_truth: bool) -> list[str]:
        """One line per branch this configuration leaves out, and why (said at the start of every run)."""
        inputs, off = self.config["inputs"], []
        if not self.spectrafm:
            off.append("SpectraFM: " + ("sky.apogee_spectra.enabled is false" if self.mock else "inputs.aspcapstar is empty"))
        if not self.mass_age:
            off.append("mass/age model (Zhang et al.): mass_age.enabled is false")
        if not catalog_all:
            if not self.config["catalog_all"]["enabled"]:
                why = "catalog_all.enabled is false"
            elif self.mock and not inputs["xp_all_xp_continuous"]:
                why = "sky.xp_all.enabled is false"
            else:
                why = "inputs.xp_all_xp_continuous is empty"
            off.append(f"catalogue of every XP source (catalog_all): {why}")
        elif not catalog_all_truth:
            off.append("catalog_all's evaluation against the truth: only on the mock's own XP sources")
        return off
