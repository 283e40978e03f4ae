"""`notelm app`: a local Gradio page to complete notes, compare two models and rate them.

Four tabs:

* **Complete**  type the beginning of a note, pick a checkpoint, set decoding; the continuation streams in.
* **Arena**     one prompt, two models side by side, generated concurrently, with latency and tokens/s.
                A rater scores each output 1-5 on the GRACE dimensions (Generalization, Relevance,
                Artistry, Efficiency) and may vote A / B / tie; each rating is one line appended to a
                JSONL file (default `ratings/arena.jsonl`, kept out of git: it may hold patient text).
* **Benchmark** radar chart and table of the automatic metrics across DVC experiments (else the
                workspace's metrics/eval.json) and of the mean human ratings per model.
* **Report**    reports/report.md as written by the report stage.

Models load on first use, once, and stay cached. The app binds to 127.0.0.1 and makes no public
share link unless asked. Generation is bounded by the Gradio queue: at most `concurrency` model
calls run at a time, the rest wait in line.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from notelm.config import NoteLMError
from notelm.generate import GenerateConfig, complete
from notelm.models import load_checkpoint

log = logging.getLogger(__name__)

GRACE = ("generalization", "relevance", "artistry", "efficiency")
VOTES = ("A", "B", "tie")
METRIC_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum", "bertscore_precision", "bertscore_recall", "bertscore_f1")
RATINGS_PATH = Path("ratings/arena.jsonl")
METRICS_PATH = Path("metrics/eval.json")
REPORT_PATH = Path("reports/report.md")


class Refused(NoteLMError):
    """A request the app declines with a message for the user (empty or over-long prompt, bad settings)."""


# ---------------------------------------------------------------- models


def discover_models(root: Path = Path(".")) -> dict[str, Path]:
    """Every checkpoint present: `base/<name>` for models/base/<name>/, `finetuned` for models/finetuned/.

    Only directories holding a config.json count (LoRA runs keep a merged checkpoint there too).
    """
    found = {f"base/{d.name}": d for d in sorted((root / "models/base").glob("*")) if (d / "config.json").is_file()}
    if (root / "models/finetuned/config.json").is_file():
        found["finetuned"] = root / "models/finetuned"
    return found


_LOAD_LOCK = threading.Lock()


class ModelCache:
    """Loads each named checkpoint on first use, once, and keeps it; safe to call from many threads.

    Loads happen one at a time, process-wide: transformers' lazy imports and `from_pretrained` are
    not thread-safe (two parallel loads can fail to import or leave weights on the meta device).
    A cached model is returned without waiting for another model's load. A failed load is not
    cached, so fixing the directory and retrying works without a restart.
    """

    def __init__(self, model_dirs: dict[str, Path]):
        self.model_dirs = dict(model_dirs)
        self._loaded: dict[str, tuple[Any, Any]] = {}

    def get(self, name: str) -> tuple[Any, Any]:
        """(model, tokenizer) of `name`, loading it if needed; NoteLMError when unknown or unloadable."""
        if name not in self.model_dirs:
            raise Refused(f"unknown model {name!r}; choose one of: {', '.join(self.model_dirs) or '(none found)'}")
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


def context_length(model, tokenizer) -> int | None:
    """Most tokens (prompt + continuation) the model accepts: its position limit, else the tokenizer's."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(model.config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 10**7 else None


def decoding(max_new_tokens: float, mode: str, temperature: float, top_p: float) -> GenerateConfig:
    """The UI's decoding settings as a GenerateConfig (batch of one); Refused when out of range."""
    if not 1 <= int(max_new_tokens) <= 1024:
        raise Refused(f"max new tokens must be between 1 and 1024, got {max_new_tokens}")
    if mode not in ("greedy", "sampling"):
        raise Refused(f"decoding must be 'greedy' or 'sampling', got {mode!r}")
    if mode == "sampling" and not (temperature > 0 and 0 < top_p <= 1):
        raise Refused(f"sampling needs temperature > 0 and 0 < top_p <= 1, got {temperature} and {top_p}")
    return GenerateConfig(max_new_tokens=int(max_new_tokens), batch_size=1, do_sample=mode == "sampling",
                          temperature=float(temperature), top_p=float(top_p))


def check_prompt(prompt: str, model, tokenizer, cfg: GenerateConfig, name: str) -> int:
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


