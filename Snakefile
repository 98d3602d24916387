# Reference pipeline for a foundation model of stars (Leung & Bovy 2024).
# `snakemake --cores all` runs the default target on the mock sky; see README.md.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")

SKY = config["paths"]["sky"]
RESULTS = config["paths"]["results"]


include: "workflow/rules/common.smk"
include: "workflow/rules/sky.smk"


rule all:
    default_target: True
    input:
        f"{RESULTS}/sky/realism.json",
        f"{RESULTS}/sky/difficulty.json",
