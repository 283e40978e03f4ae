"""generation/decoding.py: batched greedy equals one at a time, prompts keep their end, only the target is scored."""

from __future__ import annotations

import math

import pytest
import torch

from notelm.config.generate import GenerateParams
from notelm.generation.decoding import (
    complete,
    decode,
    joint_ids,
    prompt_ids,
    stream_completion,
    target_nll,
)
from notelm.training.weights import load_checkpoint
from tests.tiny import CORPUS, make_config, make_tiny_chinese_model, make_tokenizer


def test_batched_greedy_equals_one_at_a_time(tiny_model_factory):
    model, tok = load_checkpoint(tiny_model_factory("llama"))
    prompts = ["Pt alert and", "LS clear bilaterally, RA sats 97%. Abd soft", "Plan:", "Skin intact. Pain"]
    batched = complete(model, tok, prompts, GenerateParams(max_new_tokens=6, batch_size=4))
    single = [complete(model, tok, [p], GenerateParams(max_new_tokens=6, batch_size=1))[0] for p in prompts]
    assert [b["completion"] for b in batched] == [s["completion"] for s in single]
    assert [b["prompt_tokens"] for b in batched] == [len(tok(p)["input_ids"]) for p in prompts]


def test_streaming_equals_the_batched_text(tiny_model_factory):
    model, tok = load_checkpoint(tiny_model_factory("gpt2"))
    cfg = GenerateParams(max_new_tokens=6, batch_size=1)
    (batched,) = complete(model, tok, ["Pt alert and"], cfg)
    *_, (text, tokens) = stream_completion(model, tok, "Pt alert and", cfg)
    assert text == batched["completion"]
    assert tokens == batched["completion_tokens"]


def test_a_wordpiece_prompt_is_continued_not_ended(tmp_path):
    """BERT-style tokenizers wrap a text in [CLS] … [SEP]: the prompt keeps [CLS] but not the [SEP] (a model
    continuing after an end marker starts a new text), [SEP] becomes the EOS, and Chinese comes back joined."""
    model, tok = load_checkpoint(make_tiny_chinese_model(tmp_path / "zh"))
    ids = prompt_ids(tok, "患者神志清楚")
    assert ids[0] == tok.cls_token_id and ids[-1] != tok.sep_token_id and len(ids) == 1 + 6
    assert tok.eos_token_id == tok.sep_token_id
    (out,) = complete(model, tok, ["患者神志清楚"], GenerateParams(max_new_tokens=5, do_sample=True, seed=3))
    assert out["completion"] and " " not in out["completion"]
    assert decode(tok, tok.convert_tokens_to_ids(list("患者")) + [tok.sep_token_id]) == "患者"


def test_long_prompts_keep_their_end(tiny_model_factory):
    model, tok = load_checkpoint(tiny_model_factory("llama"))
    long_prompt = "Pt alert and oriented x3. " * 50
    (res,) = complete(model, tok, [long_prompt], GenerateParams(max_new_tokens=2, max_prompt_tokens=20))
    assert res["prompt_tokens"] == 20


