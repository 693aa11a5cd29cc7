"""Pagination links: the links that continue the same list (or article) on its next pages.

The spider follows them without spending crawl depth, so articles behind a long paginated list are
as near to a seed as those on its first page. A link continues the page when it says so (`rel=next`,
`rel=prev`), or when its text is a page word or number ("下一页", "尾页", "3", "»", "next") and it
either sits in a pager (class/id vocabulary) or points to a variant of this page's own URL that differs
only in numbers (`list_2.html`, `?page=3`, `/page/4/`).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from crawler.article import tokens

_PAGE_WORDS = re.compile(
    r"^(下一?页|上一?页|后一?页|前一?页|首页|尾页|末页|最后一页|第?\s*[0-9]{1,4}\s*页?|\[?[0-9]{1,4}\]?|"
    r"next|prev|previous|older|newer|first|last|more|»|«|›|‹|>|<|>>|<<|下一页\s*>+|<+\s*上一页)$", re.I)
_PAGER_TOKENS = frozenset(("page", "pages", "pager", "paging", "pagination", "pagenav", "pagelist", "pagebar",
                           "pnnext", "next", "prev", "fenye", "fanye", "pg", "turnpage"))
_MAX_PAGE_WORD_CHARS = 12
_DIGITS = re.compile(r"[_\-/.]?[0-9]+")
_PAGE_PARAMS = re.compile(r"(?i)(^|&)(page|p|pn|pg|pageno|pagenum|page_num|start|offset|cur)=[^&]*")


def _in_pager(a) -> bool:
    node = a
    for _ in range(3):
        node = node.getparent()
        if node is None:
            return False
        if any(t in _PAGER_TOKENS or t.startswith("pag") for t in tokens(node)):
            return True
    return False


def _shape(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    path = _DIGITS.sub("", parts.path)
    # Index pages: "list/" and "list/index.html" are the same list.
    path = re.sub(r"(?i)/(index|default|list)?(\.s?html?|\.php|\.aspx?)?$", "/", path)
    query = _DIGITS.sub("", _PAGE_PARAMS.sub("", parts.query))
    return parts.hostname or "", path, query


def is_page_variant(url: str, page_url: str) -> bool:
    """The same list or article as `page_url` on another page: the URLs differ only in numbers."""
    return url != page_url and _shape(url) == _shape(page_url)


def pagination_links(anchors, page_url: str) -> list[str]:
    """URLs of this page's pagination links, in document order, of its (`<a>`, resolved URL) pairs."""
    out: list[str] = []
    seen: set[str] = set()
    for a, url in anchors:
        if url in seen or url == page_url:
            continue
        rel = (a.get("rel") or "").lower().split()
        # Page words are short: a long link text is never one (and costs nothing to rule out).
        text = "".join(a.itertext()).strip()
        paging = "next" in rel or "prev" in rel or (
            len(text) <= _MAX_PAGE_WORD_CHARS and bool(_PAGE_WORDS.match(" ".join(text.split())))
            and (_in_pager(a) or is_page_variant(url, page_url)))
        if paging:
            seen.add(url)
            out.append(url)
    return out
