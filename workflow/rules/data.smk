rule download_humaneval:
    output:
        "resources/humaneval/HumanEval.jsonl",
    log:
        "results/logs/download_humaneval.log",
    conda:
        "../../envs/data.yaml"
    params:
        source=config["humaneval"]["source"],
        url=config["humaneval"]["url"],
        sha256=config["humaneval"]["sha256"],
    script:
        "../scripts/download_humaneval.py"


rule fetch_tokenizer:
    output:
        directory("resources/tokenizers/{tokenizer}"),
    log:
        "results/logs/fetch_tokenizer/{tokenizer}.log",
    conda:
        "../../envs/data.yaml"
    params:
        entry=lambda wildcards: config["tokenizers"][wildcards.tokenizer],
    script:
        "../scripts/fetch_tokenizer.py"


rule fetch_paper_prompts:
    output:
        "resources/paper/RandomHumanEval.jsonl",
    log:
        "results/logs/fetch_paper_prompts.log",
    conda:
        "../../envs/data.yaml"
    params:
        location=config["prompts"]["paper_file"]["location"],
        sha256=config["prompts"]["paper_file"]["sha256"],
    script:
        "../scripts/fetch_paper_prompts.py"


rule sample_prompts:
    input:
        unpack(prompt_inputs),
    output:
        prompts=LAYOUT.prompts.as_posix(),
        manifest=LAYOUT.prompts_manifest.as_posix(),
    log:
        "results/logs/sample_prompts.log",
    conda:
        "../../envs/data.yaml"
    params:
        humaneval_sha256=config["humaneval"]["sha256"],
        source=config["prompts"]["source"],
        seed=config["prompts"]["seed"],
        min_tokens=config["prompts"]["min_tokens"],
        max_tokens=config["prompts"]["max_tokens"],
        limit=config["prompts"]["limit"],
    script:
        "../scripts/sample_prompts.py"
