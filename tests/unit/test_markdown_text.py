"""`ui.text.md`: text from the data escaped so that Streamlit's Markdown shows it as written (issue 28, item 3)."""
from __future__ import annotations

import pytest

from ui.text import md


@pytest.mark.parametrize(("raw", "escaped"), [
    ("![px](http://127.0.0.1:5189/colname.png)", "\\!\\[px\\](http://127.0.0.1:5189/colname.png)"),  # no image
    ("[x](javascript:alert(1))", "\\[x\\](javascript:alert(1))"),  # no link
    ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)>"),  # no HTML, no autolink
    ("a_b *c* `d` ~e~ $f$ &amp; |g|", "a\\_b \\*c\\* \\`d\\` \\~e\\~ \\$f\\$ \\&amp; \\|g\\|"),
    ("see :red[alarm] :material/home:", "see :red\\[alarm\\] :material/home:"),  # no colour directive
    ("# title\n1. item\n- item\n> quote\n===", "\\# title\n1\\. item\n\\- item\n\\> quote\n\\==="),  # no blocks
    ("a\r\nb\rc", "a\nb\nc"),
    ("Premium = 1", "Premium = 1"), ("P(yes)", "P(yes)"), ("e.g. 3.5 km/h, 40%", "e.g. 3.5 km/h, 40%"),  # as they are
    ("back\\slash", "back\\\\slash"), (12, "12"),
])
def test_markdown_is_escaped_and_plain_text_kept(raw, escaped: str) -> None:
    assert md(raw) == escaped
