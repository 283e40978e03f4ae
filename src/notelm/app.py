"""`notelm app`: a local Gradio page to complete notes, compare two models and rate them.

Four tabs:

* **Complete**  type the beginning of a note, pick a checkpoint, set decoding; the continuation streams in.
* **Arena**     one prompt, two models side by side, generated concurrently, with latency and tokens/s.
                A rater scores each output 1-5 on the GRACE dimensions and may vote A / B / tie; each
                rating is one line appended to ratings/arena.jsonl (src/notelm/arena.py).
* **Benchmark** radar chart and table of the automatic metrics: one row per scored system (model variants
                and baselines, never the fine-tuned − pre-trained difference; names.eval_systems) across
                DVC experiments (`notelm compare`), else the workspace's metrics/detail/eval.json; and the mean
                human ratings per model.
* **Report**    reports/report.md as written by the report stage.

Models load on first use, once, and stay cached. Weights whose memorization gate failed (the memorize stage's
metrics/detail/memorization.json measured these very weights) are refused unless the app is started with
`--allow-memorizing`, which the page then states at its top. The app binds to 127.0.0.1 and makes no public
share link unless asked. Generation is bounded by the Gradio queue: at most `concurrency` model
calls run at a time, the rest wait in line.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from notelm.arena import (
    GRACE,
    LEADERBOARD_COLUMNS,
    VOTES,
    Refused,
    append_rating,
    human_summary,
    leaderboard,
    rating_record,
    read_ratings,
)
from notelm.config.generate import GenerateParams
from notelm.config.names import (
    CLAIM,
    HEADLINE,
    HISTORY_MARK,
    NOTE_MARK,
    SUMMARY_METRICS,
    VARIANTS,
    direction,
    eval_difference,
    eval_systems,
    scored,
)
from notelm.config.suggest import SuggestParams
from notelm.core.errors import NoteLMError
from notelm.core.files import read_json, read_jsonl
from notelm.core.paths import BASE_MODELS, EVAL_DETAIL, FINETUNED, MEMORIZATION_DETAIL, RATINGS, REPORTS, split_path
from notelm.generation.decoding import context_length, stream_completion
from notelm.evaluation.proposers import history_drafter
from notelm.generation.drafts import prompt_lookup
from notelm.generation.suggest import Suggester, suggestion_text
from notelm.privacy.memorize import refusal
from notelm.report import plotting
from notelm.training.weights import load_checkpoint

log = logging.getLogger(__name__)

METRIC_KEYS = HEADLINE
RATINGS_PATH = Path(RATINGS)
METRICS_PATH = Path(EVAL_DETAIL)
MEMORIZATION_PATH = Path(MEMORIZATION_DETAIL)
ALLOW_FLAG = "--allow-memorizing"
REPORT_PATH = Path(REPORTS) / "report.md"


# ---------------------------------------------------------------- models


def discover_models(root: Path = Path(".")) -> dict[str, Path]:
    """Every checkpoint present: `base/<name>` for models/base/<name>/, `finetuned` for models/finetuned/.

    Only directories holding a config.json count (LoRA runs keep a merged checkpoint there too).
    """
    found = {f"base/{d.name}": d for d in sorted((root / BASE_MODELS).glob("*")) if (d / "config.json").is_file()}
    if (root / FINETUNED / "config.json").is_file():
        found[VARIANTS[1]] = root / FINETUNED
    return found


_LOAD_LOCK = threading.Lock()


class ModelCache:
    """Loads each named checkpoint on first use, once, and keeps it; safe to call from many threads.

    Loads happen one at a time, process-wide: transformers' lazy imports and `from_pretrained` are
    not thread-safe (two parallel loads can fail to import or leave weights on the meta device).
    A cached model is returned without waiting for another model's load. A failed load is not
    cached, so fixing the directory and retrying works without a restart.
    """

    def __init__(self, model_dirs: dict[str, Path], refused: dict[str, str] | None = None):
        self.model_dirs = dict(model_dirs)
        self.refused = dict(refused or {})  # name -> why it is not served (gate_refusals)
        self._loaded: dict[str, tuple[Any, Any]] = {}

    def get(self, name: str) -> tuple[Any, Any]:
        """(model, tokenizer) of `name`, loading it if needed; NoteLMError when unknown, refused or unloadable."""
        if name not in self.model_dirs:
            raise Refused(f"unknown model {name!r}; choose one of: {', '.join(self.model_dirs) or '(none found)'}")
        if name in self.refused:
            raise Refused(f"{name} is not served: {self.refused[name]}. Start `notelm app {ALLOW_FLAG}` to serve "
                          "it anyway (the page then says so)")
        loaded = self._loaded.get(name)
        if loaded is not None:
            return loaded
        with _LOAD_LOCK:
            if name not in self._loaded:
                tick = time.perf_counter()
                try:
                    # also what streaming needs, so no generation thread triggers a first import later
                    from transformers import TextIteratorStreamer  # noqa: F401

                    self._loaded[name] = load_checkpoint(self.model_dirs[name])
                except NoteLMError:
                    raise
                except Exception as exc:  # noqa: BLE001 - any load failure is reported to the user the same way
                    raise NoteLMError(f"model {name} ({self.model_dirs[name]}) failed to load: {exc}") from exc
                log.info("app: loaded %s from %s in %.1fs", name, self.model_dirs[name], time.perf_counter() - tick)
            return self._loaded[name]


def gate_refusals(model_dirs: dict[str, Path], detail_path: Path) -> dict[str, str]:
    """{name: why} for every checkpoint whose memorization gate failed (memorization.refusal)."""
    return {name: why for name, d in model_dirs.items() if (why := refusal(d, detail_path))}


def gate_banner(refused: dict[str, str], allowed: bool) -> str:
    """The page's notice of refused checkpoints (or, when allowed, of served ones that failed the gate)."""
    if not refused:
        return ""
    listing = "\n".join(f"- **{name}**: {why}" for name, why in refused.items())
    if allowed:
        return f"**Serving weights that failed the memorization gate** (started with `{ALLOW_FLAG}`):\n{listing}"
    return f"**Not served** (start with `{ALLOW_FLAG}` to serve them anyway):\n{listing}"


