"""params.py: the typed sections, the model matrix and its aliases, and the values derived from them."""

from __future__ import annotations

import pytest

from notelm.errors import ParamsError
from notelm.params import (
    SECTIONS,
    ModelRow,
    TrainParams,
    load_params,
    load_section,
    model_row,
    model_rows,
)

MATRIX = {"qwen3-0.6b": {"source": "Qwen/Qwen3-0.6B", "aliases": ["qwen3"], "max_length": 128},
          "smollm2-135m": {"source": "x", "aliases": ["smollm2"], "method": "qlora"}}


def test_every_section_and_row_of_params_yaml_loads():
    params = load_params("params.yaml")
    for name, cls in SECTIONS.items():
        assert isinstance(load_section(cls, params, name), cls)
    for name, row in model_rows(params).items():
        assert row.name == name and row.method in ("full", "lora", "qlora")
    assert model_row(params).name in params["models"]


@pytest.mark.parametrize("alias, row", [("qwen3", "qwen3-0.6b"), ("tinyllama", "tinyllama-1.1b"), ("opt", "opt-350m"),
                                        ("gpt2", "distilgpt2"), ("smollm2", "smollm2-135m"), ("gemma3", "gemma3-270m")])
def test_the_issue_aliases_resolve_to_their_rows(alias, row):
    params = load_params("params.yaml")
    assert model_row({**params, "model": alias}).name == row


def test_an_alias_selects_its_row_and_the_row_name_wins():
    assert model_row({"model": "qwen3", "models": MATRIX}).name == "qwen3-0.6b"
    assert model_row({"model": "qwen3-0.6b", "models": MATRIX}).name == "qwen3-0.6b"


def test_unknown_model_lists_the_rows_and_their_aliases():
    with pytest.raises(ParamsError, match=r"'nope' has no row.*qwen3-0\.6b \(qwen3\), smollm2-135m \(smollm2\)"):
        model_row({"model": "nope", "models": MATRIX})


def test_an_alias_may_not_name_two_rows():
    clash = {**MATRIX, "qwen3-1.7b": {"source": "y", "aliases": ["qwen3"]}}
    with pytest.raises(ParamsError, match=r"models\.qwen3-1\.7b\.aliases: 'qwen3' already names 'qwen3-0\.6b'"):
        model_rows({"models": clash})
    with pytest.raises(ParamsError, match="already names 'smollm2-135m'"):
        model_rows({"models": {**MATRIX, "other": {"source": "z", "aliases": ["smollm2-135m"]}}})


def test_bad_row_key_and_value_are_named():
    with pytest.raises(ParamsError, match="models.a.sorce"):
        model_row({"model": "a", "models": {"a": {"sorce": "x"}}})
    with pytest.raises(ParamsError, match="models.a.method"):
        model_row({"model": "a", "models": {"a": {"source": "x", "method": "adapter"}}})


def test_the_training_method_and_block_length_a_row_resolves_to():
    row = ModelRow(**MATRIX["qwen3-0.6b"], name="qwen3-0.6b")
    assert TrainParams().method_for(row) == "full" and TrainParams(method="lora").method_for(row) == "lora"
    assert TrainParams(max_length=256).block_length(row) == 128
    assert TrainParams(max_length=64).block_length(row) == 64


@pytest.mark.parametrize("section, key, value", [
    ("train", "resume", "sometimes"), ("train", "method", "adapters"), ("train", "batch_size", 0),
    ("train", "epocs", 1), ("generate", "dtype", "int8"), ("generate", "limit", 0), ("data", "fraction", 1.5),
    ("report", "dpi", 0), ("evaluate", "baselines", ["oracle"]),
])
def test_bad_values_and_unknown_keys_name_the_key(section, key, value):
    with pytest.raises(ParamsError, match=rf"{section}\.{key}"):
        load_section(SECTIONS[section], {section: {key: value}}, section)


def test_numbers_are_checked_not_coerced_from_strings_or_booleans():
    with pytest.raises(ParamsError, match="expected an integer"):
        load_section(TrainParams, {"train": {"batch_size": "8"}}, "train")
    with pytest.raises(ParamsError, match="expected a number"):
        load_section(TrainParams, {"train": {"learning_rate": True}}, "train")
    assert load_section(TrainParams, {"train": {"epochs": 2}}, "train").epochs == 2.0
