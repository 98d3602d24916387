# Stage 6: the evaluation suite (tasks a-i), its figures, the summary table and the report.
# Expensive and cheap steps are split: evaluate runs the model once per task and caches its
# predictions; each figure is drawn from that cache, so restyling one reruns only its rule.
rule evaluate:
    input:
        model=task_model,
        tokens=task_store,
        catalog=task_catalog,
        truth=mock_only(f"{SKY}/truth.parquet"),
        experts=task_experts,
        code=code_of("evaluate"),
    output:
        metrics=f"{RESULTS}/eval/{{task}}/metrics.json",
        predictions=f"{RESULTS}/eval/{{task}}/predictions.parquet",
    log:
        f"{RESULTS}/logs/evaluate_{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_{{task}}.tsv"
    wildcard_constraints:
        task="|".join(MODEL_TASKS),
    conda:
        "../envs/model.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        settings=evaluate_settings,
    script:
        "../scripts/evaluate.py"


rule figure:
    input:
        metrics=rules.evaluate.output.metrics,
        predictions=rules.evaluate.output.predictions,
        code=code_of("figure"),
    output:
        report(
            f"{RESULTS}/eval/{{task}}/{{figure}}.png",
            caption="../report/figure.rst",
            category="Evaluation",
            subcategory="{task}",
        ),
    log:
        f"{RESULTS}/logs/figure_{{task}}_{{figure}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figure_{{task}}_{{figure}}.tsv"
    wildcard_constraints:
        task="|".join(FIGURES),
        figure="[a-z0-9_]+",
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        caption=lambda w: CAPTIONS[w.task][w.figure],
        dpi=figure_dpi(config["evaluate"]),
    script:
        "../scripts/figure.py"


rule summary:
    input:
        metrics=expand(f"{RESULTS}/eval/{{task}}/metrics.json", task=EVAL_TASKS),
        code=code_of("summary"),
    output:
        summary=report(f"{RESULTS}/eval/summary.csv", caption="../report/summary.rst", category="Evaluation", subcategory="summary"),
        claims=report(f"{RESULTS}/eval/claims.csv", caption="../report/claims_csv.rst", category="1. Claims"),
    log:
        f"{RESULTS}/logs/summary.log",
    benchmark:
        f"{RESULTS}/benchmarks/summary.tsv"
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        tasks=EVAL_TASKS,
    script:
        "../scripts/summary.py"


# The findings at a glance (src/pipeline/evaluate/figures/claims.py): the forest plot of every claim
# and the claims table a person can read, both from claims.csv alone (a restyle reruns nothing else).
rule claims_figure:
    input:
        claims=rules.summary.output.claims,
        code=code_of("claims_figure"),
    output:
        figure=report(f"{RESULTS}/eval/claims.png", caption="../report/claims_figure.rst", category="1. Claims"),
        table=report(f"{RESULTS}/eval/claims.html", caption="../report/claims.rst", category="1. Claims"),
        fragment=f"{RESULTS}/eval/claims_table.html",  # the same table on the report's front page
    log:
        f"{RESULTS}/logs/claims_figure.log",
    benchmark:
        f"{RESULTS}/benchmarks/claims_figure.tsv"
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        dpi=figure_dpi(config["evaluate"]),
    script:
        "../scripts/claims_figure.py"
