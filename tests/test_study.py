"""study.py: the study's grid as DVC experiment commands, and its published tables beside ours."""

from __future__ import annotations

from pathlib import Path

import pytest

from notelm import study
from notelm.config.models import model_row
from notelm.config.names import HEADLINE
from notelm.core.loader import load_params

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_every_preset_names_a_model_row_and_valid_params():
    params = load_params()
    names = {p.name for p in study.presets()}
    assert {"gpt2-all", "gpt2-5pct", "gpt2-5000", "tinyllama-qlora", "qwen3-full", "opt-10pct"} <= names
    for preset in study.presets():
        model_row(params, preset.model)
        for key in preset.set:
            section, _, field = key.partition(".")
            assert field in params[section], (preset.name, key)


def test_the_seed_recipes_become_dvc_experiment_commands():
    by_name = {p.name: p for p in study.presets()}
    assert by_name["qwen3-full"].command() == [
        "dvc", "exp", "run", "--queue", "-n", "qwen3-full", "-S", "model=qwen3-0.6b", "-S", "train.method=full",
        "-S", "data.fraction=50000", "-S", "train.max_length=128", "-S", "train.epochs=1", "-S", "train.batch_size=1"]
    assert "data.fraction=0.05" in by_name["gpt2-5pct"].command(queue=False)
    assert "--queue" not in by_name["gpt2-5pct"].command(queue=False)


def test_offline_keeps_only_the_rows_whose_weights_are_here(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty hub cache
    text = study.grid(offline_only=True)
    assert "-n smollm2-default" in text and "-n gemma3-default" in text
    assert "# qwen3-full: skipped, the weights of qwen3-0.6b are not here" in text
    assert "-n qwen3-full" not in text


def test_the_published_figures_are_the_study_s_tables():
    figures = study.published()
    assert figures["pre-train", "distilgpt2"]["rouge1"] == 0.3185
    assert figures["fine-tune", "GPT2_5%"]["bertscore_f1"] == 0.9635
    assert all(set(values) == set(HEADLINE) for values in figures.values())


def _row(variant: str, model: str, runs: str, value: float, way: float) -> dict:
    return {"variant": variant, "model": model, "runs": runs,
            **{k: value for k in HEADLINE}, **{f"study_{k}": way for k in HEADLINE}}


def test_study_tables_put_the_study_beside_ours_and_its_way():
    rows = [_row("pretrained", "distilgpt2", "gpt2-5pct", 0.02, 0.71), _row("finetuned", "distilgpt2", "gpt2-5pct", 0.4, 0.8),
            _row("pretrained", "smollm2-135m", "main", 0.03, 0.72), _row("finetuned", "smollm2-135m", "main", 0.5, 0.85)]
    text = study.study_tables(rows)
    assert "### pre-train" in text and "### fine-tune" in text and "### all" in text
    assert "| rouge1 | 0.319 / 0.020 / 0.710 |" in text  # distilgpt2 pre-trained: study / ours / ours the study's way
    assert "0.813 / 0.400 / 0.800" in text  # GPT2_5%
    assert "0.197 / – / –" in text  # TinyLlama fine-tuned: not run here
    assert "smollm2-135m*" in text and "– / 0.500 / 0.850" in text  # ours the study did not have
