"""How a file name that is not valid UTF-8 is written: one rule for every output format and
the baseline file, so it lives below them all."""

from __future__ import annotations

import re

# A file name that is not valid UTF-8 reaches Python with each undecodable byte as a lone
# surrogate (U+DCE9 for 0xE9, PEP 383), which no UTF-8 output can hold: every format shows such a
# byte as the four characters \xe9 (caf\xe9.py), SARIF's URIs percent-encode the raw bytes.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# in a JSON document: a surrogate pair escape (one astral character) is kept, a lone surrogate
# (escaped by ensure_ascii, or raw without it) is rewritten, and any other escape is stepped over
# whole, so the text \\udce9 (an escaped backslash, then udce9) is not mistaken for one
_JSON_LONE = re.compile(r"\\ud[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}|\\u(d[89a-f][0-9a-f]{2})|\\."
                        "|([\ud800-\udfff])")


def _escape(code: int) -> str:
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def escape_surrogates(text: str) -> str:
    """``text`` with every lone surrogate as a backslash escape, so that it encodes as UTF-8."""
    return LONE_SURROGATE.sub(lambda m: _escape(ord(m.group())), text)


def _json_escape(m: re.Match[str]) -> str:
    escaped, raw = m.groups()
    if escaped is None and raw is None:
        return m.group()
    return "\\" + _escape(int(escaped, 16) if escaped else ord(raw))  # JSON's \\ for \


def escape_json_surrogates(text: str, ensure_ascii: bool = True) -> str:
    """``escape_surrogates`` on the strings of a JSON document written by json.dumps with
    ``ensure_ascii`` or without it; the text left as it is when it has none."""
    if "\\ud" not in text if ensure_ascii else LONE_SURROGATE.search(text) is None:
        return text
    return _JSON_LONE.sub(_json_escape, text)
