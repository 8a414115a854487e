"""The real geometry of the paper's twelve models, for stand-ins that cost what the models cost.

Each entry is what a stand-in needs to have the published model's compute and memory: every
config field that changes a weight's shape (layers, width, heads, KV heads, head size, MLP width,
vocabulary, positions, tied or untied output head) or the arithmetic of a step (rotary fraction,
parallel residual). Values come from each model's published ``config.json`` (the source is named
per entry); ``published_parameters`` is the count the model card, paper or Hub page states, with
its source, so a test can check that a stand-in built at the geometry has the model's size
(``tests/data/test_geometries.py`` builds every entry on PyTorch's meta device).

A config names one with ``standin: {geometry: <name>}``; fields given beside it override it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class PublishedGeometry:
    """The shape of a published model, in the stand-in spec's own field names."""

    architecture: str
    layers: int
    hidden_size: int
    heads: int
    kv_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    tied_embeddings: bool
    published_parameters: int
    parameters_source: str
    config_source: str
    head_dim: int | None = None  # None: hidden_size / heads
    rotary_fraction: float | None = None  # None: the architecture has no rotary embedding
    config: dict[str, Any] = field(default_factory=dict)  # any other architecture field

    def spec(self) -> dict[str, Any]:
        """The stand-in spec fields of this geometry (without tokenizer or seed)."""
        spec = {
            "architecture": self.architecture,
            "layers": self.layers,
            "hidden_size": self.hidden_size,
            "heads": self.heads,
            "kv_heads": self.kv_heads,
            "intermediate_size": self.intermediate_size,
            "vocab_size": self.vocab_size,
            "max_positions": self.max_positions,
            "tied_embeddings": self.tied_embeddings,
        }
        if self.head_dim is not None:
            spec["head_dim"] = self.head_dim
        if self.rotary_fraction is not None:
            spec["rotary_fraction"] = self.rotary_fraction
        if self.config:
            spec["config"] = dict(self.config)
        return spec


ARCHITECTURES = ("gpt2", "gpt_bigcode", "gpt_neox", "bloom", "llama", "gemma", "phi")
MAX_POSITIONS = 2048
# The fields of a stand-in spec that are not geometry.
SPEC_FIELDS = ("architecture", "geometry", "config", "tokenizer", "tokenizer_vocab_size", "seed")

# Geometry fields a stand-in spec may state (beside architecture, tokenizer and seed); None or
# absent means the architecture's default below.
GEOMETRY_FIELDS = (
    "layers",
    "hidden_size",
    "heads",
    "kv_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "max_positions",
    "rotary_fraction",
    "tied_embeddings",
)


def _architecture_defaults(architecture: str, hidden: int, heads: int) -> dict[str, Any]:
    """What a stand-in of ``architecture`` gets for a field its spec leaves out."""
    return {
        "gpt2": {"kv_heads": heads, "intermediate_size": 4 * hidden, "max_positions": 1024,
                 "tied_embeddings": True},
        "gpt_bigcode": {"kv_heads": 1, "intermediate_size": 4 * hidden,
                        "max_positions": MAX_POSITIONS, "tied_embeddings": True},
        "gpt_neox": {"kv_heads": heads, "intermediate_size": 4 * hidden, "rotary_fraction": 0.25,
                     "max_positions": MAX_POSITIONS, "tied_embeddings": False},
        "bloom": {"kv_heads": heads, "intermediate_size": 4 * hidden,
                  "max_positions": MAX_POSITIONS, "tied_embeddings": True},
        "llama": {"kv_heads": min(2, heads), "intermediate_size": int(2.75 * hidden),
                  "rotary_fraction": 1.0, "max_positions": MAX_POSITIONS,
                  "tied_embeddings": False},
        "gemma": {"kv_heads": 1, "intermediate_size": 8 * hidden, "rotary_fraction": 1.0,
                  "max_positions": MAX_POSITIONS, "tied_embeddings": True},
        "phi": {"kv_heads": heads, "intermediate_size": 4 * hidden, "rotary_fraction": 0.5,
                "max_positions": MAX_POSITIONS, "tied_embeddings": False},
    }[architecture]  # fmt: skip


