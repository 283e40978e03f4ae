"""The Gradio app, driven through gradio_client against an in-process launch on tiny random models."""

from __future__ import annotations

import json
import random
import re
import threading
import urllib.request
import zlib
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

from gradio_client import Client  # noqa: E402

from notelm import app, arena  # noqa: E402
from notelm.config.generate import GenerateParams
from notelm.generation.decoding import complete  # noqa: E402
from notelm.training.weights import load_checkpoint  # noqa: E402
from tests.tiny import make_tiny_chinese_model  # noqa: E402


def _benchmark(name: str):
    """A module of benchmarks/ loaded by path: putting benchmarks/ on sys.path would shadow libraries
    (its evaluate.py is not Hugging Face's `evaluate`)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


free_port, load_test = _benchmark("app_load").free_port, _benchmark("app_load").load_test

# gradio's own use of pandas 3 warns; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:.*no_silent_downcasting", "ignore:The copy keyword is deprecated")

PROMPT = "Pt alert and oriented x3, follows commands. HR 80s NSR"
PNG = b"\x89PNG\r\n\x1a\n" + zlib.compress(b"not really an image, but served byte for byte")
GREEDY = (12, "greedy", 1.0, 1.0)  # max new tokens, decoding, temperature, top p
NAMED = (*GREEDY, "named")  # an arena round whose sides are the models chosen, named


@contextmanager
def launched(models: dict[str, Path], ratings_path: Path, **options):
    """Serve app.launch(...) on a free loopback port without blocking; yield its URL; close it afterwards.

    The Benchmark tab reads only the workspace metrics file (no `dvc exp show`) unless told otherwise.
    """
    metrics_path = options.setdefault("metrics_path", ratings_path.parent / "eval.json")
    options.setdefault("metric_rows", lambda: app.workspace_metric_rows(metrics_path))
    port = free_port()
    demo = app.launch("127.0.0.1", port, block=False, model_dirs=models, ratings_path=ratings_path, **options)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def served(tiny_model_factory, tmp_path_factory):
    """(url, models, ratings path) of one app serving tiny llama and gpt2 models and a broken directory."""
    tmp = tmp_path_factory.mktemp("app")
    (tmp / "broken").mkdir()
    (tmp / "broken" / "config.json").write_text("{not json")
    models = {"llama": tiny_model_factory("llama"), "gpt2": tiny_model_factory("gpt2"), "broken": tmp / "broken",
              "zh": make_tiny_chinese_model(tmp / "zh")}
    ratings = tmp / "ratings" / "arena.jsonl"
    with launched(models, ratings, report_path=tmp / "reports" / "report.md", metrics_path=tmp / "eval.json",
                  arena_seed=0, notes_path=tmp / "no-test-split.jsonl") as url:
        yield url, models, ratings


def client(url: str) -> Client:
    return Client(url, verbose=False)


def reference(model_dir: Path, prompt: str) -> str:
    """The batched generator's greedy continuation, for comparing with what the app returns."""
    model, tokenizer = load_checkpoint(model_dir)
    return complete(model, tokenizer, [prompt], GenerateParams(max_new_tokens=GREEDY[0]))[0]["completion"]


def test_completion_streams_the_continuation_only(served):
    url, models, _ = served
    job = client(url).submit(PROMPT, "llama", *GREEDY, api_name="/complete")
    text, status = job.result(timeout=60)
    updates = [out[0] for out in job.outputs()]
    assert text and text == reference(models["llama"], PROMPT)  # same tokens as the pipeline's generator
    assert not text.startswith(PROMPT)
    assert len(updates) > 2 and updates[-1] == text  # partial texts came before the final one
    assert "llama:" in status and "tokens/s" in status


def test_arena_round_with_two_models(served):
    url, models, _ = served
    out_a, status_a, out_b, status_b = client(url).predict(PROMPT, "llama", "gpt2", *NAMED, api_name="/arena")
    assert out_a == reference(models["llama"], PROMPT)
    assert out_b == reference(models["gpt2"], PROMPT)
    for status in (status_a, status_b):
        assert status.startswith("latency") and "tokens/s" in status and "first token" in status and "MB" in status


