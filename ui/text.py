"""Text taken from the data, shown literally where Streamlit renders Markdown.

Streamlit renders Markdown (GitHub-flavoured, with its own directives: `:red[...]`,
`:material/icon:`, `$math$`) in widget labels and help texts, `st.markdown`, `st.caption`,
`st.write`, alerts, headers, metrics, expander and tab labels and radio options. A column named
`![px](http://host/p.png)` would make every browser that opens the page fetch that address, and
`[x](javascript:...)` would become a link. Everything from the data (column names, category
values, file names, titles and nouns of a dataset definition, and error messages that quote
them) goes through `md` before it is put into such a string; select-box options and table cells
are plain text already and take the raw value.

`md` backslash-escapes (CommonMark §2.4: an escaped punctuation character is shown as itself)
the characters that open Markdown anywhere in a line: brackets (links, images, Streamlit's
`:color[...]` directives), emphasis (`*`, `_`, `~`), code (`` ` ``), HTML and autolinks (`<`),
entities (`&`), math (`$`), tables (`|`) and the backslash itself; and the first character of
each line when it is punctuation (after a number: `1.`), which could open a heading, a list, a
quote, a rule or a fence. Other punctuation is left as it is, so ordinary text reads the same
in the source ("Premium = 1", "P(yes)").
"""
from __future__ import annotations

import re
from typing import Any

_INLINE = re.compile(r"([\\`*_\[\]<|~$&])")
_LINE_START = re.compile(r"(?m)^([ \t]*[0-9]*)([!-/:-@\[-`{-~])")  # ASCII punctuation opening a line
_BREAKS = re.compile(r"\r\n?|[\v\f\u2028\u2029]")  # line breaks other than \n


def md(value: Any) -> str:
    """`value` as text that Streamlit's Markdown shows exactly as written (see the module docstring)."""
    text = _INLINE.sub(r"\\\1", _BREAKS.sub("\n", str(value)))
    # a line opening with a character escaped above starts with its backslash already
    return _LINE_START.sub(lambda m: m.group(1) + ("" if m.group(2) == "\\" else "\\") + m.group(2), text)