def decoding(max_new_tokens: float, mode: str, temperature: float, top_p: float) -> GenerateParams:
    """The UI's decoding settings as GenerateParams (batch of one); Refused when out of range."""
    if not 1 <= int(max_new_tokens) <= 1024:
        raise Refused(f"max new tokens must be between 1 and 1024, got {max_new_tokens}")
    if mode not in ("greedy", "sampling"):
        raise Refused(f"decoding must be 'greedy' or 'sampling', got {mode!r}")
    if mode == "sampling" and not (temperature > 0 and 0 < top_p <= 1):
        raise Refused(f"sampling needs temperature > 0 and 0 < top_p <= 1, got {temperature} and {top_p}")
    return GenerateParams(max_new_tokens=int(max_new_tokens), batch_size=1, do_sample=mode == "sampling",
                          temperature=float(temperature), top_p=float(top_p))


def check_prompt(prompt: str, model, tokenizer, cfg: GenerateParams, name: str) -> int:
    """Number of prompt tokens; Refused when the prompt is empty or prompt + max_new_tokens exceeds the context."""
    if not prompt.strip():
        raise Refused("type the beginning of a note first")
    n = len(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    limit = context_length(model, tokenizer)
    if limit is not None and n + cfg.max_new_tokens > limit:
        raise Refused(
            f"prompt too long for {name}: {n} tokens + {cfg.max_new_tokens} new tokens exceeds its context of "
            f"{limit} tokens (at most {max(limit - cfg.max_new_tokens, 0)} prompt tokens); shorten the prompt "
            "or lower max new tokens"
        )
    return n


def error_text(exc: Exception) -> str:
    """A failure as the user sees it: our own message, or the exception's type and text."""
    return str(exc) if isinstance(exc, NoteLMError) else f"{type(exc).__name__}: {exc}"


def measured_completion(model, tokenizer, prompt: str, cfg: GenerateParams) -> dict[str, Any]:
    """A streamed completion with what it cost: latency to the first token, tokens/s and peak memory (the GPU's
    allocator peak on CUDA, else the process's resident set, sampled as the tokens come). The arena runs its
    two sides one after the other so that these are each side's own; other users' requests served at the same
    time still share the machine."""
    import psutil
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    process, peak = psutil.Process(), 0
    tick = time.perf_counter()
    first, text, tokens = None, "", 0
    for text, tokens in stream_completion(model, tokenizer, prompt, cfg):
        first = first or time.perf_counter() - tick
        peak = max(peak, process.memory_info().rss)
    seconds = time.perf_counter() - tick
    peak = torch.cuda.max_memory_allocated() if cuda else max(peak, process.memory_info().rss)
    return {"completion": text, "completion_tokens": tokens, "seconds": round(seconds, 3),
            "ttft_s": round(first if first is not None else seconds, 3),
            "tokens_per_s": round(tokens / max(seconds, 1e-9), 1), "peak_memory_mb": round(peak / 2**20, 1)}


def run_side(cache: ModelCache, name: str, prompt: str, cfg: GenerateParams) -> dict[str, Any]:
    """One arena side: {model, completion, completion_tokens, seconds, ttft_s, tokens_per_s, peak_memory_mb, error}.

    Never raises: a refusal or a failing model comes back as `error` with an empty completion.
    """
    result: dict[str, Any] = {"model": name, "completion": "", "error": None}
    try:
        model, tokenizer = cache.get(name)
        check_prompt(prompt, model, tokenizer, cfg, name)
        result.update(measured_completion(model, tokenizer, prompt, cfg))
    except Exception as exc:  # noqa: BLE001 - the other side and the app keep serving
        result["error"] = error_text(exc)
        log.warning("app: %s: %s", name, result["error"])
    return result


def side_status(side: dict[str, Any], hide: bool = False) -> str:
    """One line of Markdown under an arena output: the timing, or the error (without the model's name if `hide`)."""
    if side["error"]:
        error = side["error"].replace(side["model"], "this model") if hide else side["error"]
        return f"**Error:** {error}"
    return (f"latency {side['seconds']:.2f} s (first token {side['ttft_s']:.2f} s) · {side['completion_tokens']} tokens · "
            f"{side['tokens_per_s']:.1f} tokens/s · peak {side['peak_memory_mb']:.0f} MB")


EXAMPLE_NOTES = [  # a note to start from when there is no prepared test split (synthetic, like the default corpus)
    "NPN 0700-1900 72 y/o M with PMH of COPD, CHF, admitted from the ED with hypoxic resp failure from pneumonia. "
    "Allergies: NKDA. Events: Desaturated to high 80s at 1000, placed on high flow. Neuro: A&O x3, MAE, PERRL. "
    "CV: HR 88-104 ST, no ectopy. BP 110-128/55-70. Resp:",
    "Nursing Progress Note 1900-0700 64 y/o F with PMH of DM2, HTN, admitted with DKA. Allergies: PCN (rash). "
    "Events: No events overnight. Neuro: Alert and oriented x3, follows commands. CV: HR 90s NSR. GI/GU: Insulin gtt at",
    "NPN 0700-1900 81 y/o M s/p CABG x3. Events: Extubated at 0900 to NC without difficulty. Neuro: Opens eyes to "
    "voice, follows simple commands. CV: Neo gtt at 0.5 mcg/kg/min, titrated to keep MAP > 60. Skin: Sternal incision",
]


def starting_note(rng: random.Random, test_path: Path = split_path("test")) -> str:
    """A random scored test prompt of the prepared split, or a synthetic example when there is none."""
    if test_path.is_file():
        prompts = [r["prompt"] for r in scored(read_jsonl(test_path))]
        if prompts:
            return rng.choice(prompts)
    return rng.choice(EXAMPLE_NOTES)


# ---------------------------------------------------------------- metrics, charts, report


def workspace_metric_rows(metrics_path: Path = METRICS_PATH) -> list[dict[str, Any]]:
    """One row per scored system of a detail eval.json (model variants, then baselines): {experiment, system, metrics}."""
    metrics = read_json(metrics_path) or {}
    return [{"experiment": "workspace", "system": name, **{k: block.get(k) for k in METRIC_KEYS}}
            for name, _, block in eval_systems(metrics)]


CLAIM_COLUMNS = ["metric", "better when", "fine-tuned − best baseline [95 % CI]", "verdict", "best baseline"]


def claim_rows(metrics_path: Path = METRICS_PATH) -> list[list[Any]]:
    """The workspace's claim, one row per summary metric: fine-tuned − the best baseline with its paired interval
    and its verdict, read in the metric's better direction (eval.json's own verdicts)."""
    from notelm.report.labels import NAMES
    from notelm.report.markdown import fmt_ci

    claim = eval_difference(read_json(metrics_path) or {}, CLAIM)
    return [[NAMES[k], direction(k), fmt_ci(claim, k, signed=True), claim[f"{k}_verdict"], claim[f"{k}_baseline"]]
            for k in SUMMARY_METRICS if f"{k}_verdict" in claim]


def experiment_metric_rows(metrics_path: Path = METRICS_PATH) -> list[dict[str, Any]]:
    """Automatic-metric rows across DVC experiments (`notelm compare` over `dvc exp show`), one per
    (variant, model) result; where that yields nothing (no DVC repo, no experiments) the workspace's rows.
    """
    try:
        from notelm.compare import compare_rows, exp_show

        rows, _ = compare_rows(exp_show())
    except (ImportError, NoteLMError, OSError) as exc:
        log.info("app: no cross-experiment metrics (%s); showing %s", exc, metrics_path)
        rows = []
    if not rows:
        return workspace_metric_rows(metrics_path)
    return [{"experiment": r.get("runs", ""), "system": f"{r['variant']} {r.get('model') or ''}".strip(),
             **{k: r.get(k) for k in METRIC_KEYS}} for r in rows]


def radar(rows: list[dict[str, Any]], keys: tuple[str, ...], label: Callable[[dict], str], top: float, title: str):
    """A matplotlib radar chart (plotting.radar, its default style): one closed, filled line per row over `keys`
    (a missing value drawn as 0), radial axis 0..`top`."""
    if warning := plotting.fonts_for(label(row) for row in rows):
        log.warning("app: %s", warning)
    lines = []
    for row in rows:
        values = [float(row.get(k) or 0.0) for k in keys]
        lines.append(plotting.RadarLine(label(row), values + values[:1]))
    return plotting.radar(lines, keys, title, top)


def report_markdown(report_path: Path = REPORT_PATH) -> str:
    """The report as Markdown, with relative image links served by the app; a hint when it does not exist yet."""
    if not report_path.is_file():
        return f"No report yet: `{report_path}` does not exist. Run `dvc repro report` to write it."
    base = report_path.resolve().parent

    def link(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"^[a-z]+:|^/", target):
            return match.group(0)
        return f"![{match.group(1)}](/gradio_api/file={base / target})"

    return re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)", link, report_path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- the page