def test_ratings_are_appended_and_read_back(served):
    url, _, ratings = served
    c = client(url)
    assert "Run an arena round" in c.predict(3, 3, 3, 3, 3, 3, 3, 3, "A", api_name="/rate")  # nothing to rate yet
    before = len(arena.read_ratings(ratings))
    scores = [(5, 4, 3, 2, 1, 2, 3, 4, "A"), (3, 4, 5, 4, 3, 2, 1, 2, "tie"), (4, 4, 4, 4, 2, 2, 2, 2, None)]
    for i, (*values, vote) in enumerate(scores):
        c.predict(f"{PROMPT} {i}", "llama", "gpt2", *NAMED, api_name="/arena")
        if i == 0:  # an incomplete rating is refused and the round stays rateable
            assert "Not saved" in c.predict(None, 4, 3, 2, 1, 2, 3, 4, "A", api_name="/rate")
        assert "Saved" in c.predict(*values, vote, api_name="/rate")
        assert "Run an arena round" in c.predict(*values, vote, api_name="/rate")  # each round is rated once

    lines = ratings.read_text().splitlines()
    assert len(lines) == before + len(scores)
    rows = [json.loads(line) for line in lines]  # every line is one complete JSON object
    new = rows[before:]
    assert [r["vote"] for r in new] == ["A", "tie", None]
    assert new[0]["scores_a"] == dict(zip(arena.GRACE, (5, 4, 3, 2)))
    assert new[0]["model_a"] == "llama" and new[0]["output_a"] and new[0]["prompt"] == f"{PROMPT} 0"
    assert new[0]["blind"] is False and new[0]["ttft_s_a"] > 0 and new[0]["peak_memory_mb_b"] > 0

    _, _, _, _, human, _ = c.predict(api_name="/benchmark")
    by_model = {row[0]: dict(zip(human["headers"], row)) for row in human["data"]}
    expected = arena.human_summary(rows)
    assert by_model["llama"]["generalization"] == next(r for r in expected if r["model"] == "llama")["generalization"]
    assert by_model["llama"]["ratings"] == len(rows)


def test_a_blind_round_hides_the_names_until_the_rating_is_saved(served):
    url, models, ratings = served
    c = client(url)
    seen = set()
    for i in range(4):  # chosen, but hidden and shuffled ("(random)" would draw: see below)
        out_a, status_a, out_b, status_b = c.predict(f"{PROMPT} blind {i}", "llama", "gpt2", *GREEDY, "blind",
                                                     api_name="/arena")
        shown = " ".join([status_a, status_b])
        assert not any(name in shown for name in models), shown  # no model's name before the vote
        done = c.predict(4, 4, 4, 4, 2, 2, 2, 2, "A", api_name="/rate")
        revealed = re.search(r"A was \*\*(\w+)\*\*, B was \*\*(\w+)\*\*", done)
        assert "Saved" in done and revealed and revealed.group(1) != revealed.group(2)
        record = arena.read_ratings(ratings)[-1]
        assert record["blind"] is True and (record["model_a"], record["model_b"]) == revealed.groups()
        assert {out_a, out_b} == {reference(models[n], f"{PROMPT} blind {i}") for n in revealed.groups()}
        seen.add(revealed.groups())
    assert seen == {("llama", "gpt2"), ("gpt2", "llama")}  # sides are shuffled each round
    *_, board = c.predict(api_name="/benchmark")
    assert board["headers"][:3] == ["rank", "model", "strength"] and len(board["data"]) >= 2


def test_a_blind_draw_takes_two_distinct_models():
    names = ["llama", "gpt2", "opt"]
    rng = random.Random(1)
    draws = [app.draw_round(names, ("(random)", "(random)"), rng) for _ in range(60)]
    assert all(a != b and {a, b} <= set(names) for a, b in draws)
    assert {m for pair in draws for m in pair} == set(names)
    assert all("opt" in app.draw_round(names, ("opt", "(random)"), rng) for _ in range(20))