def resolve_geometry(architecture: str, **given: Any) -> dict[str, Any]:
    """Every geometry field of a stand-in: the given ones, else the architecture's defaults.

    Raises ValueError naming the field when the architecture cannot have the value (BLOOM's MLP is
    always 4 x hidden, GPT-2 has no rotary embedding or grouped KV heads, ...).
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown stand-in architecture {architecture!r}; expected one of {ARCHITECTURES}"
        )
    unknown = set(given) - set(GEOMETRY_FIELDS)
    if unknown:
        raise ValueError(f"unknown stand-in geometry field(s) {sorted(unknown)}")
    given = {k: v for k, v in given.items() if v is not None}
    hidden, heads = given.get("hidden_size", 64), given.get("heads", 4)
    for name in ("layers", "hidden_size", "heads", "kv_heads", "head_dim", "intermediate_size",
                 "vocab_size", "max_positions"):  # fmt: skip
        if name in given and (not isinstance(given[name], int) or given[name] < 1):
            raise ValueError(f"stand-in {name} must be a positive integer, got {given[name]!r}")
    geometry = {
        "layers": 2,
        "hidden_size": hidden,
        "heads": heads,
        "head_dim": None,
        "rotary_fraction": None,
        "vocab_size": None,
        **_architecture_defaults(architecture, hidden, heads),
        **given,
    }
    kv_heads, head_dim = geometry["kv_heads"], geometry["head_dim"]
    if head_dim is None:
        if hidden % heads:
            raise ValueError(
                f"hidden_size {hidden} is not divisible by heads {heads} (llama and gemma may "
                "give head_dim instead)"
            )
        geometry["head_dim"] = hidden // heads
    elif architecture not in ("llama", "gemma") and head_dim * heads != hidden:
        raise ValueError(
            f"{architecture} has no head_dim of its own: head_dim must be hidden_size / heads "
            f"= {hidden / heads:g}, got {head_dim}"
        )
    if heads % kv_heads:
        raise ValueError(f"heads {heads} is not a multiple of kv_heads {kv_heads}")
    if architecture in ("gpt2", "bloom", "gpt_neox") and kv_heads != heads:
        raise ValueError(
            f"{architecture} has one KV head per attention head: kv_heads must equal heads "
            f"({heads}), got {kv_heads}"
        )
    if architecture == "gpt_bigcode" and kv_heads not in (1, heads):
        raise ValueError(
            f"gpt_bigcode has multi-query (kv_heads 1) or multi-head attention (kv_heads = heads "
            f"= {heads}), not kv_heads {kv_heads}"
        )
    if architecture == "bloom" and geometry["intermediate_size"] != 4 * hidden:
        raise ValueError(
            f"bloom's MLP is always 4 x hidden_size = {4 * hidden}: intermediate_size "
            f"{geometry['intermediate_size']} cannot be built"
        )
    rotary = geometry["rotary_fraction"]
    if architecture in ("gpt2", "gpt_bigcode", "bloom") and rotary is not None:
        raise ValueError(f"{architecture} has no rotary embedding: leave rotary_fraction out")
    if architecture in ("llama", "gemma") and rotary != 1.0:
        raise ValueError(f"{architecture} rotates every head dimension: rotary_fraction must be 1")
    if rotary is not None and not 0 < rotary <= 1:
        raise ValueError(f"rotary_fraction must be in (0, 1], got {rotary}")
    return geometry


def resolve_standin_spec(standin: dict[str, Any]) -> dict[str, Any]:
    """A config's ``standin:`` entry with its named geometry expanded and every default resolved.

    What the build rule gets as its params, so a stand-in is rebuilt exactly when what it is
    built from changes. Raises ValueError naming the field that cannot be built.
    """
    standin = dict(standin)
    unknown = set(standin) - set(SPEC_FIELDS) - set(GEOMETRY_FIELDS)
    if unknown:
        raise ValueError(f"unknown stand-in field(s) {sorted(unknown)}")
    base: dict[str, Any] = {}
    if "geometry" in standin:
        base = geometry(standin["geometry"]).spec()
    if "architecture" in standin and base and standin["architecture"] != base["architecture"]:
        raise ValueError(
            f"architecture {standin['architecture']!r} contradicts geometry "
            f"{standin['geometry']!r} ({base['architecture']})"
        )
    merged = {**base, **{k: v for k, v in standin.items() if k != "config"}}
    merged["config"] = {**base.get("config", {}), **standin.get("config", {})}
    architecture = merged.get("architecture")
    if architecture is None:
        raise ValueError("a stand-in needs an 'architecture' or a 'geometry'")
    fields = resolve_geometry(
        architecture, **{k: merged[k] for k in GEOMETRY_FIELDS if k in merged}
    )
    return {
        "architecture": architecture,
        **({"geometry": merged["geometry"]} if "geometry" in merged else {}),
        **fields,
        "config": merged["config"],
        "tokenizer": merged.get("tokenizer", "bpe-humaneval"),
        "tokenizer_vocab_size": merged.get("tokenizer_vocab_size"),
        "seed": merged.get("seed", 0),
    }


_HUB = "https://huggingface.co/{}/blob/main/config.json"

GEOMETRIES: dict[str, PublishedGeometry] = {
    # GPT-2 (n_layer 12, n_embd 768, n_head 12, n_positions 1024, vocab 32 768), head tied to wte.
    "codeparrot-small": PublishedGeometry(
        architecture="gpt2",
        layers=12,
        hidden_size=768,
        heads=12,
        kv_heads=12,
        intermediate_size=3072,
        vocab_size=32768,
        max_positions=1024,
        tied_embeddings=True,
        published_parameters=110_000_000,
        parameters_source="model card codeparrot/codeparrot-small: '110M parameter model'",
        config_source=_HUB.format("codeparrot/codeparrot-small"),
    ),
    # gpt_bigcode with multi-query attention (one KV head), n_inner 3072, 8 192 positions.
    "tiny-starcoder": PublishedGeometry(
        architecture="gpt_bigcode",
        layers=20,
        hidden_size=768,
        heads=12,
        kv_heads=1,
        intermediate_size=3072,
        vocab_size=49152,
        max_positions=8192,
        tied_embeddings=True,
        published_parameters=164_000_000,
        parameters_source="model card bigcode/tiny_starcoder_py: 'a 164M parameters model'",
        config_source=_HUB.format("bigcode/tiny_starcoder_py"),
    ),
    # GPT-NeoX: rotary on 25 % of each head, parallel residual, untied embed_in / embed_out.
    "pythia-410m": PublishedGeometry(
        architecture="gpt_neox",
        layers=24,
        hidden_size=1024,
        heads=16,
        kv_heads=16,
        intermediate_size=4096,
        vocab_size=50304,
        max_positions=2048,
        tied_embeddings=False,
        rotary_fraction=0.25,
        config={"use_parallel_residual": True},
        published_parameters=405_334_016,
        parameters_source="Biderman et al. 2023 (Pythia), Table 1: 405,334,016 total parameters",
        config_source=_HUB.format("EleutherAI/pythia-410m"),
    ),
    # BLOOM: ALiBi (no position table), MLP fixed at 4 x hidden, 250 880-entry tied vocabulary.
    "bloomz-560m": PublishedGeometry(
        architecture="bloom",
        layers=24,
        hidden_size=1024,
        heads=16,
        kv_heads=16,
        intermediate_size=4096,
        vocab_size=250880,
        max_positions=2048,
        tied_embeddings=True,
        published_parameters=559_214_592,
        parameters_source="model card bigscience/bloom-560m (bloomz-560m is bloom-560m "
        "finetuned, same architecture): 559,214,592 parameters",
        config_source=_HUB.format("bigscience/bloomz-560m"),
    ),
    "starcoderbase-1b": PublishedGeometry(
        architecture="gpt_bigcode",
        layers=24,
        hidden_size=2048,
        heads=16,
        kv_heads=1,
        intermediate_size=8192,
        vocab_size=49152,
        max_positions=8192,
        tied_embeddings=True,
        # The card says only "1B parameter model"; the Hub page's safetensors summary reads 1.14B,
        # which no stored copy could confirm offline (the config gives 1,137,207,296).
        published_parameters=1_140_000_000,
        parameters_source="Hub page bigcode/starcoderbase-1b: 'Model size 1.14B params' "
        "(the model card: '1B parameter model')",
        config_source=_HUB.format("bigcode/starcoderbase-1b"),
    ),
    "bloomz-1b1": PublishedGeometry(
        architecture="bloom",
        layers=24,
        hidden_size=1536,
        heads=16,
        kv_heads=16,
        intermediate_size=6144,
        vocab_size=250880,
        max_positions=2048,
        tied_embeddings=True,
        published_parameters=1_065_314_304,
        parameters_source="model card bigscience/bloom-1b1 (bloomz-1b1's base, same "
        "architecture): 1,065,314,304 parameters, 385,351,680 of them embedding",
        config_source=_HUB.format("bigscience/bloomz-1b1"),
    ),
    # Llama 2 architecture with grouped-query attention (4 KV heads), SwiGLU MLP 5 632, untied.
    "tinyllama": PublishedGeometry(
        architecture="llama",
        layers=22,
        hidden_size=2048,
        heads=32,
        kv_heads=4,
        intermediate_size=5632,
        vocab_size=32000,
        max_positions=2048,
        tied_embeddings=False,
        rotary_fraction=1.0,
        published_parameters=1_100_048_384,
        parameters_source="model card TinyLlama: '1.1B'; sum(p.numel()) of "
        "TinyLlama-1.1B-Chat-v1.0 in third-party logs: 1,100,048,384",
        config_source=_HUB.format("TinyLlama/TinyLlama-1.1B-Chat-v1.0"),
    ),
    "pythia-1.4b": PublishedGeometry(
        architecture="gpt_neox",
        layers=24,
        hidden_size=2048,
        heads=16,
        kv_heads=16,
        intermediate_size=8192,
        vocab_size=50304,
        max_positions=2048,
        tied_embeddings=False,
        rotary_fraction=0.25,
        config={"use_parallel_residual": True},
        published_parameters=1_414_647_808,
        parameters_source="Biderman et al. 2023 (Pythia), Table 1: 1,414,647,808 total parameters",
        config_source=_HUB.format("EleutherAI/pythia-1.4b"),
    ),
    # Gemma: multi-query (1 KV head) with head_dim 256 (8 x 256 = 2 048), GeGLU MLP 16 384,
    # 256 000-entry vocabulary tied to the head.
    "codegemma-2b": PublishedGeometry(
        architecture="gemma",
        layers=18,
        hidden_size=2048,
        heads=8,
        kv_heads=1,
        intermediate_size=16384,
        vocab_size=256000,
        max_positions=8192,
        tied_embeddings=True,
        head_dim=256,
        rotary_fraction=1.0,
        published_parameters=2_506_172_416,
        parameters_source="keras-hub gemma_presets.py, gemma_2b_en: params 2506172416 "
        "(CodeGemma 2B has Gemma 2B's architecture; its card: '2 billion parameter')",
        config_source=_HUB.format("google/codegemma-2b"),
    ),
    # Phi: rotary on 40 % of each head (partial_rotary_factor 0.4), untied head with a bias.
    "phi-2": PublishedGeometry(
        architecture="phi",
        layers=32,
        hidden_size=2560,
        heads=32,
        kv_heads=32,
        intermediate_size=10240,
        vocab_size=51200,
        max_positions=2048,
        tied_embeddings=False,
        rotary_fraction=0.4,
        published_parameters=2_779_683_840,
        parameters_source="Hub API HfApi.model_info('microsoft/phi-2'): 2,779,683,840 (the model "
        "card: 'a Transformer with 2.7 billion parameters')",
        config_source=_HUB.format("microsoft/phi-2"),
    ),
    "stablecode-3b": PublishedGeometry(
        architecture="gpt_neox",
        layers=32,
        hidden_size=2560,
        heads=32,
        kv_heads=32,
        intermediate_size=10240,
        vocab_size=49152,
        max_positions=4096,
        tied_embeddings=False,
        rotary_fraction=0.25,
        config={"use_parallel_residual": True},
        published_parameters=2_796_431_360,
        # The instruct card says only "3 billion"; its sister's card states 2,796,431,360, which
        # is 0.98 % above what this config (and the 6.08 GB fp16 checkpoint) hold: 2,769,310,720.
        parameters_source="model card stabilityai/stablecode-completion-alpha-3b-4k (same "
        "architecture; the instruct card: '3 billion parameter'): 2,796,431,360 parameters",
        config_source=_HUB.format("stabilityai/stablecode-instruct-alpha-3b"),
    ),
}
# The completion model has the instruct model's architecture; only the card it cites differs.
# The card's 2,796,431,360 is 0.98 % above what this config and the 6.08 GB fp16 checkpoint hold
# (2,769,310,720); litgpt's config.py vendors this config.json.
GEOMETRIES["stablecode-3b-completion"] = replace(
    GEOMETRIES["stablecode-3b"],
    parameters_source="model card stabilityai/stablecode-completion-alpha-3b-4k, Model "
    "Architecture table: 2,796,431,360 parameters",
    config_source=_HUB.format("stabilityai/stablecode-completion-alpha-3b-4k"),
)


def geometry(name: str) -> PublishedGeometry:
    try:
        return GEOMETRIES[name]
    except KeyError:
        raise ValueError(
            f"unknown stand-in geometry {name!r}; the workflow ships {sorted(GEOMETRIES)}"
        ) from None
