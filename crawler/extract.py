"""Image-text pairs, links and robots directives from HTML pages and search results: pure functions.

A pair is an image URL with the text that describes it: the image's `alt`, the `<figcaption>` of
its `<figure>`, its `title`, or the nearest short caption-like text around it; the page's Open
Graph image comes with `og:title`. Image URLs are resolved against `<base href>` and the page URL;
lazy-load attributes (`data-src`, `data-original`, ...) win over a placeholder `src`, and of a
`srcset` the largest candidate is taken. Images whose declared size already fails the image rules
(tracking pixels, icons) are skipped, so they are never downloaded.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit

from parsel import Selector

# Attributes that lazy-loading scripts read the real image URL from, most specific first.
LAZY_SRC_ATTRS = ("data-src", "data-original", "data-lazy-src", "data-lazy", "data-url", "data-echo",
                  "data-actualsrc", "original")
LAZY_SRCSET_ATTRS = ("data-srcset", "data-lazy-srcset", "srcset")
# Elements whose text is never a caption.
_NON_TEXT_TAGS = {"script", "style", "noscript", "template", "svg", "select", "option", "button"}
_CJK = r"\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
# A line break between two CJK characters is not a space (CSS Text 3 segment-break rule).
_CJK_BREAK = re.compile(rf"(?<=[{_CJK}])[ \t\r\f\v]*\n\s*(?=[{_CJK}])")
_SPACES = re.compile(r"\s+")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_PX = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(px)?\s*$", re.I)
_SRCSET_ITEM = re.compile(r"\s*(\S+?)(?:\s+(\d+(?:\.\d+)?)([wx]))?\s*(?:,|$)")


@dataclass
class ExtractRules:
    """What counts as a pair; the crawl job fills it from the crawl and image-rule configs."""

    # Declared width or height at most this is skipped (the image rules keep sides > min_side).
    min_side: int = 0
    # Declared aspect ratio (long/short) above this is skipped (0: not checked).
    max_aspect_ratio: float = 0.0
    max_caption_chars: int = 256
    # Image URLs matching this are placeholders, never pairs.
    placeholder_pattern: str = r"(?i)(^data:|blank\.(gif|png)|spacer\.(gif|png)|placeholder|transparent\.(gif|png)|lazy[-_]?load|loading\.(gif|svg))"
    # Ancestors examined for the nearest caption-like text.
    nearby_levels: int = 2


@dataclass
class Pair:
    url: str
    caption: str
    alt: str = ""
    title: str = ""
    # Where the caption came from: alt, figcaption, title, nearby, og, result.
    source: str = ""


@dataclass
class PageExtract:
    pairs: list[Pair] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    # Lower-cased directives of <meta name="robots"> (and of the crawler's own name).
    robots: set[str] = field(default_factory=set)
    # Images skipped, by reason (declared_too_small, declared_bad_aspect, placeholder, bad_url).
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass
class SearchResults:
    pairs: list[Pair] = field(default_factory=list)
    # Source page of each pair (same order), or "" when the entry had none.
    page_urls: list[str] = field(default_factory=list)
    # Result entries on the page, usable or not (zero means the results are exhausted).
    entries: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------- text

def normalize_caption(text: str | None, max_chars: int = 0) -> str:
    """Entities decoded, invisible characters dropped, whitespace collapsed, CJK line breaks joined."""
    if not text:
        return ""
    # Pages often escape twice (`&amp;nbsp;`); the parser decoded once.
    if "&" in text:
        text = html_lib.unescape(text)
    text = _INVISIBLE.sub("", text)
    text = _CJK_BREAK.sub("", text)
    text = _SPACES.sub(" ", text).strip()
    if max_chars and len(text) > max_chars:
        text = text[:max_chars].rstrip()
    return text


def element_text(el) -> str:
    """textContent of an element without script/style, as a browser concatenates inline nodes."""
    parts: list[str] = []

    def walk(node) -> None:
        tag = node.tag if isinstance(node.tag, str) else ""
        if tag.lower() in _NON_TEXT_TAGS:
            return
        if node.text and tag:
            parts.append(node.text)
        for child in node:
            walk(child)
            if child.tail:
                parts.append(child.tail)
    walk(el)
    return "".join(parts)


# ---------------------------------------------------------------- URLs

def resolve_url(base: str, ref: str | None) -> str | None:
    """Absolute http(s) URL without fragment, or None."""
    if not ref:
        return None
    ref = ref.strip()
    if not ref or ref.startswith(("data:", "javascript:", "mailto:", "about:", "blob:")):
        return None
    try:
        url = urldefrag(urljoin(base, ref)).url
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return url


def parse_srcset(value: str | None) -> list[tuple[str, float, str]]:
    """[(url, size, unit)] of a srcset; a candidate without descriptor is 1x."""
    out = []
    if not value:
        return out
    pos = 0
    while pos < len(value):
        m = _SRCSET_ITEM.match(value, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        url = m.group(1).rstrip(",")
        if url:
            out.append((url, float(m.group(2) or 1), m.group(3) or "x"))
    return out


def _largest_srcset(value: str | None) -> tuple[str | None, float | None]:
    """URL of the largest candidate and its width descriptor (None for x descriptors)."""
    cands = parse_srcset(value)
    if not cands:
        return None, None
    widths = [c for c in cands if c[2] == "w"]
    if widths:
        url, w, _ = max(widths, key=lambda c: c[1])
        return url, w
    return max(cands, key=lambda c: c[1])[0], None


def _declared_px(value: str | None) -> float | None:
    if not value:
        return None
    m = _PX.match(value)
    return float(m.group(1)) if m else None


def _declared_size_from_style(style: str | None) -> tuple[float | None, float | None]:
    if not style:
        return None, None
    found = {}
    for decl in style.split(";"):
        k, _, v = decl.partition(":")
        k = k.strip().lower()
        if k in ("width", "height"):
            found[k] = _declared_px(v)
    return found.get("width"), found.get("height")


# ---------------------------------------------------------------- images

class _ImageReader:
    def __init__(self, base: str, rules: ExtractRules):
        self.base = base
        self.rules = rules
        self.placeholder = re.compile(rules.placeholder_pattern) if rules.placeholder_pattern else None
        self.skipped: dict[str, int] = {}

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def _is_placeholder(self, ref: str | None) -> bool:
        return bool(ref) and bool(self.placeholder and self.placeholder.search(ref))

    def image_url(self, img) -> str | None:
        """The real image URL of an <img> (or <source>), after declared-size checks; None: skipped."""
        ref = None
        srcset_width = None
        for attr in LAZY_SRCSET_ATTRS:
            ref, srcset_width = _largest_srcset(img.get(attr))
            if ref and not self._is_placeholder(ref):
                break
            ref, srcset_width = None, None
        if ref is None:
            for attr in LAZY_SRC_ATTRS + ("src",):
                cand = img.get(attr)
                if cand and cand.strip() and not self._is_placeholder(cand):
                    ref = cand
                    break
        if ref is None:
            self.skip("placeholder" if any(img.get(a) for a in LAZY_SRC_ATTRS + ("src",)) else "no_url")
            return None
        url = resolve_url(self.base, ref)
        if url is None:
            self.skip("bad_url")
            return None
        if not self._declared_size_ok(img, srcset_width):
            return None
        return url

    def _declared_size_ok(self, img, srcset_width: float | None) -> bool:
        w, h = _declared_px(img.get("width")), _declared_px(img.get("height"))
        sw, sh = _declared_size_from_style(img.get("style"))
        w = w if w is not None else sw
        h = h if h is not None else sh
        if srcset_width is not None:
            # The declared size is the display size; the resource itself is `srcset_width` wide.
            if w and h:
                h = h * srcset_width / w
            w = srcset_width
        min_side = self.rules.min_side
        if min_side and ((w is not None and w <= min_side) or (h is not None and h <= min_side)):
            self.skip("declared_too_small")
            return False
        ratio = self.rules.max_aspect_ratio
        if ratio and w and h and max(w, h) / min(w, h) > ratio:
            self.skip("declared_bad_aspect")
            return False
        return True


def _enclosing(el, tag: str, levels: int):
    node = el.getparent()
    for _ in range(levels):
        if node is None:
            return None
        if isinstance(node.tag, str) and node.tag.lower() == tag:
            return node
        node = node.getparent()
    return None


def _has_image(el) -> bool:
    return el.tag == "img" or next(el.iter("img"), None) is not None


def _caption_like(el, max_chars: int) -> str:
    if not isinstance(el.tag, str) or el.tag.lower() in _NON_TEXT_TAGS or _has_image(el):
        return ""
    text = normalize_caption(element_text(el))
    return text if 0 < len(text) <= max_chars else ""


def nearby_text(img, levels: int, max_chars: int) -> str:
    """The closest short text around an image: its tail, then the next and previous siblings,
    moving out one ancestor at a time. Text that holds another image, or follows one, belongs to
    that image."""
    node = img
    for _ in range(max(1, levels)):
        tail = normalize_caption(node.tail)
        if 0 < len(tail) <= max_chars:
            return tail
        nxt = node.getnext()
        while nxt is not None and not isinstance(nxt.tag, str):
            nxt = nxt.getnext()
        if nxt is not None:
            text = _caption_like(nxt, max_chars)
            if text:
                return text
        prev = node.getprevious()
        while prev is not None and not isinstance(prev.tag, str):
            prev = prev.getprevious()
        if prev is not None:
            before = prev.getprevious()
            while before is not None and not isinstance(before.tag, str):
                before = before.getprevious()
            # Text right after another image is that image's caption, not this one's.
            if before is None or not _has_image(before):
                text = _caption_like(prev, max_chars)
                if text:
                    return text
        parent = node.getparent()
        if parent is None or parent.tag in ("body", "html"):
            break
        # Only step out when the image is the parent's only image: else the text is shared.
        if sum(1 for _ in parent.iter("img")) > 1:
            break
        node = parent
    return ""


def _pair_for_img(img, reader: _ImageReader, rules: ExtractRules) -> Pair | None:
    url = reader.image_url(img)
    if url is None:
        return None
    cap_max = rules.max_caption_chars
    alt = normalize_caption(img.get("alt"), cap_max)
    title = normalize_caption(img.get("title"), cap_max)
    if alt:
        return Pair(url, alt, alt, title, "alt")
    figure = _enclosing(img, "figure", rules.nearby_levels + 1)
    if figure is not None:
        cap_el = next(figure.iter("figcaption"), None)
        if cap_el is not None:
            text = normalize_caption(element_text(cap_el), cap_max)
            if text:
                return Pair(url, text, alt, title, "figcaption")
    if title:
        return Pair(url, title, alt, title, "title")
    text = nearby_text(img, rules.nearby_levels, cap_max)
    if text:
        return Pair(url, text, alt, title, "nearby")
    reader.skip("no_caption")
    return None


def _base_url(root, page_url: str) -> str:
    for el in root.iter("base"):
        href = el.get("href")
        if href and href.strip():
            resolved = resolve_url(page_url, href)
            if resolved:
                return resolved
    return page_url


def _meta(root, *names: str) -> str:
    for el in root.iter("meta"):
        key = (el.get("property") or el.get("name") or "").strip().lower()
        if key in names:
            value = el.get("content")
            if value and value.strip():
                return value
    return ""


def _root(html: str | bytes):
    if isinstance(html, bytes):
        html = html.decode("utf-8", errors="replace")
    if not html.strip():
        return None
    return Selector(text=html).root


def extract_page(html: str | bytes, page_url: str, rules: ExtractRules | None = None,
                 robots_names: Iterable[str] = ("robots",)) -> PageExtract:
    """Pairs (deduplicated by URL, document order, Open Graph last), links and robots directives."""
    rules = rules or ExtractRules()
    out = PageExtract()
    root = _root(html)
    if root is None:
        return out
    base = _base_url(root, page_url)
    reader = _ImageReader(base, rules)
    seen: set[str] = set()
    for img in root.iter("img"):
        pair = _pair_for_img(img, reader, rules)
        if pair and pair.url not in seen:
            seen.add(pair.url)
            out.pairs.append(pair)
    og_url = resolve_url(base, _meta(root, "og:image:secure_url", "og:image", "og:image:url"))
    if og_url and og_url not in seen:
        caption = normalize_caption(_meta(root, "og:title", "twitter:title", "og:description"),
                                    rules.max_caption_chars)
        if caption:
            seen.add(og_url)
            out.pairs.append(Pair(og_url, caption, "", caption, "og"))
    names = {n.lower() for n in robots_names}
    for el in root.iter("meta"):
        if (el.get("name") or "").strip().lower() in names:
            out.robots.update(t.strip().lower() for t in (el.get("content") or "").split(",") if t.strip())
    link_seen: set[str] = set()
    for a in root.iter("a", "area"):
        if "nofollow" in (a.get("rel") or "").lower().split():
            continue
        url = resolve_url(base, a.get("href"))
        if url and url not in link_seen:
            link_seen.add(url)
            out.links.append(url)
    out.skipped = reader.skipped
    return out


# ---------------------------------------------------------------- search results

def _first_text(sel, css: str) -> str:
    found = sel.css(css)
    if not found:
        return ""
    first = found[0]
    if isinstance(first.root, str):
        return first.root
    return element_text(first.root)


def extract_search_html(html: str | bytes, url: str, *, result_css: str, caption_css: str = "",
                        page_css: str = "", rules: ExtractRules | None = None) -> SearchResults:
    """One pair per result entry: its first usable image, its caption, its source page."""
    rules = rules or ExtractRules()
    out = SearchResults()
    root = _root(html)
    if root is None:
        return out
    sel = Selector(root=root)
    reader = _ImageReader(_base_url(root, url), rules)
    for entry in sel.css(result_css):
        out.entries += 1
        el = entry.root
        image_url = None
        alt = title = ""
        for img in el.iter("img"):
            image_url = reader.image_url(img)
            if image_url:
                alt = normalize_caption(img.get("alt"), rules.max_caption_chars)
                title = normalize_caption(img.get("title"), rules.max_caption_chars)
                break
        if image_url is None:
            continue
        caption = normalize_caption(_first_text(entry, caption_css), rules.max_caption_chars) if caption_css else ""
        caption = caption or alt or title
        if not caption:
            reader.skip("no_caption")
            continue
        page_ref = _first_text(entry, page_css) if page_css else next((a.get("href") for a in el.iter("a") if a.get("href")), "")
        out.pairs.append(Pair(image_url, caption, alt, title, "result"))
        out.page_urls.append(resolve_url(reader.base, page_ref) or "")
    out.skipped = reader.skipped
    return out


def _walk_path(obj, path: str):
    for part in [p for p in path.split(".") if p]:
        if isinstance(obj, list):
            try:
                obj = obj[int(part)]
            except (ValueError, IndexError):
                return None
        elif isinstance(obj, dict):
            obj = obj.get(part)
        else:
            return None
    return obj


def extract_search_json(text: str | bytes, url: str, *, result_path: str, image_key: str,
                        caption_key: str, page_key: str, max_caption_chars: int = 256) -> SearchResults:
    """Pairs from a JSON search API: the list at `result_path`, keys (dotted paths) per entry.

    Raises ValueError for a body that is not JSON (the spider counts it as a bad search page)."""
    out = SearchResults()
    data = json.loads(text)
    entries = _walk_path(data, result_path)
    if not isinstance(entries, list):
        return out
    for entry in entries:
        out.entries += 1
        if not isinstance(entry, dict):
            out.skipped["malformed_entry"] = out.skipped.get("malformed_entry", 0) + 1
            continue
        raw_url = _walk_path(entry, image_key)
        image_url = resolve_url(url, raw_url) if isinstance(raw_url, str) else None
        caption = _walk_path(entry, caption_key)
        caption = normalize_caption(caption if isinstance(caption, str) else "", max_caption_chars)
        if not image_url or not caption:
            key = "bad_url" if not image_url else "no_caption"
            out.skipped[key] = out.skipped.get(key, 0) + 1
            continue
        page = _walk_path(entry, page_key) if page_key else None
        out.pairs.append(Pair(image_url, caption, "", "", "result"))
        out.page_urls.append((resolve_url(url, page) if isinstance(page, str) else None) or "")
    return out


def robots_tag_directives(values: Iterable[str | bytes], agent_names: Iterable[str] = ()) -> set[str]:
    """Directives of X-Robots-Tag header values that apply to us (unscoped or scoped to our names).

    `X-Robots-Tag: otherbot: noindex` does not apply; `X-Robots-Tag: noai, noimageai` does."""
    names = {n.lower() for n in agent_names}
    out: set[str] = set()
    for value in values:
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        scope = None
        head, sep, rest = value.partition(":")
        # "unavailable_after: DATE" is a directive with a value, not a scope.
        if sep and " " not in head.strip() and head.strip().lower() != "unavailable_after":
            scope, value = head.strip().lower(), rest
        if scope is not None and scope not in names:
            continue
        out.update(t.strip().lower() for t in value.split(",") if t.strip())
    return out
