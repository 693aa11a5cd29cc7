"""Image-text pairs, links and robots directives from HTML pages and search results: pure functions.

A page's pairs come from its article: the body is found by text density (`crawler.article`) and only
its images are paired, each with the best of its caption candidates (`crawler.captions`): figcaption,
an element with caption vocabulary, the text after it in its own block, the caption-like block below
it, its alt, its title. Images in page chrome (navigation, comments, recommendations, sharing, ads,
profiles) and images without a caption are skipped and counted by reason. Every pair records its
`caption_source`. The page's Open Graph image is paired with og:title only when the rules ask for it:
og:title is the page's headline, not a caption. Image URLs are resolved against `<base href>` and the
page URL; lazy-load attributes (`data-src`, `data-original`, ...) win over a placeholder `src`, and of
a `srcset` the largest candidate is taken. Images whose declared size already fails the image rules
(tracking pixels, icons) are skipped, so they are never downloaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit

from parsel import Selector

from crawler.article import BodyRules, find_body, is_chrome, measure
from crawler.pagination import pagination_links
from crawler.captions import CaptionRules, PageContext, best_caption, text_verdict
from crawler.config import CrawlConfig
from crawler.text import element_text, normalize_caption  # noqa: F401  (public helpers of this module)

# Attributes that lazy-loading scripts read the real image URL from, most specific first.
LAZY_SRC_ATTRS = ("data-src", "data-original", "data-lazy-src", "data-lazyload", "data-lazy", "data-url",
                  "data-echo", "data-actualsrc", "data-original-src", "original")
LAZY_SRCSET_ATTRS = ("data-srcset", "data-lazy-srcset", "srcset")
_PX = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(px)?\s*$", re.I)
_SRCSET_ITEM = re.compile(r"\s*(\S+?)(?:\s+(\d+(?:\.\d+)?)([wx]))?\s*(?:,|$)")
# File-name words of page chrome images (logos, icons, avatars, QR codes, buttons, emoticons).
_CHROME_FILE = re.compile(r"(?i)(^|[/_\-.])(logo|icon|icons|ico|avatar|avatars|touxiang|qrcode|qr|ewm|erweima|"
                          r"emoji|emotion|face|smiley|btn|button|arrow|share|spacer|loading|sprite|badge|default_avatar)"
                          r"(?=[/_\-.0-9]|$)")
_TITLE_SEPARATORS = re.compile(r"\s*[-_|｜—–·:：]+\s*")


@dataclass
class ExtractRules:
    """What counts as a pair. Defaults are the crawl configuration's (`crawler.config.CrawlConfig`,
    documented there); the crawl job fills the size rules from the image-rule configuration."""

    # Declared width or height at most this is skipped (the image rules keep sides > min_side).
    min_side: int = 0
    # Declared aspect ratio (long/short) above this is skipped (0: not checked).
    max_aspect_ratio: float = 0.0
    max_caption_chars: int = CrawlConfig.max_caption_chars
    placeholder_pattern: str = CrawlConfig.placeholder_pattern
    caption_levels: int = CrawlConfig.caption_levels
    plain_caption_max_chars: int = CrawlConfig.plain_caption_max_chars
    centred_caption_max_chars: int = CrawlConfig.centred_caption_max_chars
    min_body_chars: int = CrawlConfig.min_body_chars
    og_pairs: bool = CrawlConfig.og_image_pairs

    @classmethod
    def from_config(cls, crawl: CrawlConfig, min_side: int = 0, max_aspect_ratio: float = 0.0) -> "ExtractRules":
        return cls(min_side=min_side, max_aspect_ratio=max_aspect_ratio, max_caption_chars=crawl.max_caption_chars,
                   placeholder_pattern=crawl.placeholder_pattern, caption_levels=crawl.caption_levels,
                   plain_caption_max_chars=crawl.plain_caption_max_chars,
                   centred_caption_max_chars=crawl.centred_caption_max_chars,
                   min_body_chars=crawl.min_body_chars, og_pairs=crawl.og_image_pairs)

    def body_rules(self) -> BodyRules:
        return BodyRules(min_body_chars=self.min_body_chars)

    def caption_rules(self) -> CaptionRules:
        return CaptionRules(max_chars=self.max_caption_chars, centred_max_chars=self.centred_caption_max_chars,
                            plain_max_chars=self.plain_caption_max_chars, levels=self.caption_levels)


@dataclass
class Pair:
    url: str
    caption: str
    alt: str = ""
    title: str = ""
    # Where the caption came from: figcaption, caption_class, br_text, below, alt, title, og, search_result.
    caption_source: str = ""


@dataclass
class PageExtract:
    pairs: list[Pair] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    # Lower-cased directives of <meta name="robots"> (and of the crawler's own name).
    robots: set[str] = field(default_factory=set)
    # Images skipped, by reason (declared_too_small, declared_bad_aspect, placeholder, bad_url,
    # outside_body, chrome, no_caption).
    skipped: dict[str, int] = field(default_factory=dict)
    # Whether an article body was found (else the whole page was searched).
    has_body: bool = False
    # Links (of `links`) that continue this page: its list's or article's other pages.
    pagination: list[str] = field(default_factory=list)


@dataclass
class SearchResults:
    pairs: list[Pair] = field(default_factory=list)
    # Source page of each pair (same order), or "" when the entry had none.
    page_urls: list[str] = field(default_factory=list)
    # Result entries on the page, usable or not (zero means the results are exhausted).
    entries: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


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


def _largest_srcset(value: str | None) -> tuple[str | None, tuple[float, str] | None]:
    """URL of the largest candidate and its descriptor: (width, "w") or (density, "x")."""
    cands = parse_srcset(value)
    if not cands:
        return None, None
    widths = [c for c in cands if c[2] == "w"]
    url, size, unit = max(widths or cands, key=lambda c: c[1])
    return url, (size, unit)


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
        srcset_size = None
        for attr in LAZY_SRCSET_ATTRS:
            ref, srcset_size = _largest_srcset(img.get(attr))
            if ref and not self._is_placeholder(ref):
                break
            ref, srcset_size = None, None
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
        if not self._declared_size_ok(img, srcset_size):
            return None
        return url

    def _declared_size_ok(self, img, srcset_size: tuple[float, str] | None) -> bool:
        w, h = _declared_px(img.get("width")), _declared_px(img.get("height"))
        sw, sh = _declared_size_from_style(img.get("style"))
        w = w if w is not None else sw
        h = h if h is not None else sh
        if srcset_size is not None:
            # The declared size is the display size; the resource itself is `size` wide (w
            # descriptor) or `size` times the display size (x descriptor).
            size, unit = srcset_size
            if unit == "w":
                if w and h:
                    h = h * size / w
                w = size
            else:
                w, h = (w * size if w else w), (h * size if h else h)
        min_side = self.rules.min_side
        if min_side and ((w is not None and w <= min_side) or (h is not None and h <= min_side)):
            self.skip("declared_too_small")
            return False
        ratio = self.rules.max_aspect_ratio
        if ratio and w and h and max(w, h) / min(w, h) > ratio:
            self.skip("declared_bad_aspect")
            return False
        return True


def _is_chrome_image(img, url: str) -> bool:
    """A logo, icon, avatar, QR code, button or emoticon, by the image's own class/id or file path."""
    if is_chrome(img):
        return True
    path = url.split("?", 1)[0].split("#", 1)[0]
    path = path.split("://", 1)[-1].partition("/")[2]
    return bool(_CHROME_FILE.search(path))