def test_a_note_to_start_from(served, tmp_path):
    url, _, _ = served
    c = client(url)
    assert c.predict(api_name="/complete_starter") in app.EXAMPLE_NOTES  # no prepared split here
    assert c.predict(api_name="/arena_starter") in app.EXAMPLE_NOTES
    test = tmp_path / "test.jsonl"
    test.write_text('{"prompt": "context note", "scored": false}\n{"prompt": "Pt alert and", "scored": true}\n')
    assert app.starting_note(random.Random(0), test) == "Pt alert and"  # a scored test prompt


def test_a_chinese_prompt_completes_on_a_wordpiece_model(served):
    """The seed-003 arena's case: a GPT-2 with a BERT-style Chinese tokenizer, in Complete and in the Arena."""
    url, models, _ = served
    prompt = "患者神志清楚，生命体征"
    text, status = client(url).predict(prompt, "zh", *GREEDY, api_name="/complete")
    assert text and text == reference(models["zh"], prompt)
    assert " " not in text and "[SEP]" not in text and "[CLS]" not in text  # characters joined, no markers
    assert all("\u4e00" <= ch <= "\u9fff" or ch in "，。：" for ch in text), text
    out_a, _, out_b, _ = client(url).predict(prompt, "zh", "gpt2", *NAMED, api_name="/arena")
    assert out_a == text and out_b


def test_over_long_prompt_is_refused(served):
    url, _, _ = served
    long_prompt = "HR 80s NSR, BP stable. " * 400  # well past the tiny models' 512 positions
    text, status = client(url).predict(long_prompt, "llama", *GREEDY, api_name="/complete")
    assert text == "" and "prompt too long for llama" in status and "512" in status
    out_a, status_a, out_b, status_b = client(url).predict(long_prompt, "llama", "gpt2", *NAMED, api_name="/arena")
    assert out_a == out_b == "" and "prompt too long" in status_a and "prompt too long" in status_b


def test_broken_model_shows_its_error_and_the_other_side_completes(served):
    url, models, _ = served
    c = client(url)
    out_a, status_a, out_b, status_b = c.predict(PROMPT, "broken", "llama", *NAMED, api_name="/arena")
    assert out_a == "" and status_a.startswith("**Error:**") and "broken" in status_a
    assert out_b == reference(models["llama"], PROMPT) and "tokens/s" in status_b
    text, status = c.predict(PROMPT, "broken", *GREEDY, api_name="/complete")
    assert text == "" and "**Error:**" in status
    assert "Run an arena round" in c.predict(3, 3, 3, 3, 3, 3, 3, 3, "A", api_name="/rate")  # failed rounds: no rating
    assert c.predict(PROMPT, "gpt2", *GREEDY, api_name="/complete")[0]  # still serving


def test_twenty_concurrent_completions_all_come_back(served):
    url, _, _ = served
    result = load_test(url, "gpt2", n=20, max_new_tokens=8, time_limit=120)
    assert result["ok"] == 20 and result["actions"]["complete"]["lost"] == 0, result


def test_mixed_users_every_rating_saved_once(served):
    """Completions, blind and named arena rounds with ratings at once: each saved rating is in the file once."""
    url, _, ratings = served
    result = load_test(url, ["llama", "gpt2"], n=9, max_new_tokens=6, time_limit=180, mix=True, ratings_path=ratings)
    assert result["ok"] == 9 and result["saved"] == 6, result
    assert result["in_file"] == 6 and result["duplicated"] == 0, result


