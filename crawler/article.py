"""Article-body detection and page-chrome vocabulary: which part of a page is the article.

The body is found by text density, in the way of readability: every paragraph of prose scores by its
length and punctuation, its parent receives the score in full, its grandparent half and the next one a
quarter; a candidate's score is weighed by how little of its text is link text and by its class/id
vocabulary. The best candidate is then widened by a wrapper or two when they add little but a headline,
a lead image or captions (little text, few links). Pages without enough prose (galleries, image lists)
have no body: there the whole page is searched and chrome is recognised by its class/id vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crawler.config import CrawlConfig
from crawler.text import NON_TEXT_TAGS, block_text, normalize_caption, text_len

# class/id tokens of page chrome: navigation, comments, recommendations, sharing, ads, profiles.
CHROME_TOKENS = frozenset((
    "comment", "comments", "cmmt", "cmmts", "reply", "footer", "foot", "header", "nav", "navbar", "menu",
    "sidebar", "side", "aside", "related", "relate", "relative", "recommend", "recommends", "tuijian", "xgyd",
    "share", "sharing", "social", "ad", "ads", "advert", "advertisement", "sponsor", "banner", "promo", "hot",
    "hotlist", "rank", "ranking", "login", "copyright", "crumb", "crumbs", "breadcrumb", "breadcrumbs",
    "toolbar", "toolbox", "widget", "qrcode", "qr", "ewm", "erweima", "popup", "modal", "mask", "tag", "tags",
    "pager", "pagination", "author", "profile", "user", "avatar", "weibo", "follow", "download", "subscribe",
    "feed", "feeds", "guess", "logo", "icon", "emoji", "face", "tie", "gg", "guanggao", "jubao",
    "sinaads", "recommendad", "adbox",
))
# class/id tokens of article containers.
ARTICLE_TOKENS = frozenset((
    "article", "articles", "content", "contents", "main", "post", "text", "txt", "detail", "details", "entry",
    "story", "body", "artibody", "zhengwen", "zw", "endtext", "editor", "rich", "note", "cont", "newscon",
))
_TOKEN_SPLIT = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_BLOCK_PARAGRAPHS = {"p", "pre", "blockquote"}
# Containers whose own (br-separated) text also counts as a paragraph.
_TEXT_CONTAINERS = {"td", "div", "section", "article", "center", "font", "span", "li", "dd", "body"}
# Text inside these is never article prose.
_NOT_PROSE = {"a", "figcaption", "h1", "h2", "h3", "h4", "h5", "h6", "button", "label", "option"}
_PUNCT = re.compile(r"[，。、；,;！？!?]")
# Readability's scoring: a paragraph scores 1, plus one per clause mark, plus one per this many
# characters (at most `_MAX_LENGTH_BONUS`); its parent gets it whole, each further ancestor half of
# what the one below got, for `_PROPAGATION_LEVELS` levels; class/id vocabulary adds or takes this.
_LENGTH_UNIT = 100
_MAX_LENGTH_BONUS = 3
_PROPAGATION_LEVELS = 3
_CLASS_WEIGHT = 25


@dataclass
class BodyRules:
    """Thresholds of body detection (documented defaults; `ExtractRules` carries them)."""

    # A paragraph scores when it has at least this many characters (a CJK character counts one).
    min_paragraph_chars: int = 20
    # A page has a body only when the best candidate holds this much non-link text; else the whole page.
    min_body_chars: int = CrawlConfig.min_body_chars
    # Wrappers added around the best candidate at most, each only while it adds little text and few links.
    widen_levels: int = 2
    # A wrapper is added when the candidate holds at least this share of its non-link text ...
    widen_min_share: float = 0.7
    # ... and links make at most this share of its text.
    widen_max_link_share: float = 0.4


def tokens(el) -> list[str]:
    """Lower-case word tokens of an element's class and id (camelCase and snake_case split)."""
    raw = f"{el.get('class') or ''} {el.get('id') or ''}"
    if raw == " ":
        return []
    return [t for t in _TOKEN_SPLIT.split(_CAMEL.sub(" ", raw).lower()) if t]


