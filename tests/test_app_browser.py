"""The arena in a real browser: Debian's headless chromium, driven by selenium + chromedriver.

The setup installs chromium and chromium-driver with apt-get when they are missing and the test
runs as root; where they cannot be installed the test is skipped with the reason printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("gradio")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from notelm import arena  # noqa: E402, I001
from tests.test_app import PROMPT, launched  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*no_silent_downcasting", "ignore:The copy keyword is deprecated")

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1800"]


def ensure_chromium() -> str | None:
    """None when chromium and chromedriver are usable (installing them with apt-get if needed), else why not."""
    if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
        return None
    if os.environ.get("NOTELM_NO_APT"):
        return "chromium/chromium-driver missing and NOTELM_NO_APT is set"
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        return "chromium/chromium-driver missing; install them with `apt-get install chromium chromium-driver` (needs root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"]):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`{' '.join(cmd)}` failed: {exc}"
        if done.returncode != 0:
            return f"`{' '.join(cmd)}` exited {done.returncode}: {done.stderr.strip()[-300:]}"
    return None if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER) else "apt-get ran but chromium is missing"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Debian chromium with a fresh profile; skips (printing why) when it cannot be had."""
    reason = ensure_chromium()
    if reason:
        print(f"SKIP browser test: {reason}", file=sys.stderr)
        pytest.skip(reason)
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def textarea(driver, elem_id: str):
    return driver.find_element(By.CSS_SELECTOR, f"#{elem_id} textarea")


def both_outputs(driver) -> list[str] | None:
    """The two arena outputs once both hold text, else None (keep waiting)."""
    values = [textarea(driver, f"arena-output-{side}").get_property("value") for side in "ab"]
    return values if all(v.strip() for v in values) else None


def both_statuses(driver) -> list[str] | None:
    """The two arena timing lines once both are shown, else None."""
    values = [driver.find_element(By.ID, f"arena-status-{side}").text for side in "ab"]
    return values if all("tokens/s" in v for v in values) else None


def test_arena_in_the_browser_shows_both_outputs(browser, tiny_model_factory, tmp_path):
    models = {"llama": tiny_model_factory("llama"), "gpt2": tiny_model_factory("gpt2")}
    with launched(models, tmp_path / "ratings.jsonl", report_path=tmp_path / "report.md") as url:
        browser.get(url)
        wait = WebDriverWait(browser, 60)
        tab = wait.until(lambda d: next((b for b in d.find_elements(By.CSS_SELECTOR, "button[role=tab]")
                                         if b.text.strip() == "Arena"), None))
        tab.click()
        wait.until(lambda d: textarea(d, "arena-prompt").is_displayed())
        textarea(browser, "arena-prompt").send_keys(PROMPT)
        browser.find_element(By.ID, "arena-button").click()
        outputs = wait.until(both_outputs)
        statuses = wait.until(both_statuses)
        shot = tmp_path / "arena.png"
        browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")

        for side, dim in ((side, dim) for side in "ab" for dim in arena.GRACE):  # then rate the round
            browser.find_element(By.CSS_SELECTOR, f"#score-{side}-{dim} input[value='4']").click()
        browser.find_element(By.CSS_SELECTOR, "#vote input[value='B']").click()
        browser.find_element(By.ID, "rate-button").click()
        wait.until(lambda d: "Saved" in d.find_element(By.ID, "rate-status").text)
    assert len(outputs) == 2 and all(o.strip() for o in outputs)
    assert all(s.startswith("latency") for s in statuses)
    assert shot.stat().st_size > 10_000
    (rating,) = arena.read_ratings(tmp_path / "ratings.jsonl")
    assert rating["vote"] == "B" and rating["scores_a"] == dict.fromkeys(arena.GRACE, 4)
    assert rating["output_a"] == outputs[0] and rating["output_b"] == outputs[1]


def text_with(elem_id: str, needle: str):
    """A wait condition: the element's text once it contains `needle`."""
    def check(driver):
        text = driver.find_element(By.ID, elem_id).text
        return text if needle in text else None
    return check


def _tab(driver, name: str):
    wait = WebDriverWait(driver, 60)
    tab = wait.until(lambda d: next((b for b in d.find_elements(By.CSS_SELECTOR, "button[role=tab]")
                                     if b.text.strip() == name), None))
    tab.click()
    return wait