def test_benchmark_and_report_tabs(tiny_model_factory, tmp_path):
    metrics = {"models": {"pretrained": {k: 0.1 for k in app.METRIC_KEYS}, "finetuned": {k: 0.3 for k in app.METRIC_KEYS}},
               "baselines": {"copy_forward": {k: 0.2 for k in app.METRIC_KEYS}},
               # differences are not systems: the Benchmark tab must not list them
               "differences": {"finetuned-pretrained": {k: 0.2 for k in app.METRIC_KEYS},
                               "finetuned-best_baseline": {"invented_fact_rate": 0.1, "invented_fact_rate_ci_low": 0.05,
                                                           "invented_fact_rate_ci_high": 0.2,
                                                           "invented_fact_rate_verdict": "worse",
                                                           "invented_fact_rate_baseline": "aligned_copy"}},
               "study_way": {"systems": {"empty": {k: 0.7 for k in app.METRIC_KEYS}}},
               "bertscore": {"model": "m", "layer": 6}, "bootstrap": {"samples": 10, "clusters": 3}, "n_examples": 5}
    (tmp_path / "eval.json").write_text(json.dumps(metrics))
    report = tmp_path / "reports" / "report.md"
    report.parent.mkdir()
    report.write_text("# NoteLM report\n\n![rouge](rouge.png)\n")
    (report.parent / "rouge.png").write_bytes(PNG)
    with launched({"llama": tiny_model_factory("llama")}, tmp_path / "r.jsonl", report_path=report,
                  metrics_path=tmp_path / "eval.json") as url:
        c = client(url)
        _, table, claim, _, human, _ = c.predict(api_name="/benchmark")
        text = c.predict(api_name="/report")
        image = urllib.request.urlopen(url + f"gradio_api/file={report.parent.resolve()}/rouge.png").read()
    systems = {row[1]: row for row in table["data"]}
    assert set(systems) == {"pretrained", "finetuned", "copy_forward"}
    assert systems["finetuned"][table["headers"].index("rouge1")] == 0.3
    assert human["data"] in ([], [[None] * len(human["headers"])])  # no ratings yet
    assert claim["data"] == [["invented facts", "lower", "+0.1000 [+0.0500, +0.2000]", "worse", "aligned_copy"]]
    assert text.startswith("# NoteLM report") and f"/gradio_api/file={report.parent.resolve()}/rouge.png" in text
    assert image == PNG  # the report's charts are served


def test_benchmark_rows_span_dvc_experiments(monkeypatch, tmp_path):
    from notelm import compare

    ev = {"models": {"pretrained": {k: 0.1 for k in app.METRIC_KEYS}, "finetuned": {k: 0.4 for k in app.METRIC_KEYS}},
          "bootstrap": {"clusters": 2}}
    runs = [{"rev": "workspace", "data": {"params": {"params.yaml": {"data": {"model": "distilgpt2"}}}}}]
    monkeypatch.setattr(compare, "exp_show", lambda *a, **k: runs)
    monkeypatch.setattr(compare, "read_detail", lambda run: ev)
    rows = app.experiment_metric_rows()
    assert [(r["experiment"], r["system"], r["rouge1"]) for r in rows] == [
        ("workspace", "pretrained distilgpt2", 0.1), ("workspace", "finetuned distilgpt2", 0.4)]

    def no_dvc(*a, **k):
        raise app.NoteLMError("`dvc` not found")

    monkeypatch.setattr(compare, "exp_show", no_dvc)  # falls back to the workspace metrics file
    (tmp_path / "eval.json").write_text(json.dumps(ev))
    assert [r["system"] for r in app.experiment_metric_rows(tmp_path / "eval.json")] == ["pretrained", "finetuned"]


# ---------------------------------------------------------------- pure functions


def test_report_tab_says_how_to_make_a_missing_report(tmp_path):
    assert "dvc repro report" in app.report_markdown(tmp_path / "report.md")


def test_discover_models_finds_base_and_finetuned_checkpoints(tmp_path):
    for d in ("models/base/smollm2-135m", "models/base/distilgpt2", "models/finetuned", "models/base/empty"):
        (tmp_path / d).mkdir(parents=True)
    for d in ("models/base/smollm2-135m", "models/base/distilgpt2", "models/finetuned"):
        (tmp_path / d / "config.json").write_text("{}")
    found = app.discover_models(tmp_path)
    assert list(found) == ["base/distilgpt2", "base/smollm2-135m", "finetuned"]


