"""Decoding shared by the generate stage and the app: batched completion, streaming, target likelihood.

Every function returns the continuation only — the tokens after the prompt, decoded up to the first
EOS — never the prompt itself. The decoding knobs are `GenerateParams` (config/generate.py).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Iterator
from typing import Any

from notelm.config.generate import GenerateParams
from notelm.data.cjk import CJK
from notelm.data.progress import progress

log = logging.getLogger(__name__)


def decoding_kwargs(cfg: GenerateParams) -> dict[str, Any]:
    """The `model.generate` arguments of a decoding setting: greedy unsets the sampling knobs (so a model's
    generation_config cannot turn sampling back on), sampling passes temperature and top p."""
    options: dict[str, Any] = {"do_sample": cfg.do_sample, "repetition_penalty": cfg.repetition_penalty}
    if cfg.do_sample:
        options.update(temperature=cfg.temperature, top_p=cfg.top_p)
    else:
        options.update(temperature=None, top_p=None, top_k=None)
    return options


def prompt_ids(tokenizer, prompt: str, max_prompt_tokens: int | None = None) -> list[int]:
    """The prompt's token ids (with the tokenizer's leading special tokens, e.g. BOS or [CLS]), keeping the last
    `max_prompt_tokens`. A trailing end marker (BERT-style tokenizers append [SEP]) is dropped: a prompt to
    continue has not ended."""
    ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    ends = {tokenizer.eos_token_id, getattr(tokenizer, "sep_token_id", None)} - {None}
    while len(ids) > 1 and ids[-1] in ends:
        ids = ids[:-1]
    return ids[-max_prompt_tokens:] if max_prompt_tokens else ids


# WordPiece decoders (BERT-style tokenizers such as gpt2-chinese's) join tokens with spaces, which Chinese and
# Japanese text does not have, and transformers' decode has no switch for it: for those decoders only, drop the
# spaces between two CJK characters or CJK punctuation marks (line breaks stay).
_CJK_GAP = re.compile(f"(?<=[{CJK}]) +(?=[{CJK}])")


def is_wordpiece(tokenizer) -> bool:
    model = getattr(getattr(tokenizer, "backend_tokenizer", None), "model", None)
    return type(model).__name__ == "WordPiece"


def join_cjk(tokenizer, text: str) -> str:
    """`text` decoded by `tokenizer` with a WordPiece decoder's spaces between CJK characters removed."""
    return _CJK_GAP.sub("", text) if is_wordpiece(tokenizer) else text


def decode(tokenizer, ids: list[int]) -> str:
    """Token ids as text without special tokens or surrounding whitespace (CJK joined for WordPiece decoders)."""
    return join_cjk(tokenizer, tokenizer.decode(ids, skip_special_tokens=True)).strip()


