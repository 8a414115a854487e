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


rule export_onnx:
    input:
        model=lambda wildcards: model_dir(wildcards.model),
    output:
        export_output("onnx"),
    log:
        "results/logs/export/{model}/onnx.log",
    benchmark:
        "results/benchmarks/export/{model}/onnx.tsv"
    priority: model_priority
    conda:
        "../../envs/export-onnx.yaml"
    resources:
        mem_mb=job_mem_mb("export_onnx"),
    script:
        "../scripts/export_onnx.py"


rule export_openvino:
    input:
        model=lambda wildcards: model_dir(wildcards.model),
    output:
        export_output("openvino"),
    log:
        "results/logs/export/{model}/openvino.log",
    benchmark:
        "results/benchmarks/export/{model}/openvino.tsv"
    priority: model_priority
    conda:
        "../../envs/export-openvino.yaml"
    resources:
        mem_mb=job_mem_mb("export_openvino"),
    params:
        weight_format=config["export"]["openvino_weight_format"],
    script:
        "../scripts/export_openvino.py"


rule export_torchscript:
    input:
        model=lambda wildcards: model_dir(wildcards.model),
    output:
        export_output("torchscript"),
    log:
        "results/logs/export/{model}/torchscript-{provider}.log",
    benchmark:
        "results/benchmarks/export/{model}/torchscript-{provider}.tsv"
    priority: model_priority
    conda:
        "../../envs/export-torch.yaml"
    resources:
        mem_mb=job_mem_mb("export_torchscript"),
    script:
        "../scripts/export_torchscript.py"


rule check_engine:
    input:
        model=lambda wildcards: model_dir(wildcards.model),
        artefact=engine_artefact,
        prompts=LAYOUT.prompts.as_posix(),
        prompts_manifest=LAYOUT.prompts_manifest.as_posix(),
    output:
        LAYOUT.check_pattern(),
    log:
        "results/logs/check/{model}/{engine}-{provider}.log",
    benchmark:
        "results/benchmarks/check/{model}/{engine}-{provider}.tsv"
    wildcard_constraints:
        engine=alternatives(EXPORTED_ENGINES),
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