def test_model_cache_loads_each_model_once_and_intact_under_concurrency(tiny_model_factory, monkeypatch):
    dirs = {"llama": tiny_model_factory("llama"), "gpt2": tiny_model_factory("gpt2")}
    expected = {name: reference(path, PROMPT) for name, path in dirs.items()}
    calls = []

    def counting_load(path):
        calls.append(path)
        return load_checkpoint(path)

    monkeypatch.setattr(app, "load_checkpoint", counting_load)
    for _ in range(3):  # parallel from_pretrained calls used to leave weights on the meta device
        cache, got = app.ModelCache(dirs), []
        threads = [threading.Thread(target=lambda n=name: got.append((n, cache.get(n))))
                   for name in ["llama", "gpt2"] * 3]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(got) == 6 and all(loaded is cache.get(name) for name, loaded in got)
        for name in dirs:
            model, tokenizer = cache.get(name)
            assert not any(p.is_meta for p in model.parameters())
            cfg = GenerateParams(max_new_tokens=GREEDY[0])
            assert complete(model, tokenizer, [PROMPT], cfg)[0]["completion"] == expected[name]
    assert len(calls) == 6  # once per model per cache
    with pytest.raises(arena.Refused, match="unknown model"):
        cache.get("nope")


def test_decoding_settings_are_checked():
    assert app.decoding(8, "sampling", 0.7, 0.9).do_sample
    for bad in ((0, "greedy", 1, 1), (8, "beam", 1, 1), (8, "sampling", 0, 0.9), (8, "sampling", 1, 1.5)):
        with pytest.raises(arena.Refused):
            app.decoding(*bad)


