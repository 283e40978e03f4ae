"""data/progress.py: bars on a terminal or when asked, silent otherwise; the items pass through unchanged."""

from __future__ import annotations

import io
import sys

from notelm.data import progress as progress_module
from notelm.data.progress import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_when_not_a_terminal_and_not_asked(monkeypatch):
    monkeypatch.delenv("NOTELM_PROGRESS", raising=False)
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert list(progress(range(5), "x")) == [0, 1, 2, 3, 4]
    assert err.getvalue() == ""


def test_shown_on_a_terminal_or_when_asked_and_hidden_when_told(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    monkeypatch.delenv("NOTELM_PROGRESS", raising=False)
    assert progress_module.enabled()
    monkeypatch.setenv("NOTELM_PROGRESS", "0")
    assert not progress_module.enabled()
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("NOTELM_PROGRESS", "1")
    assert list(progress(iter(range(3)), "generate smollm2", total=3, unit="batch")) == [0, 1, 2]
    assert "generate smollm2" in err.getvalue() and "3/3" in err.getvalue() and "batch/s" in err.getvalue()