def context_length(model, tokenizer) -> int | None:
    """Most tokens (prompt + continuation) the model accepts: its position limit, else the tokenizer's."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(model.config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 10**7 else None


def cache_kwargs(model, compile: bool = False) -> dict[str, Any]:
    """generate() arguments for the KV cache: a static (preallocated) cache where the architecture has one,
    its decoding step compiled with `compile` (generate.compile).

    The default dynamic cache concatenates every layer's keys and values at every new token: at batch 16
    that copying was 28 % of a decoding run's CPU time here (torch profiler); the static cache writes in
    place, the same greedy tokens (benchmarks/generate.py). Compiled, on the CPU: one dynamic-shape inductor
    graph for every batch size and prompt width (a static one recompiles for each); measured slower than eager
    on this project's 2-core CPU, hence off by default. On CUDA, `compile` leaves transformers' own setting
    (CUDA graphs over the static cache) as it is: not measured here."""
    if not getattr(model, "_can_compile_fullgraph", False):
        return {}
    if not compile:
        return {"cache_implementation": "static", "disable_compile": True}
    if model.device.type == "cuda":
        return {"cache_implementation": "static"}
    from transformers import CompileConfig

    config = CompileConfig(dynamic=True, mode="default")  # "reduce-overhead" means CUDA graphs
    config._compile_all_devices = True  # transformers compiles on CUDA only, unless told (no public switch)
    return {"cache_implementation": "static", "compile_config": config}


STOPS = ("eos", "word_cap", "budget")  # why a continuation ended: the model's end token, the word cap, the token budget


def word_cap_criteria(tokenizer, width: int, cap: int | None, before: list[list[int]], ends: dict[int, int]) -> list:
    """transformers stopping criteria that end a row of the batch once its continuation (`before[row]`, the
    tokens of earlier rounds, then the tokens after `width`) holds more than `cap` words — the cap-th word is
    then complete —, recording in `ends` the row's new-token count at that moment. No criteria without a cap."""
    import torch
    from transformers import StoppingCriteria

    if cap is None:
        return []

    class WordCap(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):  # input_ids: B × (width + new so far)
            done = []
            for row, ids in enumerate(input_ids[:, width:].tolist()):
                if row not in ends and len(decode(tokenizer, before[row] + ids).split()) > cap:
                    ends[row] = len(ids)
                done.append(row in ends)
            return torch.tensor(done, device=input_ids.device)

    return [WordCap()]


def complete(model, tokenizer, prompts: list[str], cfg: GenerateParams, desc: str | None = None,
             word_cap: int | None = None, round_tokens: int | None = None) -> list[dict[str, Any]]:
    """Continue each prompt; return per prompt {completion, prompt_tokens, completion_tokens, stop}, in prompt
    order. `stop` (one of STOPS) says why it ended: the model's EOS, the `word_cap` (more than that many words
    written: evaluate cuts there anyway), or the budget (`cfg.max_new_tokens`, or the model's context) first.

    Decoding goes in rounds of `round_tokens` new tokens (default: the whole budget at once): the rows still
    writing after a round go on from their tokens so far, in a batch of their own, so a few rows that need
    many tokens (digit runs) do not hold every other row's decoding step. Within a round, prompts are sorted
    by length (so a batch wastes little on padding), left-padded and decoded with the KV cache (static where
    it can be: cache_kwargs) in batches of `cfg.batch_size`. Greedy results equal one-at-a-time decoding.
    `desc` names the log line written after each round.
    """
    import torch

    tokenizer.padding_side = "left"
    encoded = [prompt_ids(tokenizer, p, cfg.max_prompt_tokens) for p in prompts]
    limit = context_length(model, tokenizer)
    budgets = [min(cfg.max_new_tokens, limit - len(e)) if limit else cfg.max_new_tokens for e in encoded]
    written: list[list[int]] = [[] for _ in prompts]
    stops: list[str | None] = [None] * len(prompts)
    torch.manual_seed(cfg.seed)
    pending = [i for i in range(len(prompts)) if budgets[i] > 0]
    for i in set(range(len(prompts))) - set(pending):
        stops[i] = "budget"
    rounds = 0
    while pending:
        step = min(round_tokens or cfg.max_new_tokens, *(budgets[i] - len(written[i]) for i in pending))
        order = sorted(pending, key=lambda i: (len(encoded[i]) + len(written[i]), i))
        for start in range(0, len(order), cfg.batch_size):
            _round(model, tokenizer, cfg, order[start : start + cfg.batch_size], encoded, written, stops, step, word_cap)
        for i in pending:
            if stops[i] is None and len(written[i]) >= budgets[i]:
                stops[i] = "budget"
        pending = [i for i in pending if stops[i] is None]
        rounds += 1
        if desc:
            log.info("%s: round %d of %d tokens, %d continuation(s) still writing", desc, rounds, step, len(pending))
    return [{"completion": decode(tokenizer, written[i]), "prompt_tokens": len(encoded[i]),
             "completion_tokens": len(written[i]), "stop": stops[i]} for i in range(len(prompts))]