def sentencepiece_tokenizer():
    """A SentencePiece-style (Metaspace, `▁` for spaces) BPE tokenizer trained on the tiny corpus, as a fast HF one."""
    from tokenizers import SentencePieceBPETokenizer
    from transformers import PreTrainedTokenizerFast

    sp = SentencePieceBPETokenizer()
    sp.train_from_iterator(CORPUS * 4, vocab_size=300, special_tokens=["<s>", "</s>", "<pad>"])
    return PreTrainedTokenizerFast(tokenizer_object=sp, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def model_for(tokenizer):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(make_config("llama", tokenizer)).eval()


PAIRS = [("Pt alert and", "oriented x3, follows commands."), ("Plan: continue to monitor, wean", "levophed as tolerated"),
         ("Skin intact. Pain", "controlled with PRN tylenol.")]


@pytest.mark.parametrize("kind", ["byte-level BPE", "SentencePiece"])
def test_joint_target_nll_equals_a_full_sequence_forward_pass(kind):
    tok = make_tokenizer() if kind == "byte-level BPE" else sentencepiece_tokenizer()
    model = model_for(tok)
    batched = target_nll(model, tok, [p for p, _ in PAIRS], [t for _, t in PAIRS], GenerateParams(batch_size=2))
    for (nll, n), (prompt, target) in zip(batched, PAIRS):
        enc = tok(f"{prompt} {target}", return_offsets_mapping=True)
        ids = enc["input_ids"]
        scored = [i for i, (_, end) in enumerate(enc["offset_mapping"]) if end > len(prompt)]
        assert tok.decode([ids[i] for i in scored]).strip() == target  # exactly the target's tokens
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
        expected = -sum(logp[i - 1, ids[i]].item() for i in scored)
        assert n == len(scored)
        assert math.isclose(nll, expected, rel_tol=1e-4)


def test_a_logits_budget_splits_the_batch_without_changing_the_likelihoods(monkeypatch):
    import notelm.generation.decoding

    tok = make_tokenizer()
    model = model_for(tok)
    prompts, targets = [p for p, _ in PAIRS], [t for _, t in PAIRS]
    whole = target_nll(model, tok, prompts, targets, GenerateParams(batch_size=3))
    monkeypatch.setattr(notelm.generation.decoding, "LOGITS_BYTES", 1)  # one row per forward pass
    split = target_nll(model, tok, prompts, targets, GenerateParams(batch_size=3))
    assert [n for _, n in split] == [n for _, n in whole]
    assert all(math.isclose(a, b, rel_tol=1e-5) for (a, _), (b, _) in zip(split, whole))


def test_joint_ids_keep_the_prompts_end_and_every_target_token():
    tok = sentencepiece_tokenizer()
    ids, n = joint_ids(tok, "Pt alert and oriented x3. " * 20, "follows commands", max_prompt_tokens=5)
    assert len(ids) == 5 + n and tok.decode(ids[-n:]).strip() == "follows commands"


def test_a_slow_tokenizer_without_offsets_is_cut_at_the_shared_prefix():
    tok = make_tokenizer()

    class Slow:  # the fast tokenizer seen through the interface a slow one offers
        is_fast = False

        def __call__(self, text, **kwargs):
            return {"input_ids": tok(text)["input_ids"]}

    assert joint_ids(Slow(), "Pt alert and", "oriented x3.") == joint_ids(tok, "Pt alert and", "oriented x3.")


def test_cjk_is_joined_only_for_wordpiece_decoders_and_line_breaks_stay():
    from notelm.generation.decoding import join_cjk
    from tests.tiny import make_chinese_tokenizer

    assert join_cjk(make_chinese_tokenizer(), "患 者 神 志\n计 划 ： 继 续") == "患者神志\n计划：继续"
    assert join_cjk(make_tokenizer(), "患 者\n计划") == "患 者\n计划"  # a byte-level decoder's spaces are the text's


def test_decoding_stops_at_the_word_cap_and_says_why(tiny_model_factory):
    model, tok = load_checkpoint(tiny_model_factory("llama"))
    prompts = ["Pt alert and", "LS clear bilaterally, RA sats 97%. Abd soft", "Plan:"]
    for result in complete(model, tok, prompts, GenerateParams(max_new_tokens=60, batch_size=3), word_cap=3):
        words = len(result["completion"].split())
        assert words == 4 if result["stop"] == "word_cap" else words <= 4  # the 4th word begun: the 3rd complete
    script = ScriptedModel(tok(" HR 88 SR, BP 120/60.", add_special_tokens=False)["input_ids"])
    for result in complete(script, tok, prompts, GenerateParams(max_new_tokens=60, batch_size=2), word_cap=3):
        assert result["stop"] == "word_cap" and result["completion"].split() == ["HR", "88", "SR,", "BP"]
    (short,) = complete(model, tok, ["Plan:"], GenerateParams(max_new_tokens=1), word_cap=50)
    assert short["stop"] in ("budget", "eos") and short["completion_tokens"] == 1


def test_rounds_give_the_continuations_of_one_long_round(tiny_model_factory):
    """Rows still writing after a round go on from their own tokens: the same greedy text as one round."""
    model, tok = load_checkpoint(tiny_model_factory("llama"))
    prompts = ["Pt alert and", "LS clear bilaterally, RA sats 97%. Abd soft", "Plan:", "Skin intact. Pain"]
    cfg = GenerateParams(max_new_tokens=24, batch_size=2)
    whole = complete(model, tok, prompts, cfg, word_cap=12)
    rounds = complete(model, tok, prompts, cfg, word_cap=12, round_tokens=5)
    assert [(r["completion"], r["stop"], r["completion_tokens"]) for r in rounds] == \
        [(r["completion"], r["stop"], r["completion_tokens"]) for r in whole]


class ScriptedModel:
    """A stand-in for a causal LM whose greedy output is fixed: it writes `script`'s tokens, one per step, calling
    the stopping criteria as transformers' generate does. It stands for a model that writes digit runs."""

    _can_compile_fullgraph = False

    def __init__(self, script: list[int]):
        self.script, self.device = script, torch.device("cpu")
        self.config = type("Config", (), {"max_position_embeddings": 100_000})()

    def generate(self, input_ids, attention_mask, max_new_tokens, stopping_criteria, pad_token_id, **kwargs):
        done = torch.zeros(len(input_ids), dtype=torch.bool)
        for step in range(max_new_tokens):
            written = input_ids.shape[1]
            token = torch.tensor([[self.script[step % len(self.script)]]] * len(input_ids))
            input_ids = torch.cat([input_ids, torch.where(done[:, None], pad_token_id, token)], 1)
            for criterion in stopping_criteria:
                done |= criterion(input_ids, None)
            if done.all() or written < 0:
                break
        return input_ids


def test_no_continuation_runs_out_of_budget_below_the_word_cap_when_digits_are_split():
    """A tokenizer that splits every digit spends many tokens on a vital sign; the auto budget (the cap × the most
    tokens one reference word takes × the margin) still lets a model that writes such words reach the cap."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from notelm.generation.decoding import token_budget

    vocab = {"<eos>": 0, "<pad>": 1, **{c: i + 2 for i, c in enumerate("0123456789-/%,.:ABHPRSTO abdeilnorst")}}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    raw.pre_tokenizer = pre_tokenizers.Split("", "isolated")  # one token per character: digits split
    raw.decoder = decoders.Fuse()  # characters joined back as they were
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<eos>", pad_token="<pad>")
    assert decode(tok, tok(" 123-148/47-60, HR", add_special_tokens=False)["input_ids"]) == "123-148/47-60, HR"
    references = ["BP 123-148/47-60, HR 109-131 ST", "SpO2 91-98%, RR 26 and"]
    cfg = GenerateParams(batch_size=2)
    budget, round_tokens = token_budget(tok, references, cfg, word_cap=6)
    script = tok(" 123-148/47-60,", add_special_tokens=False)["input_ids"]  # the costliest reference word, again
    model = ScriptedModel(script)
    from dataclasses import replace

    out = complete(model, tok, ["CV:", "Resp:"], replace(cfg, max_new_tokens=budget), word_cap=6, round_tokens=round_tokens)
    assert [r["stop"] for r in out] == ["word_cap", "word_cap"]
    assert all(r["completion_tokens"] < budget for r in out)
    assert [len(r["completion"].split()) for r in out] == [7, 7]
    (cut,) = complete(model, tok, ["CV:"], replace(cfg, max_new_tokens=budget // 2), word_cap=6)
    assert cut["stop"] == "budget"  # half that budget is not enough: the test can fail
