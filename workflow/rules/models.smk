rule fetch_model:
    output:
        directory("resources/models/{model}"),
    log:
        "results/logs/fetch_model/{model}.log",
    benchmark:
        "results/benchmarks/fetch_model/{model}.tsv"
    wildcard_constraints:
        model=alternatives(HUB_MODELS),
    priority: model_priority
    conda:
        "../../envs/data.yaml"
    params:
        hf_id=lambda wildcards: config["models"][wildcards.model]["hf_id"],
        revision=lambda wildcards: config["models"][wildcards.model]["revision"],
        trust_remote_code=lambda wildcards: config["models"][wildcards.model]["trust_remote_code"],
    script:
        "../scripts/fetch_model.py"


rule build_standin:
    input:
        humaneval="resources/humaneval/HumanEval.jsonl",
    output:
        directory("resources/models/{model}"),
    log:
        "results/logs/build_standin/{model}.log",
    benchmark:
        "results/benchmarks/build_standin/{model}.tsv"
    wildcard_constraints:
        model=alternatives(STANDIN_MODELS),
    priority: model_priority
    conda:
        "../../envs/export-torch.yaml"
    resources:
        mem_mb=job_mem_mb("build_standin"),
    params:
        # Resolved (named geometry expanded, defaults filled in): rebuilt when what it is built
        # from changes, not when a default moves into the config.
        standin=lambda wildcards: standin_spec(wildcards.model),
        humaneval_sha256=config["humaneval"]["sha256"],
    script:
        "../scripts/build_standin.py"


rule export:
    input:
        model=lambda wildcards: model_dir(wildcards.model),
    output:
        export_output(),
    log:
        "results/logs/export/{model}/{artefact}.log",
    benchmark:
        "results/benchmarks/export/{model}/{artefact}.tsv"
    wildcard_constraints:
        artefact=alternatives(EXPORT_ARTEFACTS),
    priority: model_priority
    conda:
        export_env
    resources:
        mem_mb=export_mem_mb,
    params:
        # What changes the artefact, from the engine's spec (OpenVINO's weight format).
        settings=export_settings,
    script:
        "../scripts/export_model.py"


rule check_engine:
    input:
        unpack(check_inputs),
    output:
        LAYOUT.check_pattern(),
    log:
        "results/logs/check/{model}/{engine}-{provider}.log",
    benchmark:
        "results/benchmarks/check/{model}/{engine}-{provider}.tsv"
    wildcard_constraints:
        engine=alternatives(CHECKED_ENGINES),
    priority: model_priority
    conda:
        serving_env
    threads: machine_cores
    resources:
        mem_mb=job_mem_mb("check_engine"),
    params:
        expected_prompts=expected_prompt_count(config["prompts"]["limit"]),
        n_prompts=config["equivalence"]["prompts"],
        max_new_tokens=config["equivalence"]["max_new_tokens"],
        max_mismatched_tokens=config["equivalence"]["max_mismatched_tokens"],
        # The engine's own settings only (as its measured runs get them): changing OpenVINO's
        # precision re-checks OpenVINO and nothing else.
        engine_options=lambda wildcards: engine_options(config, wildcards.engine),
    script:
        "../scripts/check_engine.py"