def stream_completion(model, tokenizer, prompt: str, cfg: GenerateConfig) -> Iterator[tuple[str, int]]:
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

    enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=True)
    streamer = CountingStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    options: dict[str, Any] = {"do_sample": cfg.do_sample, "repetition_penalty": cfg.repetition_penalty}
    if cfg.do_sample:
        options.update(temperature=cfg.temperature, top_p=cfg.top_p)
    else:
        options.update(temperature=None, top_p=None, top_k=None)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            with torch.inference_mode():
                model.generate(**{k: v.to(model.device) for k, v in enc.items()}, streamer=streamer,
                               max_new_tokens=cfg.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                               eos_token_id=tokenizer.eos_token_id, use_cache=True, **options)
        except BaseException as exc:  # noqa: BLE001 - handed to the reading side below
            failure.append(exc)
            streamer.end()  # unblock the reader

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    text = ""
    for piece in streamer:
        text += piece
        yield text.strip(), streamer.tokens
    thread.join()
    if failure:
        raise failure[0]


def run_side(cache: ModelCache, name: str, prompt: str, cfg: GenerateConfig) -> dict[str, Any]:
    """One arena side: {model, completion, prompt_tokens, completion_tokens, seconds, tokens_per_s, error}.

    Never raises: a refusal or a failing model comes back as `error` with an empty completion.
    """
    result: dict[str, Any] = {"model": name, "completion": "", "error": None}
    try:
        model, tokenizer = cache.get(name)
        check_prompt(prompt, model, tokenizer, cfg, name)
        tick = time.perf_counter()
        out = complete(model, tokenizer, [prompt], replace(cfg, max_prompt_tokens=10**9))[0]
        seconds = time.perf_counter() - tick
        result.update(out, seconds=round(seconds, 3),
                      tokens_per_s=round(out["completion_tokens"] / max(seconds, 1e-9), 1))
    except Exception as exc:  # noqa: BLE001 - the other side and the app keep serving
        result["error"] = str(exc) if isinstance(exc, NoteLMError) else f"{type(exc).__name__}: {exc}"
        log.warning("app: %s: %s", name, result["error"])
    return result


def side_status(side: dict[str, Any]) -> str:
    """One line of Markdown under an arena output: the timing, or the error."""
    if side["error"]:
        return f"**Error:** {side['error']}"
    return (f"latency {side['seconds']:.2f} s · {side['completion_tokens']} tokens · "
            f"{side['tokens_per_s']:.1f} tokens/s")


# ---------------------------------------------------------------- ratings


_RATINGS_LOCK = threading.Lock()


def append_rating(path: Path, record: dict[str, Any]) -> None:
    """Append `record` as one complete JSON line to `path` (created if absent), flushed and fsynced.

    Writers in this process are serialised by a lock, writers in other processes by flock. If an
    earlier crash left a partial last line, the new line starts on a line of its own.
    """
    line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with _RATINGS_LOCK, open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            if fh.seek(0, os.SEEK_END) > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    line = "\n" + line
            fh.write(line.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_ratings(path: Path) -> list[dict[str, Any]]:
    """Every complete rating in `path` (none when absent); a torn or corrupt line is skipped with a warning."""
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            log.warning("%s:%d: not a complete JSON object; skipped", path, number)
    return rows


def rating_record(round_: dict[str, Any], scores_a: list, scores_b: list, vote: str | None) -> dict[str, Any]:
    """The line saved for one rated arena round; Refused unless all eight scores are 1-5 and the vote valid."""
    scores = {}
    for side, values in (("a", scores_a), ("b", scores_b)):
        if len(values) != len(GRACE) or any(v not in (1, 2, 3, 4, 5) for v in values):
            raise Refused(f"score every GRACE dimension of output {side.upper()} from 1 to 5")
        scores[side] = {dim: int(v) for dim, v in zip(GRACE, values)}
    if vote not in (None, "", *VOTES):
        raise Refused(f"vote must be one of {', '.join(VOTES)} (or none), got {vote!r}")
    record = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "prompt": round_["prompt"],
              "decoding": round_["decoding"], "vote": vote or None}
    for side in ("a", "b"):
        run = round_[side]
        record[f"model_{side}"] = run["model"]
        record[f"output_{side}"] = run["completion"]
        record[f"scores_{side}"] = scores[side]
        record[f"seconds_{side}"] = run.get("seconds")
        record[f"tokens_per_s_{side}"] = run.get("tokens_per_s")
    return record