def _decoding_controls(gr) -> list:
    with gr.Accordion("Decoding", open=False):
        with gr.Row():
            return [gr.Slider(1, 512, value=64, step=1, label="max new tokens"),
                    gr.Radio(["greedy", "sampling"], value="greedy", label="decoding"),
                    gr.Slider(0.05, 2.0, value=0.8, step=0.05, label="temperature (sampling)"),
                    gr.Slider(0.05, 1.0, value=0.95, step=0.05, label="top p (sampling)")]


# a suggestion's most words and decoded tokens: the suggest stage's defaults (suggest.max_words, suggest.budget)
SUGGEST_WORDS, SUGGEST_TOKENS = SuggestParams().max_words, SuggestParams().budget


def with_chart(text: str, chart: str) -> str:
    """The text a model continues: the typed text, led by the patient's earlier note when one is given, in the
    prompt format data.history trains on."""
    return f"{HISTORY_MARK} {chart.strip()} {NOTE_MARK} {text}" if chart and chart.strip() else text


def default_model(names: list[str]) -> str | None:
    """The model the page starts with: the fine-tuned one when there is one."""
    return VARIANTS[1] if VARIANTS[1] in names else (names[0] if names else None)


def suggest_next(cache: ModelCache, typists: dict, name: str, text: str, chart: str) -> tuple[str, str, dict]:
    """(the next words to suggest after `text`, a status line with the latency, the session's typists): each model
    keeps one Suggester per session, so the KV cache of what was typed is reused from one keystroke to the next,
    and each forward also checks the chart's aligned words and prompt lookup's as drafts."""
    if not text.strip():
        return "", "", typists
    model, tokenizer = cache.get(name)
    typist = typists.get(name) or Suggester(model, tokenizer, SUGGEST_WORDS, SUGGEST_TOKENS, drafters=[
        history_drafter(SUGGEST_WORDS + 1), prompt_lookup(SUGGEST_WORDS + 1)])  # verified: the words stay greedy's
    tick = time.perf_counter()
    generated, ended = typist.propose_text(with_chart(text, chart))
    ms = 1000 * (time.perf_counter() - tick)
    return suggestion_text(generated, SUGGEST_WORDS, ended), f"{name}: suggestion in {ms:.0f} ms", {**typists, name: typist}