_IMAGE_FILE = re.compile(r"(?i)\.(jpe?g|png|gif|webp|bmp|avif)(\?|$)")


def _is_teaser(img, base: str, max_chars: int) -> bool:
    """A thumbnail linking to another page together with that page's title: a related-article teaser.

    Images linking to their own larger version, or to nothing, are not teasers."""
    link = next(img.iterancestors("a"), None)
    if link is None:
        return False
    target = resolve_url(base, link.get("href"))
    if target is None or _IMAGE_FILE.search(target) or target.split("#")[0] == base.split("#")[0]:
        return False
    own = normalize_caption(element_text(link))
    if own:
        return True
    # The title may sit in a sibling link of the same item (thumbnail link + title link).
    item = link.getparent()
    for _ in range(2):
        if item is None:
            return False
        if item.tag in ("li", "dd", "dt") or sum(1 for _ in item.iter("a")) >= 2:
            return any(a is not link and not text_verdict(normalize_caption(element_text(a)), max_chars) and
                       resolve_url(base, a.get("href")) == target for a in item.iter("a"))
        item = item.getparent()
    return False


def _page_context(root, imgs) -> PageContext:
    titles: set[str] = set()
    for el in root.iter("title", "h1"):
        text = normalize_caption(element_text(el))
        if text:
            titles.add(text)
            # "Headline - Section - Site": every part alone is the page's, not a picture's.
            titles.update(p for p in _TITLE_SEPARATORS.split(text) if len(p) >= 2)
    for key in ("og:title", "og:site_name", "twitter:title"):
        value = normalize_caption(_meta(root, key))
        if value:
            titles.add(value)
    seen: dict[str, set] = {}
    for img in imgs:
        for attr in ("alt", "title"):
            text = normalize_caption(img.get(attr))
            if text:
                seen.setdefault(text, set()).add(img.get("src") or id(img))
    return PageContext(titles=titles, repeated={t for t, srcs in seen.items() if len(srcs) > 1})


