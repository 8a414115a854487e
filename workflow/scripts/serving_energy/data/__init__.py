"""The study's inputs: HumanEval, the prompts, tokenizers, models from the Hub or built as
stand-ins, and the manifests that prove an input is what the workflow made."""
