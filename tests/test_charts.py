"""charts.py: CJK labels draw with an installed CJK font, or warn with the fix when there is none."""

from __future__ import annotations

import warnings

from notelm import charts


def test_latin_labels_need_nothing(monkeypatch):
    monkeypatch.setattr(charts, "cjk_font", lambda: (_ for _ in ()).throw(AssertionError("not asked")))
    assert charts.fonts_for(["smollm2-135m fine-tuned", "copy_forward"]) is None


def test_cjk_labels_without_a_cjk_font_warn_with_the_fix(monkeypatch):
    monkeypatch.setattr(charts, "cjk_font", lambda: None)
    warning = charts.fonts_for(["文中 GPT-2 (main)"])
    assert warning == charts.NO_CJK_FONT and "apt-get install fonts-noto-cjk" in warning


def test_cjk_labels_draw_with_the_installed_font_behind_dejavu(monkeypatch, tmp_path):
    """A CJK font found: it goes behind DejaVu Sans in the fallback list, and a chart with a Chinese label draws
    every glyph (matplotlib warns "Glyph ... missing" otherwise) — checked for real when the machine has one."""
    plt = charts.pyplot()
    monkeypatch.setitem(plt.rcParams, "font.family", plt.rcParams["font.family"])
    font = charts.cjk_font()
    if font is None:  # this machine has none: check the setting with a stand-in name
        monkeypatch.setattr(charts, "cjk_font", lambda: "Noto Sans CJK SC")
        assert charts.fonts_for(["患者"]) is None
        assert list(plt.rcParams["font.family"]) == ["DejaVu Sans", "Noto Sans CJK SC"]
        return
    assert charts.fonts_for(["患者"]) is None
    assert list(plt.rcParams["font.family"]) == ["DejaVu Sans", font]
    fig = plt.figure()
    fig.gca().set_title("患者神志清楚 smollm2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph would raise here
        fig.savefig(tmp_path / "c.png")
    plt.close(fig)
