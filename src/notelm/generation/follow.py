"""Chart-following decoding: a whole continuation that copies the patient's chart where the model agrees with it
and writes its own words where it does not (the chart-aware system's continuations; the follow stage).

A Drafter (the chart's aligned span: notelm.evaluation.proposers.ChartCopy) gives the next words of the chart;
their tokens are offered a few at a time, each forward feeding them after the text and giving the model's
probability of each. The chart's tokens are kept while the model gives each at least `tau`; at the first it
gives less, the model's own greedy token is taken instead, the cache is cropped past the rest, and the chart is
aligned anew (from the next round on). The span is followed to its end whatever the number of tokens offered at
once, so that number (halved after a rejection, doubled after a whole offer) changes the speed, not the text. tau above 1 is plain greedy decoding; tau 0 copies the
chart wherever it has words (the `aligned_copy` baseline, up to tokenisation). Not lossless by design: tau is
chosen on validation notes (the follow stage), never on test.

Why by hand: transformers' assisted generation verifies a draft model's tokens against greedy or sampled
choices, not against a probability floor, and takes a model, not a rule, as the drafter.
"""

from __future__ import annotations

from dataclasses import dataclass

from notelm.generation.decoding import decode, prompt_ids
from notelm.generation.drafts import MAX_OFFER, Drafter, draft_tokens, next_offer
from notelm.generation.suggest import crop_cache, decode_raw


@dataclass(frozen=True)
class Followed:
    """One continuation: its text, its tokens, why it stopped (decoding.STOPS), and how many of its tokens came
    from the chart."""

    completion: str
    completion_tokens: int
    stop: str
    from_chart: int


def _over(tokenizer, written: list[int], word_cap: int) -> bool:
    return len(decode_raw(tokenizer, written).split()) > word_cap


def follow(model, tokenizer, prompt: str, drafter: Drafter, tau: float, budget: int, word_cap: int,
           max_prompt_tokens: int | None = None) -> Followed:
    """Continue `prompt` (its last `max_prompt_tokens` tokens, as generate reads it) for at most `budget` tokens
    and `word_cap` words, keeping the drafter's tokens while the model gives each at least probability `tau`
    (the module's rule)."""
    import torch

    whole = prompt_ids(tokenizer, prompt)  # drafts are tokenised against the whole text
    cut = max(0, len(whole) - max_prompt_tokens) if max_prompt_tokens else 0  # the model reads whole[cut:]
    ids, written, cache, cached, from_chart, stop = whole[cut:], [], None, 0, 0, "budget"
    room = MAX_OFFER  # draft tokens offered at once: halved after a rejected first one, doubled after a whole offer
    span: list[int] = []  # the chart's tokens still to offer: followed until one is rejected, then drafted anew
    with torch.inference_mode():
        while len(written) < budget:
            confirmed = ids + written
            if not span and tau <= 1:
                text = prompt + decode_raw(tokenizer, written)
                span = draft_tokens(tokenizer, text, drafter(text), whole + written)
            draft = span[: min(room, budget - len(written))]
            feed = confirmed[cached:] + draft
            out = model(input_ids=torch.tensor([feed], device=model.device), past_key_values=cache, use_cache=True,
                        logits_to_keep=len(draft) + 1)  # 1 × (len(draft) + 1) × V
            cache, probs = out.past_key_values, out.logits[0].float().softmax(-1)
            kept = next((j for j, t in enumerate(draft) if float(probs[j, t]) < tau), len(draft))
            room = next_offer(room, len(draft), kept)
            span = span[kept:] if kept == len(draft) else []  # how much is offered at once never changes the text
            new = draft[:kept] + ([int(probs[kept].argmax())] if kept < len(draft) or not draft else [])
            # the cache holds the text and the kept draft tokens; one token at least is left to feed next round
            cached = min(len(confirmed) + kept, len(confirmed) + len(new) - 1)
            if not crop_cache(cache, cached):
                cache, cached = None, 0
            for j, token in enumerate(new):
                written.append(token)
                from_chart += j < kept
                if token == tokenizer.eos_token_id:
                    stop = "eos"
                elif _over(tokenizer, written, word_cap):
                    stop = "word_cap"  # evaluate cuts every system at the cap
                if stop != "budget" or len(written) >= budget:
                    break
            if stop != "budget":
                break
    return Followed(decode(tokenizer, written), len(written), stop, from_chart)
