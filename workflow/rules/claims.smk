# The claims' spread over seeds and their training budget (src/pipeline/evaluate/variants.py): two
# targets that are not part of the default run. `snakemake seeds` retrains the base model (and
# SpectraFM's stages: spectrafm.smk) with each of claims.seeds; `snakemake scaling` trains it at
# each budget and size of claims.scaling. Each
# variant is evaluated on the base model's tasks of the claims (claims.tasks; a scaling point on the
# tasks its figure draws) and judged like the default run (results/claims/<variant>/claims.csv); the variant whose settings are the base
# model's reuses the base model.


use rule evaluate as evaluate_variant with:
    input:
        model=lambda w: f"{variant_model_dir(w.variant)}/model.pt",
        tokens=task_store,
        catalog=task_catalog,
        truth=mock_only(f"{SKY}/truth.parquet"),
        experts=task_experts,
        code=code_of("evaluate"),
    output:
        metrics=f"{RESULTS}/claims/{{variant}}/eval/{{task}}/metrics.json",
        predictions=f"{RESULTS}/claims/{{variant}}/eval/{{task}}/predictions.parquet",
    log:
        f"{RESULTS}/logs/evaluate_{{variant}}_{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_{{variant}}_{{task}}.tsv"
    wildcard_constraints:
        task="|".join(CLAIMS_TASKS),  # SpectraFM's own evaluation: evaluate_spectrafm_variant (spectrafm.smk)
        variant="|".join(VARIANTS) or "(?!)",


use rule summary as variant_summary with:
    input:
        metrics=lambda w: variant_metrics(w.variant),
        code=code_of("summary"),
    output:
        summary=f"{RESULTS}/claims/{{variant}}/summary.csv",
        claims=f"{RESULTS}/claims/{{variant}}/claims.csv",
    log:
        f"{RESULTS}/logs/summary_{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/summary_{{variant}}.tsv"
    wildcard_constraints:
        variant="|".join(VARIANTS) or "(?!)",
    params:
        tasks=lambda w: variant_tasks(w.variant),


rule seeds:
    input:
        claims=expand(f"{RESULTS}/claims/{{variant}}/claims.csv", variant=SEED_VARIANTS),
        code=code_of("claims_seeds"),
    output:
        f"{RESULTS}/eval/seeds.csv",
    log:
        f"{RESULTS}/logs/seeds.log",
    benchmark:
        f"{RESULTS}/benchmarks/seeds.tsv"
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        seeds={v: o["seed"] for v, o in SEED_VARIANTS.items()},
    script:
        "../scripts/claims_seeds.py"


rule scaling:
    input:
        summaries=expand(f"{RESULTS}/claims/{{variant}}/summary.csv", variant=SCALING_VARIANTS),
        histories=[f"{variant_model_dir(v)}/history.csv" for v in SCALING_VARIANTS],
        code=code_of("claims_scaling"),
    output:
        table=f"{RESULTS}/eval/scaling.csv",
        crossings=f"{RESULTS}/eval/scaling_crossings.csv",
    log:
        f"{RESULTS}/logs/scaling.log",
    benchmark:
        f"{RESULTS}/benchmarks/scaling.tsv"
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        presets={v: o["preset"] for v, o in SCALING_VARIANTS.items()},
    script:
        "../scripts/claims_scaling.py"


rule scaling_figure:
    input:
        table=rules.scaling.output.table,
        code=code_of("claims_scaling_figure"),
    output:
        report(f"{RESULTS}/eval/scaling.png", caption="../report/scaling.rst", category="1. Claims"),
    log:
        f"{RESULTS}/logs/scaling_figure.log",
    benchmark:
        f"{RESULTS}/benchmarks/scaling_figure.tsv"
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        dpi=figure_dpi(config["evaluate"]),
    script:
        "../scripts/claims_scaling_figure.py"


rule experiments:
    input:
        base=f"{RESULTS}/eval/claims.csv",
        claims=variant_claims(EXPERIMENT_VARIANTS),
        code=code_of("claims_experiments"),
    output:
        f"{RESULTS}/eval/experiments.csv",
    log:
        f"{RESULTS}/logs/experiments.log",
    benchmark:
        f"{RESULTS}/benchmarks/experiments.tsv"
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    script:
        "../scripts/claims_experiments.py"


# The findings (src/pipeline/evaluate/findings.py): each claim on the default sky, over the seeds and on
# the confirmation sky (configs/confirm.yaml, run into <results>/confirm), counted only when all three
# agree. `make findings` runs the three, then this rule.
rule findings:
    input:
        claims=f"{RESULTS}/eval/claims.csv",
        seeds=rules.seeds.output[0],
        confirm=confirm_claims,
        code=code_of("findings"),
    output:
        table=f"{RESULTS}/eval/findings.csv",
        figure=report(f"{RESULTS}/eval/findings.png", caption="../report/findings_figure.rst", category="1. Claims"),
    log:
        f"{RESULTS}/logs/findings.log",
    benchmark:
        f"{RESULTS}/benchmarks/findings.tsv"
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        dpi=figure_dpi(config["evaluate"]),
    script:
        "../scripts/findings.py"
