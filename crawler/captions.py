"""Caption candidates of one image, ranked: what a careful reader takes as the image's caption.

Sources, best first: the `<figcaption>` of its figure; an element with caption vocabulary in its
class/id (caption, desc, img_descr, pic_txt, tuzhu, ...) right after it; text after it in its own block
(after a `<br>`, or loose text after the image's block); the first block below it, a few wrappers out;
its `alt`; its `title`. Text right after an image is that image's only: the search stops at the next
image and at the first block with text, whatever its verdict.

What is never a caption: prose paragraphs, headings (h1-h6, bold-only lines, lines ending in a colon,
numbered section labels), link text (related-article titles), file names, numbered labels ("01",
"图1"), interface text ("点击查看大图", "分享", "扫码关注"), credit-only lines ("图片来源：XX"), and
for alt/title also the page's own title or site name and a text repeated on several images.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from crawler.article import tokens
from crawler.config import CrawlConfig
from crawler.text import block_text, han_count, normalize_caption, text_len, word_count

# caption_source values, in rank order.
SOURCES = ("figcaption", "caption_class", "br_text", "below", "alt", "title")

_FILE_NAME = re.compile(r"(?i)^[\w\-.()\[\] ]*\.(jpe?g|png|gif|webp|bmp|svg|tiff?|heic)\b.*$|^(img|image|pic|photo|dsc|dscn|p|screenshot)?[_\- ]?\d+$")
_GENERIC = {"image", "images", "img", "photo", "photos", "picture", "pic", "pics", "图片", "图", "图像", "配图", "插图",
            "照片", "untitled", "default", "null", "undefined", "none", "thumbnail", "thumb", "banner", "alt", "title"}
# Interface words: a short text with one of them names a button, a link or a banner, not a picture.
_UI = re.compile(r"点击|扫码|扫一扫|二维码|查看大图|查看原图|查看高清|看大图|高清原图|阅读全文|展开全文|阅读更多|查看更多|查看源网页|"
                 r"客户端|公众号|小程序|下载|登录|注册|广告|推广|发送给朋友|打印本[文页]|关闭窗口|发表评论|我要评论|字号|举报|纠错|"
                 r"重新加载|加载中|click|zoom|qr ?code|enlarge|loading", re.I)
_UI_MAX_WORDS = 14
# Weaker interface words: only a very short text made around them is interface text.
_UI_WEAK = re.compile(r"分享|关注|收藏|转发|点赞|更多|详情|返回|放大|logo|icon|avatar|头像|share|more", re.I)
_UI_WEAK_MAX_WORDS = 4
_NUMBERED = re.compile(r"^[(\[（【]?\s*(第?[0-9０-９一二三四五六七八九十百]+\s*[张幅个页]?|[0-9]+\s*/\s*[0-9]+)\s*[)\]）】]?[.、:：]?$|"
                       r"^(图|图片|表|fig\.?|figure|photo|image)\s*[0-9０-９]+\s*[.:：、]?$", re.I)
# A credit: who made or supplied the picture. A caption that is only credits describes nothing.
_CREDIT = re.compile(
    r"(图片?来源|图片?来自|图源|来源|摄影|图片提供|图片作者|供图|source|photo(graph)?\s*(by|credit)|credit)\s*[:：/]\s*[^，。；;,\s]*"
    r"|(图片?|图)\s*[:：/]\s*(?=[^，。；;,\s]{0,14}?(截图|网络|微博|@|视觉|图库|供|摄|提供|来源|官网|[A-Za-z0-9]+$))[^，。；;,\s]*"
    r"|(新华社|中新社|本报|本刊|特约)?(记者|通讯员|摄影记者)\s*\S{1,12}?\s*摄"
    r"|\S{1,15}?[/／]?\s*(供图|摄|提供)$|(图片)?来源(于)?网络|网络图片|@\S+|视觉中国|东方IC|IC\s*photo|图虫创意|123rf|shutterstock|getty\s*images"
    r"|(责任编辑|编辑|校对|审核|监制|作者|撰文|文字|排版)\s*[:：|｜]\s*\S+",
    re.I)
_DECORATION = re.compile(r"[◎●○▲△▼▽↑↓■□◆◇★☆•·/\\|()（）\[\]【】「」<>《》:：,，.。;；\-—_~\s]+")
# A dateline: when a line is a date, a time and a source name, it is the article's byline.
_DATELINE = re.compile(r"\d{4}\s*[-年/.]\s*\d{1,2}\s*[-月/.]\s*\d{1,2}\s*日?\s*\d{1,2}:\d{2}(:\d{2})?")
# Signs that a line below an image is its caption.
_CAPTION_MARK = re.compile(r"\S[/／ ]?摄(?=$|[)）\]】\s])|供图|图片?来源|图源|资料图|图为|图片为|截图|示意图|效果图|摄影|新华社发|视觉中国|"
                           r"^[◎▲△↑●]|^(图|图片)\s*[:：]|^(图|fig\.?|figure)\s*[0-9０-９]+\s*[.:：、\s]", re.I)
_SENTENCE_END = re.compile(r"[。！？!?](?!$)")
_COMMA = re.compile(r"[，,；;]")
_HEADING_NUMBER = re.compile(r"^([一二三四五六七八九十]+、|（[一二三四五六七八九十]+）|\([一二三四五六七八九十0-9]+\)|[0-9]+[.、]\s*\D|0[0-9]\b)")
_CENTRED_CLASS = {"center", "centre", "tc", "tac", "ac", "textcenter", "txtcenter", "fcenter", "imgcenter", "aligncenter"}
_CAPTION_WORDS = re.compile(r"caption|descr|explain|legend|pictxt|pictext|imgtxt|imgtext|phototext|tuzhu|tushuo|"
                            r"wp-caption-text|imgnote|picnote|picinfo|imginfo|imgmark|picmark", re.I)
_CAPTION_PAIRS_A = {"pic", "img", "image", "photo", "tu", "figure", "fig"}
_CAPTION_PAIRS_B = {"txt", "text", "title", "tit", "info", "note", "name", "zhu", "shuo", "mark", "desc", "des", "intro", "word", "words"}
# A line whose text is at least this share bold is a heading.
_HEADING_BOLD_SHARE = 0.9
_BOLD = re.compile(r"font-weight\s*:\s*(bold|[6-9]00)", re.I)
_SMALL_GREY = re.compile(r"font-size\s*:\s*(1[0-4]px|[0-9]px|small|x-small|0\.[0-9]+[er]m)|color\s*:\s*#?(9|8|7|6|a|b)[0-9a-f]{2,5}\b|color\s*:\s*gr[ae]y", re.I)
_PARAGRAPHS = {"p", "center", "font", "span", "a", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6"}
_INLINE = {"a", "span", "font", "strong", "b", "em", "i", "u", "small", "big", "picture", "sup", "sub"}
# A block whose text is more than this share link text is a link (a teaser title, "more" link).
_LINK_TEXT_SHARE = 0.7
_CENTRE_STYLE = re.compile(r"text-align\s*:\s*center", re.I)


@dataclass
class CaptionRules:
    """Thresholds of caption detection (documented defaults; `ExtractRules` carries them)."""

    # Captions longer than this are prose, whatever their signs.
    max_chars: int = CrawlConfig.max_caption_chars
    # A centred line below an image without caption words: at most this long and two sentences.
    centred_max_chars: int = CrawlConfig.centred_caption_max_chars
    # A plain line below an image (not centred, no caption words or class): at most this long ...
    plain_max_chars: int = CrawlConfig.plain_caption_max_chars
    # ... with at most this many clause breaks (commas, semicolons).
    plain_max_commas: int = 1
    # Wrappers searched outward from the image for a caption below it.
    levels: int = CrawlConfig.caption_levels


@dataclass
class Candidate:
    text: str
    source: str
    ok: bool
    why: str = ""


@dataclass
class PageContext:
    """What alt/title text is compared with: the page's own title, headline and the alt texts of all images."""

    titles: set = field(default_factory=set)
    repeated: set = field(default_factory=set)


