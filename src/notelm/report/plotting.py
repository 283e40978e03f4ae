"""matplotlib as every NoteLM chart uses it (report, compare, app): headless, and able to draw CJK labels; and the
radar chart that `notelm compare` (radar.png) and the app's Benchmark tab both draw (`radar`).

matplotlib's default font (DejaVu Sans) has no Chinese or Japanese glyphs: a model or run named in Chinese
would be drawn as empty boxes. Since matplotlib 3.6 `font.family` is a per-glyph fallback list, so an
installed CJK font placed behind DejaVu Sans draws exactly the glyphs DejaVu lacks. No CJK font ships with
matplotlib or on PyPI in a form matplotlib finds, so where none is installed the charts still draw and the
caller gets a warning that names the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from notelm.data.cjk import CJK_CHAR

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
             "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN", "SimHei",
             "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB")
NO_CJK_FONT = ("chart labels contain CJK characters but no CJK font is installed, so they show as boxes; install one "
               "(Debian/Ubuntu: apt-get install fonts-noto-cjk; macOS and Windows have one) and draw the charts again")


def pyplot():
    """matplotlib.pyplot on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def cjk_font() -> str | None:
    """The first installed font family of CJK_FONTS, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def fonts_for(texts: Iterable[str]) -> str | None:
    """Make the next charts able to draw `texts`: when any has a CJK character, put an installed CJK font behind
    DejaVu Sans in matplotlib's fallback list. Returns a warning (NO_CJK_FONT) when one is needed and none is
    installed, else None."""
    if not any(CJK_CHAR.search(t or "") for t in texts):
        return None
    font = cjk_font()
    if font is None:
        return NO_CJK_FONT
    plt = pyplot()
    plt.rcParams["font.family"] = ["DejaVu Sans", font]
    return None


@dataclass(frozen=True)
class RadarLine:
    """One line of a radar chart: its legend label and its values, one per axis and then the first again (a
    closed line; NaN leaves a gap); `band`, in the same shape, shades ± band around it in the line's colour."""

    label: str
    values: Sequence[float]
    linestyle: str | None = None
    band: Sequence[float] | None = None


@dataclass(frozen=True)
class RadarStyle:
    """How a radar chart looks; the defaults are the app's small, filled chart (compare.RADAR_STYLE: its PNG)."""

    size: tuple[float, float] = (5.5, 4.5)  # inches
    clockwise_from_top: bool = False  # first axis at the top, clockwise; else matplotlib's: east, anticlockwise
    marker: str | None = None
    markersize: float | None = None
    fill: float | None = 0.1  # alpha of the area under each line; None: not filled
    tick_fontsize: float | None = 8  # None: matplotlib's default size
    title_fontsize: float | None = 10
    legend_loc: str = "upper right"
    legend_anchor: tuple[float, float] = (1.35, 1.1)
    legend_fontsize: float = 7


def radar(lines: list[RadarLine], labels: Sequence[str], title: str, top: float = 1.0,
          style: RadarStyle = RadarStyle()):
    """A matplotlib Figure (not registered with pyplot, so safe in a server's threads): a polar chart with one axis
    per label, radius 0..`top`, a line per `lines` and a legend when there is any."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=style.size)
    ax = fig.add_subplot(projection="polar")
    if style.clockwise_from_top:
        ax.set_theta_zero_location("N")
        ax.set_theta_direction(-1)
    angles = np.linspace(0, 2 * np.pi, len(labels), endpoint=False)
    closed = np.append(angles, angles[0])
    for line in lines:
        (drawn,) = ax.plot(closed, line.values, marker=style.marker, markersize=style.markersize, label=line.label,
                           linestyle=line.linestyle)
        if style.fill is not None:
            ax.fill(closed, line.values, alpha=style.fill)
        if line.band is not None:
            values, band = np.asarray(line.values, dtype=float), np.asarray(line.band, dtype=float)
            ax.fill_between(closed, values - band, values + band, color=drawn.get_color(), alpha=0.2)
    ax.set_xticks(angles, labels, **_size(style.tick_fontsize))
    ax.set_ylim(0, top)
    ax.set_title(title, **_size(style.title_fontsize))
    if lines:
        ax.legend(loc=style.legend_loc, bbox_to_anchor=style.legend_anchor, fontsize=style.legend_fontsize)
    fig.tight_layout()
    return fig


def _size(fontsize: float | None) -> dict[str, float]:
    return {} if fontsize is None else {"fontsize": fontsize}