def is_chrome(el) -> bool:
    """class/id say navigation, comments, sharing, ads, ... and not article content."""
    toks = tokens(el)
    return bool(toks) and any(t in CHROME_TOKENS for t in toks) and not any(t in ARTICLE_TOKENS for t in toks)


def _class_weight(el) -> int:
    toks = tokens(el)
    return ((_CLASS_WEIGHT if any(t in ARTICLE_TOKENS for t in toks) else 0)
            - (_CLASS_WEIGHT if any(t in CHROME_TOKENS for t in toks) else 0))


@dataclass
class _Measure:
    chars: int = 0        # text characters under the element (whitespace excluded)
    link_chars: int = 0   # of which inside links
    chrome: bool = False  # the element or an ancestor is chrome
    not_prose: bool = False  # inside a link, heading or caption


def _visible_len(text: str | None) -> int:
    """Characters of a text node that are not whitespace (as text_len of its normalised form)."""
    return len("".join(text.split())) if text else 0


def measure(root) -> dict:
    """Text and link-text size of every element, and whether it sits in chrome: one pass, O(elements)."""
    out: dict = {}

    def walk(el, chrome: bool, not_prose: bool) -> _Measure:
        tag = el.tag if isinstance(el.tag, str) else ""
        m = _Measure(chrome=chrome or (bool(tag) and is_chrome(el)), not_prose=not_prose or tag in _NOT_PROSE)
        if tag in NON_TEXT_TAGS:
            out[el] = m
            return m
        m.chars = _visible_len(el.text)
        for child in el:
            if isinstance(child.tag, str):
                cm = walk(child, m.chrome, m.not_prose)
                m.chars += cm.chars
                m.link_chars += cm.link_chars
            if child.tail:
                m.chars += _visible_len(child.tail)
        if tag == "a":
            m.link_chars = m.chars
        out[el] = m
        return m
    walk(root, False, False)
    return out


def _own_text(el) -> str:
    """Text written directly in an element (its text and its children's tails), as br-separated pages have."""
    return normalize_caption("".join([el.text or ""] + [c.tail or "" for c in el]))


def _paragraph_text(el) -> str:
    tag = el.tag
    if tag in _BLOCK_PARAGRAPHS:
        return block_text(el)
    if tag in _TEXT_CONTAINERS:
        return _own_text(el)
    return ""


def find_body(root, rules: BodyRules | None = None, sizes: dict | None = None):
    """The article's container element, or None when the page has no article-like prose."""
    rules = rules or BodyRules()
    sizes = sizes if sizes is not None else measure(root)
    scores: dict = {}
    for el, m in sizes.items():
        if m.chrome or m.not_prose or m.chars < rules.min_paragraph_chars or not isinstance(el.tag, str):
            continue
        text = _paragraph_text(el)
        n = text_len(text)
        if n < rules.min_paragraph_chars:
            continue
        score = 1 + len(_PUNCT.findall(text)) + min(n // _LENGTH_UNIT, _MAX_LENGTH_BONUS)
        node, share = el.getparent(), 1.0
        for _ in range(_PROPAGATION_LEVELS):
            if node is None or node.tag == "html":
                break
            scores[node] = scores.get(node, 0.0) + score * share
            node, share = node.getparent(), share / 2
    best, best_score = None, 0.0
    for el, s in scores.items():
        m = sizes[el]
        link_share = m.link_chars / m.chars if m.chars else 1.0
        final = (s + _class_weight(el)) * (1 - link_share)
        if final > best_score:
            best, best_score = el, final
    if best is None:
        return None
    body_chars = sizes[best].chars - sizes[best].link_chars
    if body_chars < rules.min_body_chars:
        return None
    for _ in range(rules.widen_levels):
        parent = best.getparent()
        if parent is None or parent.tag in ("body", "html"):
            break
        m = sizes[parent]
        if not m.chars or m.link_chars / m.chars > rules.widen_max_link_share:
            break
        if body_chars / max(1, m.chars - m.link_chars) < rules.widen_min_share:
            break
        best = parent
    return best