def test_a_blind_round_in_the_browser_names_the_models_only_after_the_rating(browser, tiny_model_factory, tmp_path):
    """Blind arena as a rater sees it, then the Benchmark tab's leaderboard; screenshots of both go to
    $NOTELM_SCREENSHOTS (default: the test's tmp dir)."""
    shots = Path(os.environ.get("NOTELM_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    models = {"llama": tiny_model_factory("llama"), "gpt2": tiny_model_factory("gpt2")}
    with launched(models, tmp_path / "ratings.jsonl", report_path=tmp_path / "report.md", arena_seed=1) as url:
        browser.get(url)
        wait = _tab(browser, "Arena")
        wait.until(lambda d: textarea(d, "arena-prompt").is_displayed())
        for i, vote in enumerate("ABA"):
            prompt = textarea(browser, "arena-prompt")
            prompt.clear()
            prompt.send_keys(f"{PROMPT} round {i}")
            browser.find_element(By.ID, "arena-button").click()
            wait.until(lambda d: both_statuses(d) and "Saved" not in d.find_element(By.ID, "rate-status").text
                       or None)
            statuses = wait.until(both_statuses)
            assert not any(name in s for s in statuses for name in models), statuses  # hidden while rating
            if i == 0:
                browser.save_screenshot(str(shots / "blind-arena.png"))
            for side, dim in ((side, dim) for side in "ab" for dim in arena.GRACE):
                browser.find_element(By.CSS_SELECTOR, f"#score-{side}-{dim} input[value='{3 + (side == 'a')}']").click()
            browser.find_element(By.CSS_SELECTOR, f"#vote input[value='{vote}']").click()
            browser.find_element(By.ID, "rate-button").click()
            revealed = wait.until(text_with("rate-status", "Saved"))
            assert "A was llama" in revealed or "A was gpt2" in revealed, revealed
        _tab(browser, "Benchmark")
        browser.find_element(By.XPATH, "//button[normalize-space()='Refresh']").click()
        board = wait.until(text_with("leaderboard", "llama"))
        browser.save_screenshot(str(shots / "leaderboard.png"))
    ratings = arena.read_ratings(tmp_path / "ratings.jsonl")
    assert len(ratings) == 3 and all(r["blind"] for r in ratings)
    assert "gpt2" in board and (shots / "blind-arena.png").stat().st_size > 10_000


def test_suggestions_appear_after_the_cursor_and_tab_accepts_them(browser, tiny_model_factory, tmp_path):
    """Type the beginning of a note, wait for the suggestion of the whole typed text to show in grey after the
    typed text in the note box itself (the separate suggestion box stays hidden), press Tab: the suggested words
    are in the box and the grey text is gone."""
    from selenium.webdriver.common.keys import Keys

    from notelm.app import SUGGEST_TOKENS, SUGGEST_WORDS
    from notelm.generation.suggest import Suggester, suggestion_text
    from notelm.training.weights import load_checkpoint

    models = {"base/tiny": tiny_model_factory("gpt2"), "finetuned": tiny_model_factory("llama")}
    generated, ended = Suggester(*load_checkpoint(models["finetuned"]), SUGGEST_WORDS,
                                 SUGGEST_TOKENS).propose_text(PROMPT)
    expected = suggestion_text(generated, SUGGEST_WORDS, ended)
    assert expected.strip()  # the tiny model proposes words after this prompt
    with launched(models, tmp_path / "ratings.jsonl", report_path=tmp_path / "report.md") as url:
        browser.get(url)
        wait = _tab(browser, "Complete")
        wait.until(lambda d: textarea(d, "complete-prompt").is_displayed())
        textarea(browser, "complete-prompt").send_keys(PROMPT)  # the fine-tuned model is the default choice
        grey = "#complete-ghost .ghost-words"
        wait.until(lambda d: d.execute_script(f"return document.querySelector('{grey}')?.textContent") == expected)
        ghost = browser.find_element(By.ID, "complete-ghost")
        assert ghost.get_attribute("textContent") == PROMPT + expected  # the typed text, then the grey words
        box, words = textarea(browser, "complete-prompt").rect, browser.find_element(By.CSS_SELECTOR, grey).rect
        assert box["x"] <= words["x"] < box["x"] + box["width"] and box["y"] <= words["y"] < box["y"] + box["height"]
        assert not textarea(browser, "complete-suggestion").is_displayed()
        assert " ms" in browser.find_element(By.ID, "complete-latency").text
        textarea(browser, "complete-prompt").send_keys(Keys.TAB)
        wait.until(lambda d: textarea(d, "complete-prompt").get_property("value") == PROMPT + expected)
        wait.until(lambda d: d.execute_script(f"return document.querySelector('{grey}').textContent") != expected)