def _complete_tab(gr, cache: ModelCache, names: list[str], notes_path: Path) -> None:
    """The Complete tab: the next words suggested while typing (Tab or the button accepts them), and a whole
    continuation streamed in on demand."""

    def on_complete(prompt, name, max_new, mode, temperature, top_p, chart):
        text = ""
        try:
            cfg = decoding(max_new, mode, temperature, top_p)
            model, tokenizer = cache.get(name)
            prompt = with_chart(prompt, chart)
            n = check_prompt(prompt, model, tokenizer, cfg, name)
            yield "", f"generating with {name} ({n} prompt tokens)…"
            tick, tokens = time.perf_counter(), 0
            for text, tokens in stream_completion(model, tokenizer, prompt, cfg):
                yield text, f"generating with {name}… {tokens} tokens"
            seconds = time.perf_counter() - tick
            yield text, f"{name}: {seconds:.2f} s · {tokens} tokens · {tokens / max(seconds, 1e-9):.1f} tokens/s"
        except Exception as exc:  # noqa: BLE001 - shown in the panel; the app keeps serving
            yield text, f"**Error:** {error_text(exc)}"

    def on_type(text, name, chart, typists):
        try:
            return suggest_next(cache, typists or {}, name, text, chart)
        except Exception as exc:  # noqa: BLE001 - shown under the box; typing goes on
            return "", f"**Error:** {error_text(exc)}", typists

    prompt = gr.Textbox(label="Beginning of a note (the suggested next words show in grey after the cursor; Tab "
                        "accepts them)", lines=6, elem_id="complete-prompt")
    # the suggestion's value; the page shows it as ghost text in the note box (GHOST_TEXT), this box stays hidden
    suggestion = gr.Textbox(label="Suggested next words", interactive=False, elem_id="complete-suggestion",
                            elem_classes=["notelm-hidden"])
    with gr.Row():
        accept = gr.Button("Accept suggestion (Tab)", elem_id="complete-accept")
        starter = gr.Button("A note to start from", elem_id="complete-starter")
    latency = gr.Markdown(elem_id="complete-latency")
    chart = gr.Textbox("", label="The patient's earlier note (for a model trained with data.history)", lines=3,
                       elem_id="complete-chart")
    typists = gr.State({})
    starter.click(lambda: starting_note(random.Random(), notes_path), None, prompt, api_name="complete_starter")
    model = gr.Dropdown(names, value=default_model([n for n in names if n not in cache.refused] or names), label="model")
    # always_last: a suggestion still being made when more is typed is followed only by the latest keystroke's
    prompt.input(on_type, [prompt, model, chart, typists], [suggestion, latency, typists], api_name="suggest",
                 trigger_mode="always_last", concurrency_id="model", show_progress="hidden")
    accept.click(lambda text, words: (text + words, ""), [prompt, suggestion], [prompt, suggestion],
                 api_name="accept_suggestion")
    controls = _decoding_controls(gr)
    button = gr.Button("Complete", variant="primary", elem_id="complete-button")
    output = gr.Textbox(label="Continuation", lines=8, interactive=False, elem_id="complete-output")
    status = gr.Markdown()
    button.click(on_complete, [prompt, model, *controls, chart], [output, status], api_name="complete",
                 concurrency_id="model")


