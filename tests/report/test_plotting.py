"""report/plotting.py: CJK labels draw with an installed CJK font, or warn with the fix when there is none."""

from __future__ import annotations

import warnings

from notelm.report import plotting


def test_latin_labels_need_nothing(monkeypatch):
    monkeypatch.setattr(plotting, "cjk_font", lambda: (_ for _ in ()).throw(AssertionError("not asked")))
    assert plotting.fonts_for(["smollm2-135m fine-tuned", "copy_forward"]) is None


def test_cjk_labels_without_a_cjk_font_warn_with_the_fix(monkeypatch):
    monkeypatch.setattr(plotting, "cjk_font", lambda: None)
    warning = plotting.fonts_for(["文中 GPT-2 (main)"])
    assert warning == plotting.NO_CJK_FONT and "apt-get install fonts-noto-cjk" in warning


def test_cjk_labels_draw_with_the_installed_font_behind_dejavu(monkeypatch, tmp_path):
    """A CJK font found: it goes behind DejaVu Sans in the fallback list, and a chart with a Chinese label draws
    every glyph (matplotlib warns "Glyph ... missing" otherwise) — checked for real when the machine has one."""
    plt = plotting.pyplot()
    monkeypatch.setitem(plt.rcParams, "font.family", plt.rcParams["font.family"])
    font = plotting.cjk_font()
    if font is None:  # this machine has none: check the setting with a stand-in name
        monkeypatch.setattr(plotting, "cjk_font", lambda: "Noto Sans CJK SC")
        assert plotting.fonts_for(["患者"]) is None
        assert list(plt.rcParams["font.family"]) == ["DejaVu Sans", "Noto Sans CJK SC"]
        return
    assert plotting.fonts_for(["患者"]) is None
    assert list(plt.rcParams["font.family"]) == ["DejaVu Sans", font]
    fig = plt.figure()
    fig.gca().set_title("患者神志清楚 smollm2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph would raise here
        fig.savefig(tmp_path / "c.png")
    plt.close(fig)


def test_one_radar_draws_the_app_s_and_compare_s_charts():
    """plotting.radar: a polar axis per label, a closed line per RadarLine (a band when given), the style's look."""
    import numpy as np

    lines = [plotting.RadarLine("a", [0.1, 0.2, 0.3, 0.1]), plotting.RadarLine("b", [0.5, np.nan, 0.4, 0.5], "--",
                                                                              band=[0.1, 0.0, 0.1, 0.1])]
    fig = plotting.radar(lines, ["x", "y", "z"], "app", top=5.0)  # the app's default: filled, east, anticlockwise
    [ax] = fig.axes
    assert ax.get_ylim() == (0.0, 5.0) and ax.get_title() == "app" and ax.get_theta_direction() == 1
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"] and len(ax.patches) == 2  # two fills
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    style = plotting.RadarStyle(clockwise_from_top=True, marker="o", fill=None, legend_loc="upper left")
    fig = plotting.radar(lines, ["x", "y", "z"], "compare", style=style)
    [ax] = fig.axes
    assert ax.get_theta_direction() == -1 and ax.get_theta_offset() == np.pi / 2 and not ax.patches
    assert ax.get_lines()[0].get_marker() == "o" and ax.get_lines()[1].get_linestyle() == "--"
    assert len(ax.collections) == 1  # the band of b
    assert not plotting.radar([], ["x", "y", "z"], "none").axes[0].get_legend()
