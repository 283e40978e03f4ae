"""matplotlib as every NoteLM chart uses it (report, compare, app): headless, and able to draw CJK labels.

matplotlib's default font (DejaVu Sans) has no Chinese or Japanese glyphs: a model or run named in Chinese
would be drawn as empty boxes. Since matplotlib 3.6 `font.family` is a per-glyph fallback list, so an
installed CJK font placed behind DejaVu Sans draws exactly the glyphs DejaVu lacks. No CJK font ships with
matplotlib or on PyPI in a form matplotlib finds, so where none is installed the charts still draw and the
caller gets a warning that names the fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
             "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN", "SimHei",
             "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB")
NO_CJK_FONT = ("chart labels contain CJK characters but no CJK font is installed, so they show as boxes; install one "
               "(Debian/Ubuntu: apt-get install fonts-noto-cjk; macOS and Windows have one) and draw the charts again")
CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f"  # CJK characters and punctuation (decoding.py too)
_CJK_CHAR = re.compile(f"[{CJK}]")


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
    if not any(_CJK_CHAR.search(t or "") for t in texts):
        return None
    font = cjk_font()
    if font is None:
        return NO_CJK_FONT
    plt = pyplot()
    plt.rcParams["font.family"] = ["DejaVu Sans", font]
    return None