# The suggestion where the eye is: grey text after the cursor in the note box (as Smart Compose and code editors
# show it), drawn by a layer behind the box's transparent textarea that holds the typed text (invisible, so the
# grey words start exactly where the text ends) and the suggestion; shown only while the cursor is at the end.
# Tab in the note box accepts it (the hidden button's click), instead of leaving the box.
TAB_ACCEPTS = """<style>.notelm-hidden { display: none !important; }</style>
<script>
document.addEventListener("keydown", (e) => {
  const box = document.querySelector("#complete-prompt textarea");
  const shown = document.querySelector("#complete-suggestion textarea");
  if (e.key === "Tab" && e.target === box && shown && shown.value) {
    e.preventDefault();
    document.querySelector("#complete-accept").click();
  }
}, true);
setInterval(() => {
  const box = document.querySelector("#complete-prompt textarea");
  const shown = document.querySelector("#complete-suggestion textarea");
  if (!box || !box.offsetParent) return;
  let ghost = document.getElementById("complete-ghost");
  if (!ghost) {
    ghost = document.createElement("div");
    ghost.id = "complete-ghost";
    box.parentElement.style.position = "relative";
    box.parentElement.insertBefore(ghost, box);
    ghost.dataset.bg = getComputedStyle(box).backgroundColor;
    box.style.position = "relative";
    box.style.background = "transparent";
  }
  const css = getComputedStyle(box);
  for (const k of ["font", "padding", "lineHeight", "letterSpacing", "boxSizing", "borderWidth", "textIndent"]) {
    ghost.style[k] = css[k];
  }
  Object.assign(ghost.style, {position: "absolute", left: box.offsetLeft + "px", top: box.offsetTop + "px",
    width: box.offsetWidth + "px", height: box.offsetHeight + "px", overflow: "hidden", color: "transparent",
    whiteSpace: "pre-wrap", overflowWrap: "break-word", pointerEvents: "none", borderStyle: "solid",
    borderColor: "transparent", background: ghost.dataset.bg});
  const atEnd = box.selectionStart === box.value.length;
  const words = shown && atEnd ? shown.value : "";
  const grey = ghost.querySelector(".ghost-words") || document.createElement("span");
  grey.className = "ghost-words";
  grey.style.color = "#8a8f98";
  grey.textContent = words;
  ghost.replaceChildren(document.createTextNode(box.value), grey);
  ghost.scrollTop = box.scrollTop;
}, 100);
</script>"""


