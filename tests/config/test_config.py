"""src/notelm/config/: the strict loader, the section dataclasses (one source of defaults and knob docs), the
model catalogue with its aliases and one experiment's overrides, and `notelm params`."""

from __future__ import annotations

import dataclasses
import typing

import pytest
import yaml

from notelm.config.knobs import default_of, knobs_text
from notelm.config.models import (
    ModelRow,
    find_row,
    model_row,
    model_rows,
    recorded_row,
    row_record,
)
from notelm.config.sections import SECTIONS, TOP_LEVEL
from notelm.config.train import Scheduler, TrainParams
from notelm.core.errors import ParamsError
from notelm.core.loader import field_docs, load_params, load_section
from notelm.core.paths import MODEL_CATALOGUE, SOURCE_RECORD

MATRIX = {"qwen3-0.6b": {"source": "Qwen/Qwen3-0.6B", "aliases": ["qwen3"], "max_length": 128},
          "smollm2-135m": {"source": "x", "aliases": ["smollm2"], "method": "qlora"}}
# params.yaml values that differ from their dataclass default on purpose: key -> why
DELIBERATE_OVERRIDES: dict[str, str] = {
    "train.canaries": "the default pipeline plants a few canaries for the memorize stage; a fine-tune of one's own "
                      "notes run from the dataclass gets none unless asked",
}


def test_every_section_and_catalogue_row_loads():
    params = load_params("params.yaml")
    for cls in SECTIONS.values():
        assert isinstance(load_section(cls, params), cls)
    for name, row in model_rows().items():
        assert row.name == name and row.method in ("full", "lora", "qlora")
    assert model_row(params).name == params["model"]


def test_params_yaml_is_the_defaults_and_every_knob_is_documented():
    params = yaml.safe_load(open("params.yaml", encoding="utf-8"))
    assert set(params) == {*TOP_LEVEL, *SECTIONS}
    for section, cls in SECTIONS.items():
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            key = f"{section}.{f.name}"
            assert docs.get(f.name, "").strip(), f"{key} has no attribute docstring in {cls.__module__}"
            if key not in DELIBERATE_OVERRIDES:
                assert params[section][f.name] == default_of(f), f"params.yaml {key} differs from its default"
    assert set(field_docs(ModelRow)) == {f.name for f in dataclasses.fields(ModelRow)}


def test_a_drifted_default_is_caught():
    params = yaml.safe_load(open("params.yaml", encoding="utf-8"))
    field = next(f for f in dataclasses.fields(TrainParams) if f.name == "epochs")
    assert params["train"]["epochs"] == default_of(field)
    assert {**params["train"], "epochs": 2}["epochs"] != default_of(field)


@pytest.mark.parametrize("section, key, value", [
    ("train", "resume", "sometimes"), ("train", "method", "adapters"), ("train", "batch_size", 0),
    ("train", "epocs", 1), ("train", "lr_scheduler", "cosine_annealing"), ("generate", "dtype", "int8"),
    ("generate", "limit", 0), ("generate", "max_new_tokens", "lots"), ("data", "fraction", 1.5),
    ("data", "split_by", "ward"), ("data", "history", 6), ("report", "dpi", 0), ("evaluate", "baselines", ["oracle"]),
])
def test_bad_values_and_unknown_keys_name_the_key(section, key, value):
    with pytest.raises(ParamsError, match=rf"{section}\.{key}"):
        load_section(SECTIONS[section], {section: {key: value}})


def test_a_literal_choice_lists_the_choices():
    with pytest.raises(ParamsError, match="expected one of linear, cosine, .*got 'cosine_annealing'"):
        load_section(TrainParams, {"train": {"lr_scheduler": "cosine_annealing"}})
    assert load_section(TrainParams, {"train": {"lr_scheduler": "linear"}}).lr_scheduler == "linear"


def test_the_scheduler_choices_are_transformers_schedulers():
    from transformers import SchedulerType

    assert set(typing.get_args(Scheduler)) <= {s.value for s in SchedulerType}


def test_numbers_are_checked_not_coerced_from_strings_or_booleans():
    with pytest.raises(ParamsError, match="expected an integer"):
        load_section(TrainParams, {"train": {"batch_size": "8"}})
    with pytest.raises(ParamsError, match="expected a number"):
        load_section(TrainParams, {"train": {"learning_rate": True}})
    assert load_section(TrainParams, {"train": {"epochs": 2}}).epochs == 2.0