def _round(model, tokenizer, cfg: GenerateParams, batch: list[int], encoded: list[list[int]],
           written: list[list[int]], stops: list[str | None], step: int, word_cap: int | None) -> None:
    """Decode up to `step` more tokens for the rows `batch` (prompt + what each has written so far), adding them
    to `written` and setting `stops` for the rows that ended (EOS kept as their last token, or the word cap)."""
    import torch

    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    seqs = [encoded[i] + written[i] for i in batch]
    width = max(len(s) for s in seqs)
    input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs])  # B × width
    attention = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
    ends: dict[int, int] = {}
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids.to(model.device), attention_mask=attention.to(model.device),
            max_new_tokens=step, pad_token_id=pad, eos_token_id=eos, use_cache=True,
            stopping_criteria=word_cap_criteria(tokenizer, width, word_cap, [written[i] for i in batch], ends),
            **cache_kwargs(model, cfg.compile), **decoding_kwargs(cfg),
        )  # B × (width + new)
    for row, i in enumerate(batch):
        new = out[row, width:].tolist()
        if row in ends:
            new, stops[i] = new[: ends[row]], "word_cap"
        elif eos is not None and eos in new:
            new, stops[i] = new[: new.index(eos) + 1], "eos"
        written[i] += new


def stream_completion(model, tokenizer, prompt: str, cfg: GenerateParams) -> Iterator[tuple[str, int]]:
    """Yield (continuation so far, tokens generated so far) as decoding goes; never the prompt.

    Generation runs in a thread feeding a TextIteratorStreamer; an error there is re-raised here.
    """
    import torch
    from transformers import TextIteratorStreamer

    class CountingStreamer(TextIteratorStreamer):
        tokens = 0

        def put(self, value):
            if not (self.skip_prompt and self.next_tokens_are_prompt):
                self.tokens += value.numel()
            super().put(value)

    ids = torch.tensor([prompt_ids(tokenizer, prompt)])  # 1 × prompt tokens
    enc = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    streamer = CountingStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            with torch.inference_mode():
                model.generate(**{k: v.to(model.device) for k, v in enc.items()}, streamer=streamer,
                               max_new_tokens=cfg.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                               eos_token_id=tokenizer.eos_token_id, use_cache=True, **decoding_kwargs(cfg))
        except BaseException as exc:  # noqa: BLE001 - handed to the reading side below
            failure.append(exc)
            streamer.end()  # unblock the reader

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    text = ""
    for piece in streamer:
        text += piece
        yield join_cjk(tokenizer, text).strip(), streamer.tokens
    thread.join()
    if failure:
        raise failure[0]


def joint_ids(tokenizer, prompt: str, target: str, max_prompt_tokens: int | None = None) -> tuple[list[int], int]:
    """The token ids of `prompt + " " + target` tokenised as one text, and how many of them are the target's.

    A token is the target's when it covers a character after the prompt (the separating space or later;
    offsets of a fast tokenizer); special tokens cover none. Tokenising jointly charges every model for the
    text exactly as it reads it in one piece, which tokenising `" " + target` alone does not (SentencePiece
    tokenizers treat a text's start differently). The prompt part keeps its last `max_prompt_tokens`.
    """
    text = f"{prompt} {target}"
    if tokenizer.is_fast:
        enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
        ids, spans = enc["input_ids"], enc["offset_mapping"]
        is_target = [end > len(prompt) for _, end in spans]
        first = is_target.index(True) if True in is_target else len(ids)
        head, tail = ids[:first], [t for t, keep in zip(ids[first:], is_target[first:]) if keep]
    else:  # no offsets: the target is what the joint text adds after the longest shared prefix with the prompt
        ids, alone = tokenizer(text)["input_ids"], tokenizer(prompt)["input_ids"]
        first = next((i for i, (a, b) in enumerate(zip(ids, alone)) if a != b), min(len(ids), len(alone)))
        head, tail = ids[:first], ids[first:]
    head = head[-max_prompt_tokens:] if max_prompt_tokens else head
    return head + tail, len(tail)