RANDOM = "(random)"  # an arena side's model left to chance
ARENA_MODES = ("blind", "named")


def draw_round(names: list[str], chosen: tuple[str, str], rng: random.Random) -> tuple[str, str]:
    """The two models of a blind round, sides in random order: the chosen ones, or a random distinct pair for
    each side left at (random)."""
    a, b = chosen
    pool = [n for n in names if n not in (a, b)]
    if a == RANDOM:
        a = rng.choice([n for n in pool if n != b] or names)
    if b == RANDOM:
        b = rng.choice([n for n in names if n != a] or names)
    return (a, b) if rng.random() < 0.5 else (b, a)


def _arena_side(gr, side: str, names: list[str]) -> tuple:
    """One arena column: (model dropdown, output, status, the four GRACE score radios)."""
    with gr.Column(variant="panel"):
        model = gr.Dropdown([RANDOM, *names], value=RANDOM, label=f"model {side.upper()} (hidden in a blind round)")
        output = gr.Textbox(label=f"output {side.upper()}", lines=8, interactive=False, elem_id=f"arena-output-{side}")
        status = gr.Markdown(elem_id=f"arena-status-{side}")
        scores = [gr.Radio([1, 2, 3, 4, 5], label=f"{dim.capitalize()} ({side.upper()})", elem_id=f"score-{side}-{dim}")
                  for dim in GRACE]
    return model, output, status, scores


def _arena_tab(gr, cache: ModelCache, names: list[str], ratings_path: Path, notes_path: Path,
               seed: int | None = None) -> None:
    """The Arena tab: two models on one prompt, generated together; blind by default (models drawn or chosen but
    hidden, sides shuffled, names shown only once the round is rated and saved); a round is rated once."""
    rng = random.Random(seed)

    def on_arena(prompt, name_a, name_b, max_new, mode, temperature, top_p, arena_mode="blind"):
        try:
            cfg = decoding(max_new, mode, temperature, top_p)
            if arena_mode not in ARENA_MODES:
                raise Refused(f"arena mode must be blind or named, got {arena_mode!r}")
            blind = arena_mode == "blind"
            if not blind and RANDOM in (name_a, name_b):
                raise Refused("a named round needs both models chosen")
            pair = draw_round(names, (name_a, name_b), rng) if blind else (name_a, name_b)
        except Refused as exc:
            return "", f"**Error:** {exc}", "", f"**Error:** {exc}", None
        # one side after the other: each side's latency, tokens/s and peak memory are its own, not shared
        a, b = (run_side(cache, name, prompt, cfg) for name in pair)
        round_ = {"prompt": prompt, "a": a, "b": b, "blind": blind,
                  "decoding": {"max_new_tokens": cfg.max_new_tokens, "mode": mode,
                               "temperature": cfg.temperature, "top_p": cfg.top_p}}
        ok = not a["error"] and not b["error"]
        status = (lambda side: side_status(side, hide=blind))
        return a["completion"], status(a), b["completion"], status(b), round_ if ok else None

    def on_rate(round_, ga, ra, aa, ea, gb, rb, ab, eb, vote, request: gr.Request = None):
        if not round_:
            return "Run an arena round with two working models first; each round can be rated once.", round_
        try:
            record = rating_record(round_, [ga, ra, aa, ea], [gb, rb, ab, eb], vote,
                                   rater=getattr(request, "username", None))
        except Refused as exc:
            return f"**Not saved:** {exc}", round_
        append_rating(ratings_path, record)
        reveal = f"A was **{record['model_a']}**, B was **{record['model_b']}**"
        return f"Saved to `{ratings_path}` (vote: {record['vote']}). {reveal}.", None

    on_rate.__annotations__["request"] = gr.Request  # gradio injects the request (and its signed-in user) by type

    prompt = gr.Textbox(label="Beginning of a note", lines=5, elem_id="arena-prompt")
    starter = gr.Button("A note to start from", elem_id="arena-starter")
    arena_mode = gr.Radio(list(ARENA_MODES), value="blind", label="round", elem_id="arena-mode")
    controls = _decoding_controls(gr)
    button = gr.Button("Generate both", variant="primary", elem_id="arena-button")
    with gr.Row():
        a = _arena_side(gr, "a", names)
        b = _arena_side(gr, "b", names)
    vote = gr.Radio(list(VOTES), label="Which is better? (optional)", elem_id="vote")
    rate_button = gr.Button("Save rating", elem_id="rate-button")
    rate_status = gr.Markdown(elem_id="rate-status")
    round_state = gr.State(None)
    rating_inputs = [*a[3], *b[3], vote]
    starter.click(lambda: starting_note(rng, notes_path), None, prompt, api_name="arena_starter")
    button.click(lambda: [None] * len(rating_inputs) + [""], None, [*rating_inputs, rate_status], queue=False,
                 api_visibility="private")  # a new round starts unrated, the last round's names gone
    button.click(on_arena, [prompt, a[0], b[0], *controls, arena_mode], [a[1], a[2], b[1], b[2], round_state],
                 api_name="arena", concurrency_id="model")
    rate_button.click(on_rate, [round_state, *rating_inputs], [rate_status, round_state], api_name="rate")


