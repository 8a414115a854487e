"""Where a study's models come from: a pinned Hugging Face snapshot, or a stand-in built here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from serving_energy.core.io import atomic_dir, write_atomic_json

SNAPSHOT_FILE = "snapshot.json"
# Weights in one format are enough; the others would double the download.
SNAPSHOT_PATTERNS = [
    "*.json",
    "*.safetensors",
    "*.txt",
    "*.model",
    "*.py",
    "tokenizer*",
    "*.tiktoken",
]


@dataclass(frozen=True)
class Snapshot:
    hf_id: str
    revision: str
    commit: str | None
    trust_remote_code: bool


def fetch_model(
    hf_id: str,
    revision: str,
    out_dir: Path,
    trust_remote_code: bool = False,
    download: Callable[..., str] | None = None,
    resolve_commit: Callable[[str, str], str | None] | None = None,
) -> Snapshot:
    """Download ``hf_id`` at ``revision`` into ``out_dir`` (atomically) and record the commit.

    ``download`` and ``resolve_commit`` default to huggingface_hub's; tests pass local stand-ins.
    """
    if download is None:
        from huggingface_hub import snapshot_download as download
    if resolve_commit is None:
        resolve_commit = _hub_commit
    with atomic_dir(Path(out_dir)) as folder:
        try:
            download(
                repo_id=hf_id,
                revision=revision,
                local_dir=str(folder),
                allow_patterns=SNAPSHOT_PATTERNS,
            )
        except Exception as error:
            raise RuntimeError(
                f"could not download {hf_id} at revision {revision}: {error}. Check the network, "
                "the revision, and for gated models (codegemma, stablecode) that you accepted the "
                "licence on the Hub and set HF_TOKEN."
            ) from error
        if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
            raise RuntimeError(f"{hf_id}@{revision}: the snapshot holds no weights")
        commit = resolve_commit(hf_id, revision)
        snapshot = Snapshot(hf_id, revision, commit, trust_remote_code)
        write_atomic_json(folder / SNAPSHOT_FILE, asdict(snapshot))
    return snapshot


def _hub_commit(hf_id: str, revision: str) -> str | None:
    from huggingface_hub import HfApi

    return HfApi().model_info(hf_id, revision=revision).sha


def build_standin_model(standin: Mapping, out_dir: Path, humaneval_path: Path | None = None):
    """Build the stand-in a config entry describes into ``out_dir`` (atomically).

    ``standin`` is a config entry, with or without its geometry resolved
    (``resolve_standin_spec``).
    """
    from serving_energy.data.standins import build_standin
    from serving_energy.study.geometries import GEOMETRY_FIELDS, resolve_standin_spec

    spec = resolve_standin_spec(dict(standin))
    geometry = {k: spec[k] for k in GEOMETRY_FIELDS if k not in ("layers", "hidden_size", "heads")}
    with atomic_dir(Path(out_dir)) as folder:
        info = build_standin(
            spec["architecture"],
            folder,
            n_layers=spec["layers"],
            hidden_size=spec["hidden_size"],
            n_heads=spec["heads"],
            tokenizer=spec["tokenizer"],
            tokenizer_vocab_size=spec["tokenizer_vocab_size"],
            seed=spec["seed"],
            extra=spec["config"],
            humaneval_path=humaneval_path,
            **geometry,
        )
    return info