@pytest.mark.parametrize("alias, row", [("qwen3", "qwen3-0.6b"), ("tinyllama", "tinyllama-1.1b"), ("opt", "opt-350m"),
                                        ("gpt2", "distilgpt2"), ("smollm2", "smollm2-135m"), ("gemma3", "gemma3-270m")])
def test_the_aliases_resolve_to_their_catalogue_rows(alias, row):
    assert model_row({"model": alias}).name == row


def test_an_alias_selects_its_row_and_the_row_name_wins():
    assert model_row({"model": "qwen3"}, catalogue=MATRIX).name == "qwen3-0.6b"
    assert model_row({"model": "qwen3-0.6b"}, catalogue=MATRIX).name == "qwen3-0.6b"


def test_unknown_model_lists_the_rows_and_their_aliases():
    with pytest.raises(ParamsError, match=r"'nope' has no row.*qwen3-0\.6b \(qwen3\), smollm2-135m \(smollm2\)"):
        model_row({"model": "nope"}, catalogue=MATRIX)


def test_an_alias_may_not_name_two_rows():
    clash = {**MATRIX, "qwen3-1.7b": {"source": "y", "aliases": ["qwen3"]}}
    with pytest.raises(ParamsError, match=r"qwen3-1\.7b\.aliases: 'qwen3' already names 'qwen3-0\.6b'"):
        model_rows(clash)
    with pytest.raises(ParamsError, match="already names 'smollm2-135m'"):
        model_rows({**MATRIX, "other": {"source": "z", "aliases": ["smollm2-135m"]}})


def test_bad_row_key_and_value_are_named():
    with pytest.raises(ParamsError, match=r"configs/models\.yaml: unknown key\(s\) a\.sorce"):
        model_row({"model": "a"}, catalogue={"a": {"sorce": "x"}})
    with pytest.raises(ParamsError, match="configs/models.yaml: a.method"):
        model_row({"model": "a"}, catalogue={"a": {"source": "x", "method": "adapter"}})


def test_overrides_change_the_selected_row_only():
    params = {"model": "qwen3", "model_overrides": {"trust_remote_code": True, "max_length": 64}}
    row = model_row(params, catalogue=MATRIX)
    assert row.name == "qwen3-0.6b" and row.trust_remote_code and row.max_length == 64
    assert not model_row(params, "smollm2", catalogue=MATRIX).trust_remote_code  # another row: untouched
    with pytest.raises(ParamsError, match=r"model_overrides\.trust_remote_cod\b"):
        model_row({**params, "model_overrides": {"trust_remote_cod": True}}, catalogue=MATRIX)
    with pytest.raises(ParamsError, match="model_overrides.name"):
        model_row({**params, "model_overrides": {"name": "x"}}, catalogue=MATRIX)


def test_the_recorded_row_round_trips(tmp_path):
    row = find_row(model_rows(MATRIX), "qwen3")
    (tmp_path / SOURCE_RECORD).write_text(__import__("json").dumps({"row": row_record(row)}))
    assert recorded_row(tmp_path) == row
    with pytest.raises(ParamsError, match="dvc repro base_model"):
        recorded_row(tmp_path / "absent")


def test_the_training_method_and_block_length_a_row_resolves_to():
    row = ModelRow(**MATRIX["qwen3-0.6b"], name="qwen3-0.6b")
    assert TrainParams().method_for(row) == "full" and TrainParams(method="lora").method_for(row) == "lora"
    assert TrainParams(max_length=256).block_length(row) == 128
    assert TrainParams(max_length=64).block_length(row) == 64


def test_notelm_params_prints_value_default_and_meaning():
    text = knobs_text({"train": {"epochs": 3.0}}, "train")
    assert "train.epochs = 3.0   (default: 1.0)" in text and "Passes over the train blocks." in text
    assert "train.lr_scheduler = 'cosine'\n" in text
    with pytest.raises(ParamsError, match="no params section 'trian'"):
        knobs_text({}, "trian")


def test_the_catalogue_is_no_params_file():
    assert "models" not in load_params("params.yaml")
    assert len(model_rows(MODEL_CATALOGUE)) >= 17