def _benchmark_tab(gr, demo, get_rows: Callable[[], list[dict[str, Any]]], metrics_path: Path,
                   ratings_path: Path) -> None:
    """The Benchmark tab: automatic metrics per system, the blind-arena leaderboard (Bradley–Terry with intervals,
    GRACE means, measured efficiency) and the mean human ratings per model."""
    import pandas as pd

    def on_benchmark():
        rows = get_rows()
        ratings = read_ratings(ratings_path)
        human = human_summary(ratings)
        return (
            radar(rows, METRIC_KEYS, lambda r: f"{r['experiment']}/{r['system']}", 1.0, "automatic metrics"),
            pd.DataFrame(rows, columns=["experiment", "system", *METRIC_KEYS]),
            pd.DataFrame(claim_rows(metrics_path), columns=CLAIM_COLUMNS),
            radar(human, GRACE, lambda r: r["model"], 5.0, "mean human GRACE ratings (1-5)"),
            pd.DataFrame(human, columns=["model", "ratings", *GRACE, "wins", "losses", "ties"]),
            pd.DataFrame(leaderboard(ratings), columns=LEADERBOARD_COLUMNS),
        )

    button = gr.Button("Refresh")
    with gr.Row():
        m_plot, h_plot = gr.Plot(label="automatic metrics"), gr.Plot(label="human ratings")
    m_table = gr.Dataframe(label=f"automatic metrics ({metrics_path}, across DVC experiments)", interactive=False)
    claim = gr.Dataframe(label=f"the claim ({metrics_path}): fine-tuned − best baseline, verdicts in each metric's "
                               "better direction", interactive=False)
    board = gr.Dataframe(label="leaderboard: blind battles only; Bradley–Terry strength (Elo scale) with a 95 % "
                               "interval resampling prompts; rank = 1 + models whose interval lies wholly above",
                         interactive=False, elem_id="leaderboard")
    h_table = gr.Dataframe(label=f"mean human ratings, all rounds ({ratings_path})", interactive=False)
    outputs = [m_plot, m_table, claim, h_plot, h_table, board]
    button.click(on_benchmark, None, outputs, api_name="benchmark")
    demo.load(on_benchmark, None, outputs, api_visibility="private")


