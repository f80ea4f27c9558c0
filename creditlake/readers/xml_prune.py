"""Recovery path for XML nested beyond the parser's depth limit (libxml2 stops at 2,048 levels
even with huge_tree and loses every record after the deep one).

`prune_deep` copies the document with every element deeper than `max_depth` removed and, where
a pruned subtree began, a `<creditlake_too_deep>1</creditlake_too_deep>` marker, so the parser
reads the document again, the marked record is rejected with its reason and the records after
it load. A token scanner (regular expressions, one Python step per tag): slow, so it runs only
after the parser has failed on depth, never on normal files.
"""

from __future__ import annotations

import re
from typing import BinaryIO

MARKER = "creditlake_too_deep"
_MARK = f"<{MARKER}>1</{MARKER}>".encode()
_TOKEN = re.compile(rb'<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<![^>]*>|</[^>]*>'
                    rb'|<(?:[^>"\']|"[^"]*"|\'[^\']*\')*>', re.S)
BLOCK = 8 << 20


def prune_deep(src: BinaryIO, dst: BinaryIO, max_depth: int) -> int:
    """Copy src to dst without elements deeper than max_depth; returns the pruned subtrees."""
    depth, pruned, buf = 0, 0, b""
    while True:
        chunk = src.read(BLOCK)
        buf += chunk
        pos = 0
        for m in _TOKEN.finditer(buf):
            if depth <= max_depth:
                dst.write(buf[pos:m.start()])  # text between tags at a kept depth
            tok = m.group()
            pos = m.end()
            if tok.startswith(b"</"):
                depth -= 1
                if depth < max_depth:
                    dst.write(tok)
            elif tok.startswith((b"<!", b"<?")):
                if depth <= max_depth:
                    dst.write(tok)
            else:
                closes = tok.endswith(b"/>")
                if depth < max_depth:
                    dst.write(tok)
                elif depth == max_depth:  # entering the too-deep part: mark it once
                    dst.write(_MARK)
                    pruned += 1
                if not closes:
                    depth += 1
        rest = buf[pos:]
        lt = rest.rfind(b"<")
        if chunk and lt >= 0:  # a tag cut by the block boundary: finish it with the next one
            if depth <= max_depth:
                dst.write(rest[:lt])
            buf = rest[lt:]
            continue
        if depth <= max_depth:
            dst.write(rest)
        buf = b""
        if not chunk:
            return pruned
