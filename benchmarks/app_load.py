"""Load test of `notelm app`: N concurrent users (default 20); every action must come back, every rating once.

Each user is its own gradio_client session with a distinct prompt. With `--mix` the users rotate
through three actions, as people at a ward's demo would: a streamed completion; a blind arena round
(the first and last model, sides shuffled and hidden) then its rating; a named arena round then its rating. After the run the ratings file is
read back: every rating the app said it saved must be there exactly once (none lost, none duplicated).
The test is bounded: at most 100 users, and a wall-clock limit after which the rest count as lost.
It writes

    action  users  ok  failed  lost  p50 s  p95 s  max s        (and: ratings saved / in the file / duplicated)

to benchmarks/results/app_load.json.

    python benchmarks/app_load.py --tiny                        # in-process app on two tiny random models
    python benchmarks/app_load.py --tiny --users 50 --mix       # 50 users: completions, arena rounds, ratings
    python benchmarks/app_load.py                               # in-process app on the checkpoints under models/
    python benchmarks/app_load.py --url http://127.0.0.1:7860/ --model base/smollm2-135m   # a running app

Only loopback addresses are accepted for --url.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

MAX_REQUESTS = 100
PROMPT = "Pt alert and oriented x3, follows commands. HR 80s NSR, BP stable. Note {i}:"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ACTIONS = ("complete", "blind round + rating", "named round + rating")
DECODING = ("greedy", 1.0, 1.0)  # decoding, temperature, top p


def one_user(url: str, models: list[str], i: int, action: str, max_new_tokens: int) -> tuple[float, bool, str]:
    """(seconds, rating saved, status) of one user's `action` in its own client session; raises on an error."""
    from gradio_client import Client

    tick = time.perf_counter()
    client = Client(url, verbose=False)
    prompt = PROMPT.format(i=i)
    if action == "complete":
        _, status = client.predict(prompt, models[0], max_new_tokens, *DECODING, api_name="/complete")
        if "tokens/s" not in status or "Error" in status:
            raise RuntimeError(status)
        return time.perf_counter() - tick, False, status
    blind = action.startswith("blind")  # the two models chosen, their sides shuffled and hidden
    _, status_a, _, status_b = client.predict(prompt, models[0], models[-1], max_new_tokens, *DECODING, "blind" if blind else "named",
                                              api_name="/arena")
    if "Error" in status_a + status_b:
        raise RuntimeError(f"{status_a} / {status_b}")
    saved = client.predict(4, 3, 3, 4, 2, 3, 3, 2, "A", api_name="/rate")
    if "Saved" not in saved:
        raise RuntimeError(saved)
    return time.perf_counter() - tick, True, saved


