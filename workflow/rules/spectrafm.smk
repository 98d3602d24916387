# SpectraFM (Koblischke & Bovy 2024): APOGEE pixel spectra as tokens with a wavelength encoding,
# pre-trained on synthetic spectra and fine-tuned on observed ones; the FCNN it is compared with;
# its evaluation (results/eval/spectrafm/), whose figures the figure rule draws.
APOGEE_SPECTRA_SCRIPT = "apogee_spectra_mock" if MOCK else "apogee_spectra"  # the mock's spectra, or aspcapStar files


rule apogee_spectra:
    input:
        allstar=ALLSTAR,
        truth=mock_only(f"{SKY}/truth.parquet"),
        aspcapstar=[] if MOCK else [config["inputs"]["aspcapstar"]],
        code=code_of(APOGEE_SPECTRA_SCRIPT),
    output:
        store=directory(f"{RESULTS}/spectrafm/spectra.zarr"),
        lines=f"{RESULTS}/spectrafm/lines.csv",
    log:
        f"{RESULTS}/logs/apogee_spectra.log",
    benchmark:
        f"{RESULTS}/benchmarks/apogee_spectra.tsv"
    priority: PRIORITY["spectrafm_chain"]
    conda:
        "../envs/catalog.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        mock=config["sky"]["apogee_spectra"] if MOCK else None,
        split=SPECTRAFM_CFG["split"],
    script:
        f"../scripts/{APOGEE_SPECTRA_SCRIPT}.py"


rule spectrafm_train:
    input:
        store=rules.apogee_spectra.output.store,
        init=spectrafm_init,
        code=code_of("spectrafm_train"),
    output:
        model=f"{RESULTS}/spectrafm/{{stage}}/model.pt",
        history=f"{RESULTS}/spectrafm/{{stage}}/history.csv",
    log:
        f"{RESULTS}/logs/spectrafm_train_{{stage}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/spectrafm_train_{{stage}}.tsv"
    wildcard_constraints:
        stage="|".join(SPECTRAFM_STAGES),
    priority: PRIORITY["spectrafm_chain"]
    conda:
        "../envs/model.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
        # GPUs per rank x data-parallel ranks (spectrafm.processes), all on the job's node
        gpu=SPECTRAFM_CFG["gpus"] * SPECTRAFM_CFG["processes"],
    params:
        stage=spectrafm_stage,
        model={k: SPECTRAFM_CFG[k] for k in ("preset", "model")},
        device=SPECTRAFM_CFG["device"],
        processes=SPECTRAFM_CFG["processes"],
    script:
        "../scripts/spectrafm_train.py"


rule spectrafm_fcnn:
    input:
        store=rules.apogee_spectra.output.store,
        code=code_of("spectrafm_train"),
    output:
        model=f"{RESULTS}/spectrafm/fcnn/model.pt",
        history=f"{RESULTS}/spectrafm/fcnn/history.csv",
    log:
        f"{RESULTS}/logs/spectrafm_fcnn.log",
    benchmark:
        f"{RESULTS}/benchmarks/spectrafm_fcnn.tsv"
    priority: PRIORITY["spectrafm_chain"]
    conda:
        "../envs/model.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        stage=fcnn_stage(SPECTRAFM_CFG),
        fcnn={k: v for k, v in SPECTRAFM_CFG["fcnn"].items() if k in ("hidden", "dropout")},
        device=SPECTRAFM_CFG["device"],
        processes=1,  # the FCNN trains in one process
    script:
        "../scripts/spectrafm_train.py"


rule evaluate_spectrafm:
    input:
        store=rules.apogee_spectra.output.store,
        models=expand(f"{RESULTS}/spectrafm/{{stage}}/model.pt", stage=SPECTRAFM_MODELS),
        lines=rules.apogee_spectra.output.lines,
        code=code_of("spectrafm_evaluate"),
    output:
        metrics=f"{RESULTS}/eval/spectrafm/metrics.json",
        predictions=f"{RESULTS}/eval/spectrafm/predictions.parquet",
    log:
        f"{RESULTS}/logs/evaluate_spectrafm.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_spectrafm.tsv"
    priority: PRIORITY["spectrafm_chain"]
    conda:
        "../envs/model.yaml"
    threads: 2  # the Cannon reads every star at once (numpy) and the models predict in batches: 1.6x one thread
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        settings={"spectrafm": config["evaluate"].get("spectrafm")},
    script:
        "../scripts/spectrafm_evaluate.py"


# `snakemake seeds` (claims.smk): a seed variant's SpectraFM, every stage and the FCNN retrained with
# its seed (results/claims/<variant>/spectrafm/) and evaluated like the default run's.
use rule spectrafm_train as spectrafm_train_variant with:
    output:
        model=f"{RESULTS}/claims/{{variant}}/spectrafm/{{stage}}/model.pt",
        history=f"{RESULTS}/claims/{{variant}}/spectrafm/{{stage}}/history.csv",
    log:
        f"{RESULTS}/logs/spectrafm_train_{{variant}}_{{stage}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/spectrafm_train_{{variant}}_{{stage}}.tsv"
    wildcard_constraints:
        stage="|".join(SPECTRAFM_STAGES),
        variant="|".join(SPECTRAFM_VARIANTS) or "(?!)",
    params:
        stage=spectrafm_stage,
        model={k: SPECTRAFM_CFG[k] for k in ("preset", "model")},
        device=SPECTRAFM_CFG["device"],
        processes=SPECTRAFM_CFG["processes"],


use rule spectrafm_fcnn as spectrafm_fcnn_variant with:
    output:
        model=f"{RESULTS}/claims/{{variant}}/spectrafm/fcnn/model.pt",
        history=f"{RESULTS}/claims/{{variant}}/spectrafm/fcnn/history.csv",
    log:
        f"{RESULTS}/logs/spectrafm_fcnn_{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/spectrafm_fcnn_{{variant}}.tsv"
    wildcard_constraints:
        variant="|".join(SPECTRAFM_VARIANTS) or "(?!)",
    params:
        stage=lambda w: fcnn_stage(spectrafm_settings(w.variant)),
        fcnn={k: v for k, v in SPECTRAFM_CFG["fcnn"].items() if k in ("hidden", "dropout")},
        device=SPECTRAFM_CFG["device"],
        processes=1,


use rule evaluate_spectrafm as evaluate_spectrafm_variant with:
    input:
        store=rules.apogee_spectra.output.store,
        models=lambda w: [f"{spectrafm_dir(w.variant, s)}/{s}/model.pt" for s in SPECTRAFM_MODELS],
        lines=rules.apogee_spectra.output.lines,
        code=code_of("spectrafm_evaluate"),
    output:
        metrics=f"{RESULTS}/claims/{{variant}}/eval/spectrafm/metrics.json",
        predictions=f"{RESULTS}/claims/{{variant}}/eval/spectrafm/predictions.parquet",
    log:
        f"{RESULTS}/logs/evaluate_spectrafm_{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_spectrafm_{{variant}}.tsv"
    wildcard_constraints:
        variant="|".join(SPECTRAFM_VARIANTS) or "(?!)",
