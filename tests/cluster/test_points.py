"""cluster/points.py: grid files (presets and matrices) as points, their `-S` arguments, the shared stages."""

from __future__ import annotations

import pytest
import yaml

from notelm.cluster import points
from notelm.core.errors import NoteLMError


def write(tmp_path, data) -> str:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False) if not isinstance(data, str) else data)
    return str(path)


def test_a_matrix_is_every_combination_with_the_fixed_sets(tmp_path):
    grid = points.load(write(tmp_path, {"name": "small", "matrix": {"model": ["smollm2", "gemma3"],
                                                                    "data.fraction": [0.05, 0.5]},
                                        "set": {"train.epochs": 1}}))
    assert [p.name for p in grid] == ["small-smollm2-0.05", "small-smollm2-0.5", "small-gemma3-0.05",
                                      "small-gemma3-0.5"]
    assert grid[1].overrides == {"model": "smollm2", "data.fraction": 0.5, "train.epochs": 1}
    assert grid[1].command() == ["dvc", "exp", "run", "-n", "small-smollm2-0.5", "-S", "model=smollm2",
                                 "-S", "data.fraction=0.5", "-S", "train.epochs=1"]


def test_presets_are_points_and_the_study_grid_loads(tmp_path):
    grid = points.load(write(tmp_path, {"a": {"model": "gemma3", "column": "x", "set": {"train.method": "lora"}}}))
    assert grid == [points.Point("a", {"model": "gemma3", "train.method": "lora"})]
    study = points.load("study/grid.yaml")
    assert len(study) > 5 and all("model" in p.overrides for p in study)


def test_values_are_yaml_and_names_are_git_ref_safe(tmp_path):
    grid = points.load(write(tmp_path, {"matrix": {"follow.taus": [[0.1, 0.2]], "train.method": ["lora"]}}))
    assert grid[0].sets() == ["follow.taus=[0.1, 0.2]", "train.method=lora"]
    assert grid[0].name == "0.1_0.2_-lora"
    with pytest.raises(NoteLMError, match="cannot name an experiment"):
        points.ref_name("..", tmp_path)


@pytest.mark.parametrize("data, message", [
    ({"matrix": {"model": "smollm2"}}, "matrix.model: expected a non-empty list"),
    ({"matrix": {"model": ["a"]}, "sets": {}}, "unknown keys \\['sets'\\]"),
    ({"matrix": {"a": [1, 1]}}, "two points are named '1'"),
    ({"x": {"model": "a", "set": [1]}}, "preset 'x': expected"),
    ("[1, 2]", "expected a mapping"),
])
def test_a_malformed_grid_names_the_file_and_the_entry(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(NoteLMError, match=message) as info:
        points.load(path)
    assert path in str(info.value)


def test_a_missing_grid_file_says_what_a_grid_is(tmp_path):
    with pytest.raises(NoteLMError, match="not found .*matrix"):
        points.load(tmp_path / "nope.yaml")


def test_apply_sets_dotted_keys_on_a_copy():
    params = {"model": "a", "train": {"epochs": 1, "lr": 0.1}}
    out = points.apply(params, {"train.epochs": 3, "model": "b", "++model_overrides.dtype": "bfloat16"})
    assert out == {"model": "b", "train": {"epochs": 3, "lr": 0.1}, "model_overrides": {"dtype": "bfloat16"}}
    assert params["train"]["epochs"] == 1
    with pytest.raises(NoteLMError, match="model is not a section"):
        points.apply(params, {"model.x": 1})
    with pytest.raises(NoteLMError, match=r"-S train.epoch: params.yaml has no such key.*\+\+train.epoch"):
        points.apply(params, {"train.epoch": 3})  # a typo dvc exp run -S would refuse on the node
    with pytest.raises(NoteLMError, match="has no 'evaluate' there"):
        points.apply(params, {"evaluate.seed": 3})
    assert points.apply(params, {"+evaluate.seed": 3})["evaluate"] == {"seed": 3}


STAGES = {  # name -> (params it reads, its upstream stages), as dvc_stages gives them
    "synthesize": (["synthetic"], []),
    "prepare": (["data"], ["synthesize"]),
    "base_model": (["model", "model_overrides"], []),
    "train": (["model", "train"], ["prepare", "base_model", "synthesize"]),
    "generate_pretrained": (["model", "generate", "data.max_target_words"], ["base_model", "prepare", "synthesize"]),
    "report": (["report", "data.fraction"], ["train", "prepare", "synthesize", "base_model"]),
}


@pytest.mark.parametrize("overrides, shared", [
    ([{"train.max_steps": 2}], ["synthesize", "prepare", "base_model", "generate_pretrained"]),
    ([{"train.max_steps": 2}, {"data.fraction": 0.5}], ["synthesize", "base_model"]),  # a section's leaf
    ([{"data.max_target_words": 9}], ["synthesize", "base_model"]),                      # ... or the section
    ([{"model": "gemma3"}], ["synthesize", "prepare"]),
    ([{"data": {"fraction": 0.5}}], ["synthesize", "base_model"]),                       # a whole section
])
def test_shared_stages_are_those_no_point_changes_upstream_or_here(overrides, shared):
    grid = [points.Point(f"p{i}", o) for i, o in enumerate(overrides)]
    assert points.shared_stages(grid, STAGES) == shared


def test_dvc_stages_reads_the_repository_s_pipeline():
    stages = points.dvc_stages()
    assert list(stages)[:3] == ["synthesize", "prepare", "audit"]
    assert stages["train"][0] == ["model", "train"] and "prepare" in stages["train"][1]
    assert points.shared_stages([points.Point("x", {"train.max_steps": 2})], stages) == [
        "synthesize", "prepare", "audit", "base_model", "generate_pretrained"]


def test_the_study_s_presets_share_only_the_synthetic_corpus():  # docs/cluster.md says so
    assert points.shared_stages(points.load("study/grid.yaml"), points.dvc_stages()) == ["synthesize"]