# ---------------------------------------------------------------- text verdicts

def _core(text: str) -> str:
    return _DECORATION.sub("", text)


def is_credit_only(text: str) -> bool:
    """Only credits (source, photographer, editor) and decoration: nothing that describes the picture."""
    rest, n = _CREDIT.subn(" ", text)
    return n > 0 and word_count(_DECORATION.sub(" ", rest)) < 2


def text_verdict(text: str, max_chars: int) -> str:
    """'' when the text can caption a picture, else why not."""
    if not text or word_count(text) == 0:
        return "empty"
    if len(text) > max_chars:
        return "too_long"
    low = text.strip().lower()
    if low in _GENERIC or _core(low) in _GENERIC:
        return "generic"
    if _FILE_NAME.match(text.strip()):
        return "file_name"
    if _NUMBERED.match(text.strip()):
        return "numbered_label"
    words = word_count(text)
    if (words <= _UI_MAX_WORDS and _UI.search(text)) or (words <= _UI_WEAK_MAX_WORDS and _UI_WEAK.search(text)):
        return "interface_text"
    if is_credit_only(text):
        return "credit_only"
    if _DATELINE.search(text) and word_count(_DATELINE.sub(" ", text)) <= 12:
        return "dateline"
    return ""


def heading_like(text: str) -> bool:
    t = text.strip()
    return t.endswith(("：", ":")) or bool(_HEADING_NUMBER.match(t) and han_count(t) <= 20)


