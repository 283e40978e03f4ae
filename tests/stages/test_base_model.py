"""The base_model stage: any source becomes a plain safetensors checkpoint; a failure leaves nothing behind."""

from __future__ import annotations

import json
import time

import pytest
from transformers import AutoModelForCausalLM

from notelm.config.models import ModelRow
from notelm.core.errors import WeightsUnavailable
from notelm.core.loader import load_params
from notelm.stages.base_model import Paths, materialize_base, run


def test_local_dir_is_materialised_as_loadable_safetensors(tiny_model_factory, tmp_path):
    spec = ModelRow(name="tiny", source=str(tiny_model_factory("gpt2")))
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
        materialize_base(ModelRow(name="gone", source=str(tmp_path / "missing")), out)
    assert (out / "marker").read_text() == "old"


def test_uncached_hub_id_offline_fails_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    start = time.time()
    params = load_params("params.yaml")
    with pytest.raises(WeightsUnavailable) as info:
        run({**params, "model": "qwen3"}, Paths(out=str(tmp_path / "out")))  # the alias selects the row
    assert time.time() - start < 30
    message = str(info.value)
    assert "qwen3-0.6b" in message and "Qwen/Qwen3-0.6B" in message
    assert "Hugging Face cache" in message and "models.qwen3-0.6b.source" in message
    assert not (tmp_path / "out").exists()


def test_an_alias_writes_the_row_under_its_own_name(tiny_model_factory, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    catalogue = tmp_path / "models.yaml"
    catalogue.write_text(json.dumps({"tiny-2l": {"source": str(tiny_model_factory("llama")), "aliases": ["tiny"]}}))
    record = run({"model": "tiny"}, Paths(catalogue=str(catalogue)))
    assert record["model"] == "tiny-2l"
    written = json.loads((tmp_path / "models/base/tiny/notelm_source.json").read_text())
    assert written["model"] == "tiny-2l" and written["row"]["name"] == "tiny-2l"  # the resolved row, for later stages