def _inside(el, ancestor) -> bool:
    return ancestor is None or any(a is ancestor for a in el.iterancestors())


def _pairs_of_page(root, reader: _ImageReader, rules: ExtractRules) -> tuple[list[Pair], bool]:
    imgs = list(root.iter("img"))
    if not imgs:
        return [], False
    sizes = measure(root)
    body = find_body(root, rules.body_rules(), sizes)
    page = _page_context(root, imgs)
    caption_rules = rules.caption_rules()
    pairs = []
    for img in imgs:
        if body is not None and not _inside(img, body):
            reader.skip("outside_body")
            continue
        m = sizes.get(img)
        if m is None:  # inside <noscript> or the like: never rendered with scripts on
            reader.skip("not_rendered")
            continue
        if m.chrome:
            reader.skip("chrome")
            continue
        url = reader.image_url(img)
        if url is None:
            continue
        if _is_chrome_image(img, url):
            reader.skip("chrome")
            continue
        if _is_teaser(img, reader.base, rules.max_caption_chars):
            reader.skip("teaser")
            continue
        cand = best_caption(img, caption_rules, page, stop=body)
        if cand is None:
            reader.skip("no_caption")
            continue
        alt = normalize_caption(img.get("alt"), rules.max_caption_chars)
        title = normalize_caption(img.get("title"), rules.max_caption_chars)
        pairs.append(Pair(url, cand.text, alt, title, cand.source))
    return pairs, body is not None


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
    pairs, out.has_body = _pairs_of_page(root, reader, rules)
    for pair in pairs:
        if pair.url not in seen:
            seen.add(pair.url)
            out.pairs.append(pair)
    if rules.og_pairs:
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
    anchors = []
    for a in root.iter("a", "area"):
        url = resolve_url(base, a.get("href"))
        if url is None:
            continue
        if a.tag == "a":
            anchors.append((a, url))
        if "nofollow" in (a.get("rel") or "").lower().split():
            continue
        if url not in link_seen:
            link_seen.add(url)
            out.links.append(url)
    out.pagination = [u for u in pagination_links(anchors, page_url) if u in link_seen]
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
        out.pairs.append(Pair(image_url, caption, alt, title, "search_result"))
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
        out.pairs.append(Pair(image_url, caption, "", "", "search_result"))
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
