"""Load test of `notelm app`: N concurrent completions (default 20); every one must come back.

Each request is its own gradio_client session calling /complete with a distinct prompt. The
test is bounded: at most 100 requests, and a wall-clock limit after which it fails. It prints

    requests  ok  failed  p50 s  p95 s  max s  wall s

    python benchmarks/app_load.py --tiny                        # in-process app on two tiny random models
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


def one_request(url: str, model: str, i: int, max_new_tokens: int) -> tuple[float, str, str]:
    """(seconds, continuation, status) of one completion in its own client session."""
    from gradio_client import Client

    tick = time.perf_counter()
    client = Client(url, verbose=False)
    text, status = client.predict(PROMPT.format(i=i), model, max_new_tokens, "greedy", 1.0, 1.0, api_name="/complete")
    return time.perf_counter() - tick, text, status


def load_test(url: str, model: str, n: int = 20, max_new_tokens: int = 16, time_limit: float = 120.0) -> dict:
    """Send `n` concurrent completions to the app at `url` (loopback only); return counts and latencies.

    A request counts as ok when its status reports tokens/s (no error). Requests still running
    after `time_limit` seconds count as lost. Raises ValueError for a non-loopback url or n out of 1..100.
    """
    if urlparse(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"{url}: the load test only targets this machine (127.0.0.1)")
    if not 1 <= n <= MAX_REQUESTS:
        raise ValueError(f"requests must be 1..{MAX_REQUESTS}, got {n}")
    tick = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=n)
    futures = [pool.submit(one_request, url, model, i, max_new_tokens) for i in range(n)]
    done, lost = wait(futures, timeout=time_limit)
    pool.shutdown(wait=False, cancel_futures=True)
    latencies, failures = [], []
    for f in done:
        try:
            seconds, text, status = f.result()
        except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
            failures.append(f"{type(exc).__name__}: {exc}")
            continue
        if "tokens/s" in status and "Error" not in status:
            latencies.append(seconds)
        else:
            failures.append(status)
    lat = np.array(latencies) if latencies else np.array([float("nan")])
    return {
        "requests": n, "ok": len(latencies), "failed": len(failures), "lost": len(lost),
        "p50_s": float(np.percentile(lat, 50)), "p95_s": float(np.percentile(lat, 95)), "max_s": float(lat.max()),
        "wall_s": time.perf_counter() - tick, "failures": failures[:5],
    }


def table(result: dict) -> str:
    """The result as a two-line text table."""
    head = f"{'requests':>8} {'ok':>4} {'failed':>6} {'lost':>4} {'p50 s':>6} {'p95 s':>6} {'max s':>6} {'wall s':>6}"
    row = (f"{result['requests']:>8} {result['ok']:>4} {result['failed']:>6} {result['lost']:>4} "
           f"{result['p50_s']:>6.2f} {result['p95_s']:>6.2f} {result['max_s']:>6.2f} {result['wall_s']:>6.2f}")
    return f"{head}\n{row}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running app (default: launch one in this process)")
    parser.add_argument("--model", help="model name as the app lists it (default: the first one)")
    parser.add_argument("--tiny", action="store_true", help="launch on two tiny random models (tests/tiny.py)")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=2, help="queue concurrency of the in-process app")
    parser.add_argument("--time-limit", type=float, default=120.0)
    args = parser.parse_args()

    url, model, demo = args.url, args.model, None
    if url is None:
        from notelm.app import build_app, discover_models

        if args.tiny:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from tiny import make_tiny_model

            tmp = Path(tempfile.mkdtemp(prefix="notelm-app-load-"))
            models = {f: make_tiny_model(tmp / f, f) for f in ("llama", "gpt2")}
        else:
            models = discover_models()
        if not models:
            parser.error("no checkpoints under models/; run `dvc repro` or pass --tiny")
        port = free_port()
        demo = build_app(models, Path(tempfile.mkdtemp()) / "ratings.jsonl", concurrency=args.concurrency)
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        url, model = f"http://127.0.0.1:{port}/", model or next(iter(models))
    if model is None:
        parser.error("--model is required with --url")
    try:
        result = load_test(url, model, args.requests, args.max_new_tokens, args.time_limit)
    finally:
        if demo is not None:
            demo.close()
    print(f"model {model} at {url}, {args.max_new_tokens} new tokens each")
    print(table(result))
    for failure in result["failures"]:
        print("failure:", failure)
    return 0 if result["ok"] == result["requests"] else 1


if __name__ == "__main__":
    sys.exit(main())
