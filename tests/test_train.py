"""The train stage on tiny random models: packing, full fine-tune, outputs, resume bookkeeping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import make_tokenizer
from transformers import AutoModelForCausalLM

from notelm.errors import NoteLMError, ParamsError
from notelm.params import ModelRow, TrainParams, load_section
from notelm.stages.train import (
    blocks,
    build_dataset,
    collate_blocks,
    fingerprint,
    resume_point,
    train,
    training_text,
)


def test_packing_fills_blocks_and_padding_is_not_scored():
    tok = make_tokenizer()
    texts = [training_text({"prompt": "Pt alert", "target": "and oriented x3."}, tok.eos_token)] * 10
    packed = list(blocks(texts, tok, 16, packing=True))
    assert all(len(b["input_ids"]) == 16 and b["attention_mask"] == [1] * 16 for b in packed)
    padded = collate_blocks(list(blocks(texts, tok, 16, packing=False)))
    n = int(padded["attention_mask"][0].sum())
    assert n < 16 and padded["labels"][0][n:].tolist() == [-100] * (16 - n)
    assert padded["labels"][0][:n].tolist() == padded["input_ids"][0][:n].tolist()


def reference_blocks(texts: list[str], tokenizer, max_length: int, packing: bool) -> dict[str, list[list[int]]]:
    """The blocks as the train stage made them before streaming: the whole split tokenised at once."""
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
    if packing:
        flat = [t for seq in ids for t in seq]
        n = max(1, len(flat) // max_length)
        chunks = [flat[i * max_length:(i + 1) * max_length] for i in range(n)]
        return {"input_ids": chunks, "labels": chunks}
    pad = tokenizer.pad_token_id
    return {"input_ids": [s[:max_length] + [pad] * (max_length - len(s[:max_length])) for s in ids],
            "labels": [s[:max_length] + [-100] * (max_length - len(s[:max_length])) for s in ids]}


@pytest.mark.parametrize("packing", [True, False])
@pytest.mark.parametrize("n_rows", [1, 7, 40])
def test_the_streamed_dataset_holds_the_same_blocks_in_the_same_order(tmp_path, packing, n_rows):
    """Streamed in batches (smaller than the split) through a memory-mapped Arrow table, labels made by the
    collator: the very blocks and labels of tokenising the whole split at once."""
    tok = make_tokenizer()
    rows = [{"prompt": f"Pt {i} alert and oriented", "target": "HR 80s NSR. " * (i % 5 + 1)} for i in range(n_rows)]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dataset = build_dataset(path, tok, 16, packing, cache_dir=tmp_path / "cache")
    want = reference_blocks([training_text(r, tok.eos_token) for r in rows], tok, 16, packing)
    assert dataset["input_ids"] == want["input_ids"]
    assert collate_blocks([dataset[i] for i in range(len(dataset))])["labels"].tolist() == want["labels"]
    assert list(blocks([training_text(r, tok.eos_token) for r in rows], tok, 16, packing, batch=3)) == \
        list(blocks([training_text(r, tok.eos_token) for r in rows], tok, 16, packing, batch=1000))


def test_a_changed_split_is_not_read_from_the_cache(tmp_path):
    tok = make_tokenizer()
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"prompt": "Pt alert", "target": "HR 80s."}) + "\n")
    first = build_dataset(path, tok, 8, True, cache_dir=tmp_path / "cache")["input_ids"]
    assert build_dataset(path, tok, 8, True, cache_dir=tmp_path / "cache")["input_ids"] == first  # from the cache
    assert len(list((tmp_path / "cache").rglob("*.arrow"))) == 1
    path.write_text(json.dumps({"prompt": "Foley draining", "target": "clear yellow urine."}) + "\n")
    assert build_dataset(path, tok, 8, True, cache_dir=tmp_path / "cache")["input_ids"] != first
    path.write_text("\n\n")
    with pytest.raises(NoteLMError, match="no examples"):
        build_dataset(path, tok, 8, True, cache_dir=tmp_path / "cache")


def test_train_config_rejects_bad_values():
    with pytest.raises(ParamsError, match="train.method"):
        load_section(TrainParams, {"train": {"method": "adapters"}}, "train")
    with pytest.raises(ParamsError, match="train.batch_size"):
        load_section(TrainParams, {"train": {"batch_size": 0}}, "train")
    with pytest.raises(ParamsError, match="train.epocs"):
        load_section(TrainParams, {"train": {"epocs": 1}}, "train")


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_full_finetune_writes_a_loadable_checkpoint_and_dvclive_metrics(prepared, tiny_model_factory, monkeypatch,
                                                                         family):
    monkeypatch.chdir(prepared)
    spec = ModelRow(name="tiny", source="unused", family=family)
    cfg = TrainParams(max_steps=3, batch_size=4, max_length=32, precision="fp32", learning_rate=1e-3)
    summary = train(cfg, spec, tiny_model_factory(family))
    assert summary["steps"] == 3 and summary["method"] == "full"
    assert summary["best_val_loss"] is not None
    out = prepared / "models/finetuned"
    assert (out / "model.safetensors").is_file()
    AutoModelForCausalLM.from_pretrained(out)
    assert json.loads((out / "notelm_train.json").read_text())["steps"] == 3
    live = json.loads((prepared / "dvclive/metrics.json").read_text())
    assert "eval" in live and "train" in live and live["step"] == 3
    assert "runtime" not in live["train"] and "samples_per_second" not in live["eval"]  # wall clock: logs/ only
    assert json.loads((prepared / "logs/train.json").read_text())["train_runtime"] > 0
    assert "learning_rate: 0.001" in (prepared / "dvclive/params.yaml").read_text()  # the TrainingArguments


def test_the_same_run_writes_byte_identical_outputs(prepared, tiny_model_factory, monkeypatch):
    """Nothing that changes from run to run (times, timestamps) reaches a DVC output: dvc.lock stays as it was."""
    monkeypatch.chdir(prepared)
    row = ModelRow(name="tiny", source="unused")
    cfg = TrainParams(max_steps=3, batch_size=4, max_length=32, precision="fp32", resume="never")

    def outputs():
        return {str(p.relative_to(prepared)): p.read_bytes() for d in ("models/finetuned", "dvclive")
                for p in sorted((prepared / d).rglob("*")) if p.is_file()}

    train(cfg, row, tiny_model_factory("llama"))
    first = outputs()
    train(cfg, row, tiny_model_factory("llama"))
    assert outputs() == first and "models/finetuned/model.safetensors" in first


def test_rerunning_a_finished_run_resumes_at_its_end_and_writes_the_same_outputs(prepared, tiny_model_factory,
                                                                                  monkeypatch):
    """`dvc repro` after an edit that shapes no weights: the final checkpoint is resumed, nothing is trained,
    and the outputs (train loss included) are byte-identical, so the stages after train stay cached."""
    monkeypatch.chdir(prepared)
    row = ModelRow(name="tiny", source="unused")
    # by epochs, as the default run: the Trainer resumed at the end of a max_steps run mid-epoch trains one step more
    cfg = TrainParams(epochs=1, batch_size=8, max_length=32, precision="fp32", logging_steps=5)

    def outputs():
        return {str(p.relative_to(prepared)): p.read_bytes() for d in ("models/finetuned", "dvclive")
                for p in sorted((prepared / d).rglob("*")) if p.is_file()}

    first_record = train(cfg, row, tiny_model_factory("llama"))
    first = outputs()
    again = train(cfg, row, tiny_model_factory("llama"))
    resumed_from = json.loads((prepared / "logs/train.json").read_text())["resumed_from"]
    assert resumed_from.endswith(f"checkpoint-{again['steps']}")
    assert outputs() == first
    assert again["train_loss"] == first_record["train_loss"] > 0


def test_fingerprint_changes_with_params_and_data(prepared):
    row = ModelRow(name="tiny", source="x")
    data = prepared / "data/prepared"
    a = fingerprint(TrainParams(), row, data)
    assert a == fingerprint(TrainParams(), row, data)
    assert a == fingerprint(TrainParams(resume="never", check_memory=False), row, data)  # these shape no weights
    changed = fingerprint(TrainParams(learning_rate=1e-4), row, data)
    assert changed["run_id"] != a["run_id"] and changed["parts"]["params"] != a["parts"]["params"]
    (data / "train.jsonl").write_text((data / "train.jsonl").read_text()[:-200] + "\n")
    assert fingerprint(TrainParams(), row, data)["parts"]["data"] != a["parts"]["data"]


def test_fingerprint_changes_with_base_weights_and_training_code(prepared, tiny_model_factory, tmp_path, monkeypatch):
    import shutil

    import notelm.stages.train as train_module

    row = ModelRow(name="tiny", source="x")
    data = prepared / "data/prepared"
    base = tmp_path / "base"
    shutil.copytree(tiny_model_factory("llama"), base)
    code = tmp_path / "code"
    code.mkdir()
    copies = tuple(Path(shutil.copy(path, code / path.name)) for path in train_module.TRAINING_CODE)
    assert {p.name for p in copies} == {"train.py", "loss.py", "weights.py"}
    monkeypatch.setattr(train_module, "TRAINING_CODE", copies)

    a = fingerprint(TrainParams(), row, data, base)
    assert a == fingerprint(TrainParams(), row, data, base)
    weights = base / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")
    b = fingerprint(TrainParams(), row, data, base)
    assert b["parts"]["base weights"] != a["parts"]["base weights"]
    (code / "loss.py").write_text((code / "loss.py").read_text() + "\n# a fix\n")
    assert fingerprint(TrainParams(), row, data, base)["parts"]["training code"] != b["parts"]["training code"]


def _checkpoint(root: Path, step: int, complete: bool = True) -> Path:
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def test_resume_point_says_why_it_resumes_starts_fresh_or_discards(tmp_path):
    run = {"run_id": "a", "parts": {"params": "p", "data": "d"}}
    ckpt = tmp_path / "ckpt"
    assert resume_point(ckpt, run, "auto") == (None, f"no checkpoint in {ckpt}: starting fresh")

    ckpt.mkdir()
    (ckpt / "notelm_run.json").write_text(json.dumps(run))
    _checkpoint(ckpt, 5)
    _checkpoint(ckpt, 10, complete=False)  # cut short by a kill: ignored and removed
    path, why = resume_point(ckpt, run, "auto")
    assert path == str(ckpt / "checkpoint-5") and why == f"resuming this very run from {path} (step 5)"
    assert not (ckpt / "checkpoint-10").exists()

    other = {"run_id": "b", "parts": {"params": "p", "data": "changed"}}
    path, why = resume_point(ckpt, other, "auto", clean=False)
    assert path is None and "of an earlier run (changed: data); starting fresh" in why and ckpt.exists()

    path, why = resume_point(ckpt, run, "never")
    assert path is None and why.startswith("train.resume=never: discarding") and not ckpt.exists()


def test_a_wordpiece_note_ends_with_one_end_marker(tmp_path):
    """BERT-style tokenizers append [SEP] themselves (made the EOS): a training note gets no second one."""
    from tiny import make_chinese_tokenizer

    from notelm.weights import prepare_tokenizer

    tok = prepare_tokenizer(make_chinese_tokenizer())
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"prompt": "患者神志", "target": "清楚"}, ensure_ascii=False) + "\n", encoding="utf-8")
    row = build_dataset(path, tok, 32, packing=False, cache_dir=tmp_path / "cache")[0]
    ids = [i for i, m in zip(row["input_ids"], row["attention_mask"]) if m]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id and ids.count(tok.sep_token_id) == 1
    assert len(ids) == 2 + 6