def build_app(
    model_dirs: dict[str, Path] | None = None,
    ratings_path: Path = RATINGS_PATH,
    metrics_path: Path = METRICS_PATH,
    report_path: Path = REPORT_PATH,
    metric_rows: Callable[[], list[dict[str, Any]]] | None = None,
    concurrency: int = 2,
    arena_seed: int | None = None,
    notes_path: Path = split_path("test"),
    memorization_path: Path = MEMORIZATION_PATH,
    allow_memorizing: bool = False,
):
    """The four-tab Gradio Blocks app (not launched), its queue bounding model calls to `concurrency` at a time.

    `model_dirs` maps a display name to a checkpoint directory (default: discover_models()).
    `metric_rows` returns the Benchmark tab's automatic-metric rows (default: experiment_metric_rows(metrics_path)).
    `arena_seed` seeds the blind arena's draws (default: unseeded); `notes_path` is where "a note to start from"
    comes from (default: the prepared test split). A checkpoint whose memorization gate in `memorization_path`
    failed is refused unless `allow_memorizing`; the page says which either way.
    API names: /complete, /arena, /rate, /benchmark, /report.
    """
    import gradio as gr

    model_dirs = discover_models() if model_dirs is None else model_dirs
    failed = gate_refusals(model_dirs, Path(memorization_path))
    cache = ModelCache(model_dirs, {} if allow_memorizing else failed)
    names = list(cache.model_dirs)
    no_models = "No checkpoints found under models/base/* or models/finetuned: run `dvc repro` first."
    with gr.Blocks(title="NoteLM", analytics_enabled=False) as demo:
        gr.Markdown("# NoteLM: nursing-note completion" + ("" if names else f"\n\n**{no_models}**"))
        if failed:
            gr.Markdown(gate_banner(failed, allow_memorizing), elem_id="memorization-gate")
        with gr.Tab("Complete"):
            _complete_tab(gr, cache, names, Path(notes_path))
        with gr.Tab("Arena"):
            _arena_tab(gr, cache, names, Path(ratings_path), Path(notes_path), arena_seed)
        with gr.Tab("Benchmark"):
            _benchmark_tab(gr, demo, metric_rows or (lambda: experiment_metric_rows(Path(metrics_path))),
                           Path(metrics_path), Path(ratings_path))
        with gr.Tab("Report"):
            reload = gr.Button("Reload")
            report = gr.Markdown(report_markdown(Path(report_path)))
            reload.click(lambda: report_markdown(Path(report_path)), None, report, api_name="report")
    demo.queue(default_concurrency_limit=concurrency, max_size=64)
    return demo


LOOPBACK = {"127.0.0.1", "localhost", "::1"}
HASH = "pbkdf2_sha256"


def password_hash(password: str, salt: bytes | None = None, iterations: int = 200_000) -> str:
    """`pbkdf2_sha256$<iterations>$<salt>$<hash>` of a password, for a users file (`notelm passwd USER`)."""
    import hashlib
    import os

    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{HASH}${iterations}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Whether `password` matches a stored `password_hash`, compared in constant time."""
    import hmac

    try:
        scheme, iterations, salt, _ = stored.split("$")
    except ValueError:
        return False
    return scheme == HASH and hmac.compare_digest(password_hash(password, bytes.fromhex(salt), int(iterations)), stored)


def read_users(text: str, where: str) -> dict[str, str]:
    """{user: stored hash} from `user:hash` entries, one a line or comma-separated; NoteLMError naming `where`."""
    users = {}
    for n, entry in enumerate((e.strip() for e in text.replace(",", "\n").splitlines()), 1):
        if not entry or entry.startswith("#"):
            continue
        user, sep, stored = entry.partition(":")
        if not sep or not user or not stored.startswith(f"{HASH}$"):
            raise NoteLMError(f"{where}: entry {n}: expected user:{HASH}$... (make one with `notelm passwd USER`)")
        users[user] = stored
    if not users:
        raise NoteLMError(f"{where}: no users")
    return users


def launch(host: str = "127.0.0.1", port: int = 7860, share: bool = False, block: bool = True,
           users: dict[str, str] | None = None, insecure_no_auth: bool = False, **options):
    """Build the app (`options` go to build_app) and serve it on host:port; returns the Blocks.

    On an address other than loopback, a sign-in (`users`: {user: password_hash}) is required unless
    `insecure_no_auth`; each rating then records who gave it. No public share link unless `share`, and never
    without a sign-in. The
    browser-side run history is off (runs may hold patient text). With `block` the call serves until interrupted.
    """
    if share and not users:
        raise NoteLMError("--share opens a public gradio.live link to anyone who has it, and the app shows patient "
                          "text: give users (--auth-file FILE or --auth-env VAR, entries from `notelm passwd USER`)")
    if host not in LOOPBACK and not users and not insecure_no_auth:
        raise NoteLMError(f"serving on {host} lets anyone on the network in, and the app shows patient text: give "
                          "users (--auth-file FILE or --auth-env VAR, entries from `notelm passwd USER`), or pass "
                          "--insecure-no-auth if the network is yours alone")
    if options.get("model_dirs") is None:
        options["model_dirs"] = discover_models()
    log.info("app: models %s; ratings -> %s; sign-in %s", ", ".join(options["model_dirs"]) or "(none)",
             options.get("ratings_path", RATINGS_PATH), "required" if users else "off")
    demo = build_app(**options)
    report_dir = Path(options.get("report_path", REPORT_PATH)).resolve().parent
    auth = (lambda user, password: user in users and check_password(password, users[user])) if users else None
    demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block, auth=auth,
                allowed_paths=[str(report_dir)], run_history=False, quiet=not block, head=TAB_ACCEPTS)
    return demo
