"""mkdocs hook for alignkit's site: the table of contents of a notebook page is read from its rendered headings.

mkdocs-jupyter builds a page's table of contents from a markdown copy of the notebook from which it has cut every
`inline code` span, so nbdev-style headings such as "## `load_model`" vanish from it and the others get anchors
that do not match the page's (which keep the code text). Reading the headings of the rendered HTML instead gives
the same ids that the page has.
"""
import html as _html
import re

from mkdocs.structure.toc import get_toc

_re_h = re.compile(r'<h([1-6])\b[^>]*\bid="([^"]+)"[^>]*>(.*?)</h\1>', re.S)
_re_anchor = re.compile(r'<a\b[^>]*class="[^"]*anchor-link[^"]*"[^>]*>.*?</a>', re.S)
_re_tag = re.compile(r"<[^>]+>")

def headings(content: str) -> list[tuple[int, str, str]]:
    "(level, id, text) of each heading with an id in rendered HTML, anchor links dropped."
    out = []
    for level, hid, inner in _re_h.findall(content):
        text = _html.unescape(_re_tag.sub("", _re_anchor.sub("", inner))).strip()
        out.append((int(level), _html.unescape(hid), text))
    return out

def toc_tokens(hs: list[tuple[int, str, str]]) -> list[dict]:
    "Nest headings into the token tree that `mkdocs.structure.toc.get_toc` reads."
    root, stack = [], []
    for level, hid, text in hs:
        tok = {"level": level, "id": hid, "name": text, "children": []}
        while stack and stack[-1]["level"] >= level: stack.pop()
        (stack[-1]["children"] if stack else root).append(tok)
        stack.append(tok)
    return root

def on_page_content(html, page, config, files):
    if not page.file.src_uri.endswith(".ipynb"): return html
    hs = headings(html)
    if hs: page.toc = get_toc(toc_tokens(hs))
    return html