def human_summary(ratings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model: number of rated outputs, mean score per GRACE dimension, and votes won / lost / tied."""
    by_model: dict[str, dict[str, Any]] = {}
    for r in ratings:
        for side, other in (("a", "b"), ("b", "a")):
            model, scores = r.get(f"model_{side}"), r.get(f"scores_{side}")
            if not model or not isinstance(scores, dict):
                continue
            row = by_model.setdefault(model, {"model": model, "ratings": 0, "wins": 0, "losses": 0, "ties": 0,
                                              **{d: 0.0 for d in GRACE}})
            row["ratings"] += 1
            for d in GRACE:
                row[d] += float(scores.get(d, 0))
            vote = r.get("vote")
            if vote == "tie":
                row["ties"] += 1
            elif vote in ("A", "B"):
                row["wins" if vote.lower() == side else "losses"] += 1
    for row in by_model.values():
        for d in GRACE:
            row[d] = round(row[d] / row["ratings"], 2)
    return sorted(by_model.values(), key=lambda row: row["model"])


# ---------------------------------------------------------------- metrics, charts, report


def workspace_metric_rows(metrics_path: Path = METRICS_PATH) -> list[dict[str, Any]]:
    """One row per system in metrics/eval.json (pretrained, finetuned, baselines): {experiment, system, metrics}."""
    if not metrics_path.is_file():
        return []
    metrics = json.loads(metrics_path.read_text())
    systems = {k: v for k, v in metrics.items() if isinstance(v, dict) and "rouge1" in v}
    systems.update({k: v for k, v in (metrics.get("baselines") or {}).items() if isinstance(v, dict)})
    return [{"experiment": "workspace", "system": name, **{k: values.get(k) for k in METRIC_KEYS}}
            for name, values in systems.items()]


def experiment_metric_rows(metrics_path: Path = METRICS_PATH) -> list[dict[str, Any]]:
    """Automatic-metric rows across DVC experiments (`notelm.compare` over `dvc exp show`), one per
    (variant, model) result; where that yields nothing (no DVC repo, no experiments) the workspace's rows.
    """
    try:
        from notelm.compare import compare_rows, exp_show

        rows, _ = compare_rows(exp_show(), str(metrics_path))
    except (ImportError, NoteLMError, OSError) as exc:
        log.info("app: no cross-experiment metrics (%s); showing %s", exc, metrics_path)
        rows = []
    if not rows:
        return workspace_metric_rows(metrics_path)
    return [{"experiment": r.get("runs", ""), "system": f"{r['variant']} {r.get('model') or ''}".strip(),
             **{k: r.get(k) for k in METRIC_KEYS}} for r in rows]


def radar(rows: list[dict[str, Any]], keys: tuple[str, ...], label: Callable[[dict], str], top: float, title: str):
    """A matplotlib radar chart: one closed line per row over `keys`, radial axis 0..`top`."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.add_subplot(projection="polar")
    angles = np.linspace(0, 2 * np.pi, len(keys), endpoint=False).tolist()
    for row in rows:
        values = [float(row.get(k) or 0.0) for k in keys]
        ax.plot(angles + angles[:1], values + values[:1], label=label(row))
        ax.fill(angles + angles[:1], values + values[:1], alpha=0.1)
    ax.set_xticks(angles, keys, fontsize=8)
    ax.set_ylim(0, top)
    ax.set_title(title, fontsize=10)
    if rows:
        ax.legend(loc="upper right", bbox_to_anchor=(1.35, 1.1), fontsize=7)
    fig.tight_layout()
    return fig


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


def build_app(
    model_dirs: dict[str, Path] | None = None,
    ratings_path: Path = RATINGS_PATH,
    metrics_path: Path = METRICS_PATH,
    report_path: Path = REPORT_PATH,
    metric_rows: Callable[[], list[dict[str, Any]]] | None = None,
    concurrency: int = 2,
):
    """The four-tab Gradio Blocks app (not launched), its queue bounding model calls to `concurrency` at a time.

    `model_dirs` maps a display name to a checkpoint directory (default: discover_models()).
    `metric_rows` returns the Benchmark tab's automatic-metric rows (default: experiment_metric_rows(metrics_path)).
    API names: /complete, /arena, /rate, /benchmark, /report.
    """
    import gradio as gr
    import pandas as pd

    cache = ModelCache(discover_models() if model_dirs is None else model_dirs)
    names = list(cache.model_dirs)
    ratings_path = Path(ratings_path)
    get_rows = metric_rows or (lambda: experiment_metric_rows(Path(metrics_path)))
    no_models = "No checkpoints found under models/base/* or models/finetuned: run `dvc repro` first."

    def decoding_controls():
        with gr.Accordion("Decoding", open=False):
            with gr.Row():
                max_new = gr.Slider(1, 512, value=64, step=1, label="max new tokens")
                mode = gr.Radio(["greedy", "sampling"], value="greedy", label="decoding")
                temperature = gr.Slider(0.05, 2.0, value=0.8, step=0.05, label="temperature (sampling)")
                top_p = gr.Slider(0.05, 1.0, value=0.95, step=0.05, label="top p (sampling)")
        return [max_new, mode, temperature, top_p]

    def on_complete(prompt, name, max_new, mode, temperature, top_p):
        text = ""
        try:
            cfg = decoding(max_new, mode, temperature, top_p)
            model, tokenizer = cache.get(name)
            n = check_prompt(prompt, model, tokenizer, cfg, name)
            yield "", f"generating with {name} ({n} prompt tokens)…"
            tick, tokens = time.perf_counter(), 0
            for text, tokens in stream_completion(model, tokenizer, prompt, cfg):
                yield text, f"generating with {name}… {tokens} tokens"
            seconds = time.perf_counter() - tick
            yield text, f"{name}: {seconds:.2f} s · {tokens} tokens · {tokens / max(seconds, 1e-9):.1f} tokens/s"
        except Exception as exc:  # noqa: BLE001 - shown in the panel; the app keeps serving
            message = str(exc) if isinstance(exc, NoteLMError) else f"{type(exc).__name__}: {exc}"
            yield text, f"**Error:** {message}"

    def on_arena(prompt, name_a, name_b, max_new, mode, temperature, top_p):
        try:
            cfg = decoding(max_new, mode, temperature, top_p)
        except Refused as exc:
            return "", f"**Error:** {exc}", "", f"**Error:** {exc}", None
        with ThreadPoolExecutor(max_workers=2) as pool:
            a, b = pool.map(lambda name: run_side(cache, name, prompt, cfg), [name_a, name_b])
        round_ = {"prompt": prompt, "a": a, "b": b,
                  "decoding": {"max_new_tokens": cfg.max_new_tokens, "mode": mode,
                               "temperature": cfg.temperature, "top_p": cfg.top_p}}
        ok = not a["error"] and not b["error"]
        return a["completion"], side_status(a), b["completion"], side_status(b), round_ if ok else None

    def on_rate(round_, ga, ra, aa, ea, gb, rb, ab, eb, vote):
        if not round_:
            return "Run an arena round with two working models first; each round can be rated once.", round_
        try:
            record = rating_record(round_, [ga, ra, aa, ea], [gb, rb, ab, eb], vote)
        except Refused as exc:
            return f"**Not saved:** {exc}", round_
        append_rating(ratings_path, record)
        return f"Saved to `{ratings_path}` ({record['model_a']} vs {record['model_b']}, vote: {record['vote']}).", None

    def on_benchmark():
        rows = get_rows()
        human = human_summary(read_ratings(ratings_path))
        metric_cols = ["experiment", "system", *METRIC_KEYS]
        human_cols = ["model", "ratings", *GRACE, "wins", "losses", "ties"]
        return (
            radar(rows, METRIC_KEYS, lambda r: f"{r['experiment']}/{r['system']}", 1.0, "automatic metrics"),
            pd.DataFrame(rows, columns=metric_cols),
            radar(human, GRACE, lambda r: r["model"], 5.0, "mean human GRACE ratings (1-5)"),
            pd.DataFrame(human, columns=human_cols),
        )

    with gr.Blocks(title="NoteLM", analytics_enabled=False) as demo:
        gr.Markdown("# NoteLM: nursing-note completion" + ("" if names else f"\n\n**{no_models}**"))
        with gr.Tab("Complete"):
            c_prompt = gr.Textbox(label="Beginning of a note", lines=6, elem_id="complete-prompt")
            c_model = gr.Dropdown(names, value=names[0] if names else None, label="model")
            c_decoding = decoding_controls()
            c_button = gr.Button("Complete", variant="primary", elem_id="complete-button")
            c_output = gr.Textbox(label="Continuation", lines=8, interactive=False, elem_id="complete-output")
            c_status = gr.Markdown()
        with gr.Tab("Arena"):
            a_prompt = gr.Textbox(label="Beginning of a note", lines=5, elem_id="arena-prompt")
            a_decoding = decoding_controls()
            a_button = gr.Button("Generate both", variant="primary", elem_id="arena-button")
            sides = {}
            with gr.Row():
                for side, default in (("a", 0), ("b", min(1, len(names) - 1))):
                    with gr.Column(variant="panel"):
                        model = gr.Dropdown(names, value=names[default] if names else None,
                                            label=f"model {side.upper()}")
                        output = gr.Textbox(label=f"output {side.upper()}", lines=8, interactive=False,
                                            elem_id=f"arena-output-{side}")
                        status = gr.Markdown(elem_id=f"arena-status-{side}")
                        scores = [gr.Radio([1, 2, 3, 4, 5], label=f"{dim.capitalize()} ({side.upper()})",
                                           elem_id=f"score-{side}-{dim}") for dim in GRACE]
                        sides[side] = (model, output, status, scores)
            vote = gr.Radio(list(VOTES), label="Which is better? (optional)", elem_id="vote")
            rate_button = gr.Button("Save rating", elem_id="rate-button")
            rate_status = gr.Markdown(elem_id="rate-status")
            round_state = gr.State(None)
        with gr.Tab("Benchmark"):
            b_button = gr.Button("Refresh")
            with gr.Row():
                m_plot, h_plot = gr.Plot(label="automatic metrics"), gr.Plot(label="human ratings")
            m_table = gr.Dataframe(label=f"automatic metrics ({metrics_path}, across DVC experiments)",
                                   interactive=False)
            h_table = gr.Dataframe(label=f"mean human ratings ({ratings_path})", interactive=False)
        with gr.Tab("Report"):
            r_button = gr.Button("Reload")
            report = gr.Markdown(report_markdown(Path(report_path)))

        c_button.click(on_complete, [c_prompt, c_model, *c_decoding], [c_output, c_status],
                       api_name="complete", concurrency_id="model")
        rating_inputs = [*sides["a"][3], *sides["b"][3], vote]
        a_button.click(lambda: [None] * len(rating_inputs), None, rating_inputs, queue=False,
                       api_visibility="private")  # a new round starts unrated
        a_button.click(on_arena, [a_prompt, sides["a"][0], sides["b"][0], *a_decoding],
                       [sides["a"][1], sides["a"][2], sides["b"][1], sides["b"][2], round_state],
                       api_name="arena", concurrency_id="model")
        rate_button.click(on_rate, [round_state, *rating_inputs], [rate_status, round_state],
                          api_name="rate")
        benchmark_outputs = [m_plot, m_table, h_plot, h_table]
        b_button.click(on_benchmark, None, benchmark_outputs, api_name="benchmark")
        demo.load(on_benchmark, None, benchmark_outputs, api_visibility="private")
        r_button.click(lambda: report_markdown(Path(report_path)), None, report, api_name="report")
    demo.queue(default_concurrency_limit=concurrency, max_size=64)
    return demo


def launch(host: str = "127.0.0.1", port: int = 7860, share: bool = False, block: bool = True, **options):
    """Build the app (`options` go to build_app) and serve it on host:port; returns the Blocks.

    No public share link unless `share`. The browser-side run history is off (runs may hold
    patient text). With `block` the call serves until interrupted (Ctrl-C).
    """
    if options.get("model_dirs") is None:
        options["model_dirs"] = discover_models()
    log.info("app: models %s; ratings -> %s", ", ".join(options["model_dirs"]) or "(none)",
             options.get("ratings_path", RATINGS_PATH))
    demo = build_app(**options)
    report_dir = Path(options.get("report_path", REPORT_PATH)).resolve().parent
    demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
                allowed_paths=[str(report_dir)], run_history=False, quiet=not block)
    return demo