def load_test(url: str, models: list[str] | str, n: int = 20, max_new_tokens: int = 16, time_limit: float = 120.0,
              mix: bool = False, ratings_path: Path | None = None) -> dict:
    """Send `n` concurrent users to the app at `url` (loopback only): completions of `models[0]`, or with `mix`
    the ACTIONS in turn. Returns per action {users, ok, failed, lost, p50_s, p95_s, max_s}, the wall time, the
    ratings the app said it saved and — with `ratings_path`, the app's file — how many of their prompts are in
    the file and how many lines repeat one. Users still running after `time_limit` seconds count as lost.
    Raises ValueError for a non-loopback url or n out of 1..100."""
    from notelm.arena import read_ratings

    if urlparse(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"{url}: the load test only targets this machine (127.0.0.1)")
    if not 1 <= n <= MAX_REQUESTS:
        raise ValueError(f"users must be 1..{MAX_REQUESTS}, got {n}")
    models = [models] if isinstance(models, str) else list(models)
    actions = [ACTIONS[i % len(ACTIONS)] if mix else "complete" for i in range(n)]
    before = len(read_ratings(ratings_path)) if ratings_path and ratings_path.is_file() else 0
    tick = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=n)
    futures = {pool.submit(one_user, url, models, i, actions[i], max_new_tokens): i for i in range(n)}
    done, _ = wait(futures, timeout=time_limit)
    pool.shutdown(wait=False, cancel_futures=True)
    wall = time.perf_counter() - tick
    per_action: dict[str, dict] = {a: {"users": actions.count(a), "latencies": [], "failed": [], "lost": 0}
                                   for a in dict.fromkeys(actions)}
    saved_prompts = []
    for future, i in futures.items():
        row = per_action[actions[i]]
        if future not in done:
            row["lost"] += 1
            continue
        try:
            seconds, saved, _ = future.result()
        except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
            row["failed"].append(f"{type(exc).__name__}: {exc}")
            continue
        row["latencies"].append(seconds)
        if saved:
            saved_prompts.append(PROMPT.format(i=i))
    result = {"users": n, "wall_s": wall, "saved": len(saved_prompts), "actions": {}}
    for action, row in per_action.items():
        lat = np.array(row["latencies"]) if row["latencies"] else np.array([float("nan")])
        result["actions"][action] = {"users": row["users"], "ok": len(row["latencies"]), "failed": len(row["failed"]),
                                     "lost": row["lost"], "p50_s": float(np.percentile(lat, 50)),
                                     "p95_s": float(np.percentile(lat, 95)), "max_s": float(lat.max()),
                                     "failures": row["failed"][:3]}
    if ratings_path is not None:
        lines = [r.get("prompt") for r in read_ratings(ratings_path)[before:]] if ratings_path.is_file() else []
        result["in_file"] = sum(p in lines for p in saved_prompts)
        result["duplicated"] = len(lines) - len(set(lines))
    result["ok"] = sum(a["ok"] for a in result["actions"].values())
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running app (default: launch one in this process)")
    parser.add_argument("--model", action="append", help="model name(s) as the app lists them (default: all)")
    parser.add_argument("--tiny", action="store_true", help="launch on two tiny random models (tests/tiny.py)")
    parser.add_argument("--users", "--requests", type=int, default=20, dest="users")
    parser.add_argument("--mix", action="store_true", help="completions, blind and named arena rounds with ratings")
    parser.add_argument("--ratings-path", type=Path, help="the running app's ratings file, to check (with --url)")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=2, help="queue concurrency of the in-process app")
    parser.add_argument("--time-limit", type=float, default=300.0)
    args = parser.parse_args()
    # imported here, not at the top: tests/test_app.py loads this file without benchmarks/ on the path
    from results import save

    url, models, demo, ratings = args.url, args.model, None, args.ratings_path
    if url is None:
        from notelm.app import build_app, discover_models

        if args.tiny:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: tests.tiny
            from tests.tiny import make_tiny_model

            tmp = Path(tempfile.mkdtemp(prefix="notelm-app-load-"))
            found = {f: make_tiny_model(tmp / f, f) for f in ("llama", "gpt2")}
        else:
            found = discover_models()
        if not found:
            parser.error("no checkpoints under models/; run `dvc repro` or pass --tiny")
        port = free_port()
        ratings = Path(tempfile.mkdtemp()) / "ratings.jsonl"
        demo = build_app(found, ratings, concurrency=args.concurrency)
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        url, models = f"http://127.0.0.1:{port}/", models or list(found)
    if not models:
        parser.error("--model is required with --url")
    try:
        result = load_test(url, models, args.users, args.max_new_tokens, args.time_limit, args.mix, ratings)
    finally:
        if demo is not None:
            demo.close()
    rows = [[action, r["users"], r["ok"], r["failed"], r["lost"], f"{r['p50_s']:.2f}", f"{r['p95_s']:.2f}",
             f"{r['max_s']:.2f}"] for action, r in result["actions"].items()]
    clean = result["ok"] == result["users"] and result.get("in_file", result["saved"]) == result["saved"]
    clean = clean and not result.get("duplicated")
    where = f"at {url}" if args.url else "in an app launched in this process" + (" (tiny random)" if args.tiny else "")
    notes = [(f"Models {', '.join(models)} {where}, {args.max_new_tokens} new tokens each, app concurrency "
              f"{args.concurrency}."),
             f"{result['users']} users in {result['wall_s']:.1f} s wall; ratings saved {result['saved']}"
             + (f", in the file {result['in_file']}, duplicated lines {result['duplicated']}" if "in_file" in result
                else "") + ".",
             f"All succeed, every rating once: {'met' if clean else 'not met'}.",
             *(f"failure ({action}): {failure}" for action, r in result["actions"].items()
               for failure in r["failures"])]
    save("app_load", ["action", "users", "ok", "failed", "lost", "p50 s", "p95 s", "max s"], rows, notes,
         title="The app under concurrent users")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
