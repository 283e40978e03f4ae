"""The CJK character range, stated once: decoding joins WordPiece CJK characters with it, and the charts pick a
CJK font when a label holds one. Its own module so that restyling a chart re-runs no generation."""

from __future__ import annotations

import re

CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f"  # CJK characters and punctuation
CJK_CHAR = re.compile(f"[{CJK}]")