# ---------------------------------------------------------------- element helpers

def _tag(el) -> str:
    return el.tag.lower() if isinstance(el.tag, str) else ""


def has_image(el) -> bool:
    return _tag(el) == "img" or next(el.iter("img"), None) is not None


def _centred_here(node) -> bool:
    if _tag(node) == "center" or (node.get("align") or "").lower() == "center":
        return True
    if _CENTRE_STYLE.search(node.get("style") or ""):
        return True
    return any(t in _CENTRED_CLASS or t.endswith("center") for t in tokens(node))


def _is_centred(el) -> bool:
    """Centred by the block itself, its only wrapper child, or the cell/box around it (up to two levels)."""
    anc = el.getparent()
    for _ in range(2):
        if anc is None or _tag(anc) in ("body", "html"):
            break
        if _centred_here(anc):
            return True
        anc = anc.getparent()
    node = el
    for _ in range(2):  # the block or its only wrapper child
        if node is None or not isinstance(node.tag, str):
            return False
        if _centred_here(node):
            return True
        kids = [c for c in node if isinstance(c.tag, str)]
        node = kids[0] if len(kids) == 1 and not (node.text or "").strip() else None
    return False


def _has_caption_class(el) -> bool:
    for node in [el] + [c for c in el.iterdescendants() if isinstance(c.tag, str)][:3]:
        raw = f"{node.get('class') or ''} {node.get('id') or ''}"
        if _CAPTION_WORDS.search(raw):
            return True
        toks = tokens(node)
        if any(t in _CAPTION_PAIRS_A for t in toks) and any(t in _CAPTION_PAIRS_B for t in toks):
            return True
    return False


def _is_heading_el(el) -> bool:
    if _tag(el) in ("h1", "h2", "h3", "h4", "h5", "h6"):
        return True
    text = block_text(el)
    if not text:
        return False
    if _is_bold(el):
        return True
    bold = {n for n in el.iterdescendants() if isinstance(n.tag, str) and _is_bold(n)}
    # Text of the outermost bold elements (nested ones are counted with their bold ancestor).
    outer = [n for n in bold if not any(a in bold for a in n.iterancestors())]
    return sum(text_len(block_text(n)) for n in outer) >= text_len(text) * _HEADING_BOLD_SHARE


def _is_bold(el) -> bool:
    return _tag(el) in ("b", "strong", "h1", "h2", "h3", "h4", "h5", "h6") or bool(_BOLD.search(el.get("style") or ""))


def _link_share(el) -> float:
    text = text_len(block_text(el))
    if not text:
        return 0.0
    links = sum(text_len(block_text(a)) for a in el.iter("a"))
    if _tag(el) == "a":
        links = text
    return links / text


def _small_or_grey(el) -> bool:
    return any(_SMALL_GREY.search(n.get("style") or "") for n in [el] + list(el.iterdescendants())[:2]
               if isinstance(n.tag, str))


def _enclosing_link(el):
    for anc in el.iterancestors("a"):
        return anc
    return None


# ---------------------------------------------------------------- candidates

def _judge_below(text: str, el, rules: CaptionRules, source: str, block=None) -> Candidate:
    """Whether text below (el) or after (in `block`) an image is its caption."""
    why = text_verdict(text, rules.max_chars)
    if why:
        return Candidate(text, source, False, why)
    if el is not None and _is_heading_el(el) and not _has_caption_class(el):
        return Candidate(text, source, False, "heading")
    if heading_like(text):
        return Candidate(text, source, False, "heading")
    marked = bool(_CAPTION_MARK.search(text))
    centred = (el is not None and _is_centred(el)) or (block is not None and _is_centred(block))
    if el is not None and _has_caption_class(el):
        return Candidate(text, "caption_class", True)
    if marked:
        return Candidate(text, source, True)
    sentences = len(_SENTENCE_END.findall(text)) + 1
    if (centred or (el is not None and _small_or_grey(el))) and len(text) <= rules.centred_max_chars and sentences <= 2:
        return Candidate(text, source, True)
    if len(text) <= rules.plain_max_chars and len(_COMMA.findall(text)) <= rules.plain_max_commas and sentences == 1:
        return Candidate(text, source, True)
    return Candidate(text, source, False, "prose")