def test_append_rating_keeps_one_complete_line_per_rating(tmp_path):
    path = tmp_path / "ratings" / "arena.jsonl"
    path.parent.mkdir()
    path.write_bytes(b'{"vote": "A"}\n{"vote": "B", "trunc')  # a torn last line from a crash
    threads = [threading.Thread(target=arena.append_rating, args=(path, {"i": i, "text": "x" * 5000}))
               for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = arena.read_ratings(path)  # the torn line is skipped
    assert [r.get("vote") for r in rows[:1]] == ["A"]
    assert sorted(r["i"] for r in rows[1:]) == list(range(20))
    assert path.read_bytes().endswith(b"\n")


def test_rating_record_needs_every_score():
    round_ = {"prompt": "p", "decoding": {}, "a": {"model": "x", "completion": "c"}, "b": {"model": "y", "completion": "d"}}
    record = arena.rating_record(round_, [1, 2, 3, 4], [5, 4, 3, 2], "tie")
    assert record["scores_b"]["artistry"] == 3 and record["vote"] == "tie"
    for a, vote in (([1, 2, 3], None), ([1, 2, 3, 6], None), ([1, 2, 3, None], None), ([1, 2, 3, 4], "C")):
        with pytest.raises(arena.Refused):
            arena.rating_record(round_, a, [1, 1, 1, 1], vote)


def test_cli_app_defaults_to_loopback_without_share():
    from notelm.cli import _parser, main

    args = _parser().parse_args(["app"])
    assert (args.host, args.port, args.share, args.ratings_path) == ("127.0.0.1", 7860, False, "ratings/arena.jsonl")
    assert main(["app", "--model", "no-equals-sign"]) == 1


def test_a_non_loopback_address_needs_a_sign_in(tiny_model_factory, tmp_path, capsys):
    from notelm.cli import main

    assert main(["app", "--host", "0.0.0.0", "--model", f"llama={tiny_model_factory('llama')}"]) == 1
    assert "--auth-file" in capsys.readouterr().err
    # a public share link from loopback is no way around it
    assert main(["app", "--share", "--insecure-no-auth", "--model", f"llama={tiny_model_factory('llama')}"]) == 1
    assert "--share opens a public gradio.live link" in capsys.readouterr().err
    users = tmp_path / "users.txt"
    users.write_text("nurse:not-a-hash\n")
    assert main(["app", "--host", "0.0.0.0", "--auth-file", str(users)]) == 1
    assert "expected user:pbkdf2_sha256$" in capsys.readouterr().err


def test_signed_in_raters_get_in_and_are_recorded_others_are_refused(tiny_model_factory, tmp_path):
    from gradio_client import Client as GradioClient

    users = arena_users = {"nurse": app.password_hash("s3cret"), "charge": app.password_hash("other")}
    assert app.check_password("s3cret", users["nurse"]) and not app.check_password("wrong", users["nurse"])
    port = free_port()
    ratings = tmp_path / "ratings.jsonl"
    demo = app.launch("127.0.0.1", port, block=False, users=arena_users, ratings_path=ratings,
                      model_dirs={"llama": tiny_model_factory("llama"), "gpt2": tiny_model_factory("gpt2")},
                      metric_rows=lambda: [], metrics_path=tmp_path / "eval.json")
    url = f"http://127.0.0.1:{port}/"
    try:
        with pytest.raises(Exception):  # no credentials: the API is closed
            GradioClient(url, verbose=False).predict(PROMPT, "llama", *GREEDY, api_name="/complete")
        with pytest.raises(Exception):
            GradioClient(url, auth=("nurse", "wrong"), verbose=False)
        signed_in = GradioClient(url, auth=("nurse", "s3cret"), verbose=False)
        assert signed_in.predict(PROMPT, "llama", *GREEDY, api_name="/complete")[0]
        signed_in.predict(PROMPT, "(random)", "(random)", *GREEDY, "blind", api_name="/arena")
        assert "Saved" in signed_in.predict(3, 3, 3, 3, 3, 3, 3, 3, "B", api_name="/rate")
        assert arena.read_ratings(ratings)[-1]["rater"] == "nurse"
    finally:
        demo.close()


def test_weights_whose_memorization_gate_failed_are_refused_unless_allowed(tiny_model_factory, tmp_path):
    from notelm.privacy.memorize import checkpoint_id

    models = {"finetuned": tiny_model_factory("llama"), "base/tiny": tiny_model_factory("gpt2")}
    gate = tmp_path / "memorization.json"
    gate.write_text(json.dumps({"gate": "fail", "problems": {"finetuned": ["finetuned.exact_gap = 0.4 > 0.1 allowed"]},
                                "checkpoints": {"finetuned": checkpoint_id(models["finetuned"]),
                                                "pretrained": checkpoint_id(models["base/tiny"])}}))
    for allowed in (False, True):
        with launched(models, tmp_path / f"ratings-{allowed}" / "arena.jsonl", memorization_path=gate,
                      allow_memorizing=allowed) as url:
            page = urllib.request.urlopen(url + "config").read().decode()
            text, status = client(url).predict(PROMPT, "finetuned", *GREEDY, api_name="/complete")
            base_text, _ = client(url).predict(PROMPT, "base/tiny", *GREEDY, api_name="/complete")
        assert "finetuned.exact_gap = 0.4" in page and base_text  # the page names it; the base still serves
        if allowed:
            assert text and "Serving weights that failed the memorization gate" in page and "allow-memorizing" in page
        else:
            assert text == "" and "finetuned is not served" in status and "--allow-memorizing" in status
            assert "Not served" in page


def test_the_page_suggests_the_next_words_of_the_typed_text_and_accepts_them(tiny_model_factory, tmp_path):
    from notelm.generation.suggest import Suggester, suggestion_text

    models = {"base/tiny": tiny_model_factory("gpt2"), "finetuned": tiny_model_factory("llama")}
    assert app.default_model(list(models)) == "finetuned" and app.default_model(["base/x"]) == "base/x"
    typist = Suggester(*load_checkpoint(models["finetuned"]), app.SUGGEST_WORDS, app.SUGGEST_TOKENS)

    def expected(text: str) -> str:
        generated, ended = typist.propose_text(text)
        return suggestion_text(generated, app.SUGGEST_WORDS, ended)

    with launched(models, tmp_path / "ratings" / "arena.jsonl") as url:
        words, latency = client(url).predict(PROMPT, "finetuned", "", api_name="/suggest")
        assert words == expected(PROMPT) and words.strip() and "ms" in latency
        chart = "Pt alert and oriented x3, follows commands."
        with_chart, _ = client(url).predict(PROMPT, "finetuned", chart, api_name="/suggest")
        assert with_chart == expected(app.with_chart(PROMPT, chart))
        text, cleared = client(url).predict(PROMPT, words, api_name="/accept_suggestion")
        assert text == PROMPT + words and cleared == ""
        assert client(url).predict("", "finetuned", "", api_name="/suggest") == ("", "")