LOGITS_BYTES = 2**30  # most float32 logits (and as many log-probabilities) target_nll holds at once


def target_nll(model, tokenizer, prompts: list[str], targets: list[str], cfg: GenerateParams,
               desc: str | None = None) -> list[tuple[float, int]]:
    """Summed negative log-likelihood (nats) of each target given its prompt, and the target's token count.

    Prompt and target are tokenised jointly (`joint_ids`), the prompt cut to its last `max_prompt_tokens`
    tokens as for generation; batches are right-padded and only the target's tokens are scored. A batch is
    at most `cfg.batch_size` rows and at most as many as keep its full logits within LOGITS_BYTES (a
    262k-token vocabulary makes one row of 500 tokens 0.5 GB).
    """
    pairs = [joint_ids(tokenizer, p, t, cfg.max_prompt_tokens) for p, t in zip(prompts, targets)]
    head = model.get_output_embeddings()
    vocab = head.weight.shape[0] if head is not None else model.config.get_text_config().vocab_size
    width = max((len(s) for s, _ in pairs), default=1)
    rows = max(1, min(cfg.batch_size, LOGITS_BYTES // (2 * 4 * width * vocab)))
    starts = range(0, len(pairs), rows)
    results: list[tuple[float, int]] = []
    for start in progress(starts, desc or "likelihood", unit="batch") if desc else starts:
        results += _batch_nll(model, tokenizer, pairs[start : start + rows])
    return results


def _batch_nll(model, tokenizer, pairs: list[tuple[list[int], int]]) -> list[tuple[float, int]]:
    """(summed NLL in nats, count) of the last `count` tokens of each sequence, in one right-padded forward."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    seqs, counts = zip(*pairs)
    width = max(len(s) for s in seqs)
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])  # B × width
    attention = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    scored = torch.tensor([[0] * (len(s) - n) + [1] * n + [0] * (width - len(s)) for s, n in zip(seqs, counts)])
    with torch.inference_mode():
        logits = model(input_ids=ids.to(model.device), attention_mask=attention.to(model.device)).logits.float()
    logprobs = torch.log_softmax(logits[:, :-1], dim=-1)  # B × (width-1) × V
    token_lp = logprobs.gather(-1, ids[:, 1:].unsqueeze(-1).to(logits.device)).squeeze(-1).cpu()
    weights = scored[:, 1:]
    return [(float(-(token_lp[row] * weights[row]).sum()), int(weights[row].sum())) for row in range(len(seqs))]


def token_budget(tokenizer, targets: list[str], cfg: GenerateParams, word_cap: int | None) -> tuple[int, int]:
    """(the budget, the tokens of one decoding round) for continuing prompts whose references are `targets`
    (the generate and follow stages). The budget is `generate.max_new_tokens` as given, or for
    `auto` the word cap (without one, the longest target's words) × the most tokens one target word takes
    (after its space) × `generate.budget_margin`, rounded up. A round is the tokens the longest target takes
    (after its space), at most the budget: most continuations end within it."""
    lengths = [len(tokenizer(" " + t, add_special_tokens=False)["input_ids"]) for t in targets]
    if cfg.max_new_tokens != "auto":
        budget = int(cfg.max_new_tokens)
    else:
        words = {w for t in targets for w in t.split()}
        per_word = max((len(tokenizer(" " + w, add_special_tokens=False)["input_ids"]) for w in words), default=1)
        cap = word_cap if word_cap is not None else max((len(t.split()) for t in targets), default=1)
        budget = max(1, math.ceil(cap * per_word * cfg.budget_margin))
    return budget, min(budget, max(lengths, default=budget))