def _text_before_in_parent(node) -> bool:
    """Whether the parent holds text before `node` (the image sits inline in prose)."""
    parent = node.getparent()
    if parent is None:
        return False
    if normalize_caption(parent.text):
        return True
    for sib in node.itersiblings(preceding=True):
        if normalize_caption(sib.tail) or (isinstance(sib.tag, str) and block_text(sib)):
            return True
    return False


def following_candidate(img, rules: CaptionRules, stop=None) -> Candidate | None:
    """The caption right after the image: its tail or br text, else the first block below it, up to
    `rules.levels` wrappers out; None when another image or nothing comes first."""
    node = img
    link = _enclosing_link(img)
    for level in range(rules.levels):
        parent = node.getparent()
        if parent is None or node is stop:
            return None
        tail = normalize_caption(node.tail)
        if tail:
            return _judge_below(tail, None, rules, "br_text", parent)
        sib = node.getnext()
        while sib is not None:
            tag = _tag(sib)
            if tag == "br":
                tail = normalize_caption(sib.tail)
                if tail:
                    return _judge_below(tail, None, rules, "br_text", parent)
            elif tag and tag not in ("script", "style", "noscript", "template"):
                if has_image(sib):
                    return None  # what follows belongs to that image
                text = block_text(sib)
                if text:
                    if link is not None and (sib in link.iterdescendants()):
                        return Candidate(text, "below", False, "link_text")
                    if _link_share(sib) > _LINK_TEXT_SHARE:
                        return Candidate(text, "below", False, "link_text")
                    # An element right after the image inside its own paragraph is text after it, not below.
                    source = "br_text" if level == 0 and _tag(parent) in _PARAGRAPHS else "below"
                    verdict = _judge_below(text, sib, rules, source)
                    if verdict.why != "interface_text":
                        return verdict
                    # Buttons and overlays ("查看大图", "GIF") sit between some images and their captions.
            if normalize_caption(sib.tail):
                return _judge_below(normalize_caption(sib.tail), None, rules, "br_text", parent)
            sib = sib.getnext()
        if parent is stop or _tag(parent) in ("body", "html"):
            return None
        if _text_before_in_parent(node) and _tag(parent) not in _INLINE:
            return None
        if sum(1 for _ in parent.iter("img")) > 1:
            return None  # text below a group of images is the group's, not this image's
        node = parent
    return None


def figcaption_candidate(img, rules: CaptionRules) -> Candidate | None:
    node = img.getparent()
    for _ in range(rules.levels + 1):
        if node is None:
            return None
        if _tag(node) == "figure":
            cap = next(node.iter("figcaption"), None)
            if cap is None:
                return None
            text = block_text(cap)
            why = text_verdict(text, rules.max_chars)
            return Candidate(text, "figcaption", not why, why)
        node = node.getparent()
    return None


def attribute_candidate(text: str | None, source: str, page: PageContext, max_chars: int) -> Candidate | None:
    text = normalize_caption(text)
    if not text:
        return None
    why = text_verdict(text, max_chars)
    if not why and text in page.repeated:
        why = "repeated_on_page"
    if not why and _same_as_page_title(text, page):
        why = "page_title"
    return Candidate(text, source, not why, why)


def _same_as_page_title(text: str, page: PageContext) -> bool:
    t = _core(text).lower()
    if not t:
        return False
    for title in page.titles:
        core = _core(title).lower()
        # The alt is the headline, or the title (headline + site name) starts with it, or it is the site name.
        if t == core or (len(t) >= 4 and core.startswith(t)) or (len(t) >= 2 and core.endswith(t)):
            return True
    return False


def candidates(img, rules: CaptionRules, page: PageContext, stop=None) -> list[Candidate]:
    """Every caption candidate of the image, in rank order (accepted and rejected)."""
    out: list[Candidate] = []
    fig = figcaption_candidate(img, rules)
    if fig is not None:
        out.append(fig)
    below = following_candidate(img, rules, stop)
    if below is not None:
        out.append(below)
    for attr in ("alt", "title"):
        cand = attribute_candidate(img.get(attr), attr, page, rules.max_chars)
        if cand is not None:
            out.append(cand)
    out.sort(key=lambda c: SOURCES.index(c.source))
    return out


def best_caption(img, rules: CaptionRules, page: PageContext, stop=None) -> Candidate | None:
    for cand in candidates(img, rules, page, stop):
        if cand.ok:
            return cand
    return None
