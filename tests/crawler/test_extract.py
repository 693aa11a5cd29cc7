"""HTML pair extraction (crawler/extract.py) on HTML strings: pure functions, no network."""

from __future__ import annotations

import dataclasses
import json

import pytest

from crawler.extract import (ExtractRules, extract_page, extract_search_html, extract_search_json,
                             normalize_caption, parse_srcset, robots_tag_directives)

PAGE = "http://site.example/news/2024/a.html"
RULES = ExtractRules(min_side=200, max_aspect_ratio=3.0)


def pairs(html, rules=RULES, url=PAGE):
    return {p.url: p for p in extract_page(html, url, rules).pairs}


def test_alt_title_and_figcaption_captions():
    got = pairs("""<img src="a.jpg" alt="一只猫"><img src="b.jpg" title="两只狗">
        <figure><img src="c.jpg"><figcaption>三只<b>小鸟</b></figcaption></figure>""")
    base = "http://site.example/news/2024/"
    assert got[base + "a.jpg"].caption == "一只猫" and got[base + "a.jpg"].caption_source == "alt"
    assert got[base + "b.jpg"].caption == "两只狗" and got[base + "b.jpg"].title == "两只狗"
    assert got[base + "c.jpg"].caption == "三只小鸟" and got[base + "c.jpg"].caption_source == "figcaption"


def test_caption_normalisation_joins_chinese_nodes_without_spaces():
    html = """<figure><img src="a.jpg"><figcaption>红色
        <span>的</span><em>圆形</em>&amp;amp;  方块 &#x84DD;色</figcaption></figure>
        <img src="b.jpg" alt="  New&nbsp;York   city \u200b skyline ">"""
    got = pairs(html)
    assert got["http://site.example/news/2024/a.jpg"].caption == "红色的圆形& 方块 蓝色"
    assert got["http://site.example/news/2024/b.jpg"].caption == "New York city skyline"


def test_normalize_caption_keeps_intended_spaces_between_chinese_words():
    assert normalize_caption("高清壁纸 风景\t4k") == "高清壁纸 风景 4k"
    assert normalize_caption("第一行\n  第二行") == "第一行第二行"
    assert normalize_caption("abc\ndef") == "abc def"
    assert normalize_caption("猫" * 300, max_chars=10) == "猫" * 10


def test_relative_urls_resolve_under_base_href_and_other_hosts_are_kept():
    html = """<head><base href="http://cdn.example.org/media/"></head>
        <img src="x/1.jpg" alt="湖边的柳树"><img src="/root.jpg" alt="雪后的长城"><img src="//img.other.net/p.png" alt="夜色中的外滩">
        <img src="https://abs.example/q.webp?s=1#frag" alt="田野里的拖拉机">"""
    assert set(pairs(html)) == {"http://cdn.example.org/media/x/1.jpg", "http://cdn.example.org/root.jpg",
                                "http://img.other.net/p.png", "https://abs.example/q.webp?s=1"}


def test_relative_urls_without_base():
    got = pairs('<img src="../img/a.jpg" alt="猫"><img src="b.jpg" alt="狗">')
    assert set(got) == {"http://site.example/news/img/a.jpg", "http://site.example/news/2024/b.jpg"}


def test_lazy_load_attributes_win_over_placeholders():
    html = """<img src="/static/placeholder.gif" data-src="/real/1.jpg" alt="湖边的柳树">
        <img src="data:image/gif;base64,R0lGOD" data-original="/real/2.jpg" alt="雪后的长城">
        <img src="/img/blank.gif" alt="只有占位图">
        <img data-lazy-src="/real/3.jpg" alt="夜色中的外滩">"""
    got = pairs(html)
    assert set(got) == {"http://site.example/real/1.jpg", "http://site.example/real/2.jpg",
                        "http://site.example/real/3.jpg"}
    assert extract_page(html, PAGE, RULES).skipped.get("placeholder") == 1


def test_srcset_takes_the_largest_candidate():
    html = """<img src="s.jpg" srcset="s.jpg 320w, l.jpg 1280w, m.jpg 640w" width="150" alt="湖边的柳树">
        <img src="a1.jpg" srcset="a1.jpg 1x, a3.jpg 3x, a2.jpg 2x" alt="雪后的长城">
        <img data-srcset="/d/small.jpg 100w, /d/big.jpg 900w" src="/static/loading.gif" alt="夜色中的外滩">"""
    assert set(pairs(html)) == {"http://site.example/news/2024/l.jpg", "http://site.example/news/2024/a3.jpg",
                                "http://site.example/d/big.jpg"}
    assert parse_srcset("a.jpg 1x, b.jpg 2x") == [("a.jpg", 1.0, "x"), ("b.jpg", 2.0, "x")]
    assert parse_srcset("single.jpg") == [("single.jpg", 1.0, "x")]


def test_declared_sizes_below_the_image_rules_are_skipped():
    html = """<img src="/pixel.gif" width="1" height="1" alt="pixel">
        <img src="/brand.png" width="120" height="40" alt="网站标志">
        <img src="/banner.jpg" width="900" height="210" alt="横幅">
        <img src="/style.jpg" style="width: 150px; height:150px" alt="小图">
        <img src="/ok.jpg" width="640" height="480" alt="正常">
        <img src="/pct.jpg" width="100%" alt="百分比">
        <img src="/edge.jpg" width="200" height="400" alt="边界">"""
    page = extract_page(html, PAGE, RULES)
    assert {p.url for p in page.pairs} == {"http://site.example/ok.jpg", "http://site.example/pct.jpg"}
    assert page.skipped == {"declared_too_small": 4, "declared_bad_aspect": 1}
    # Without rules nothing is skipped for its size.
    assert len(extract_page(html, PAGE, ExtractRules()).pairs) == 7


def test_nearest_caption_like_text():
    html = """<div class="pic"><img src="/a.jpg"></div><p class="caption">窗台上的猫</p>
        <div><img src="/b.jpg">  桥上的夕阳 </div>
        <div><img src="/c.jpg"><img src="/d.jpg"></div><p>两张图共用的说明</p>
        <div class="pic"><img src="/e.jpg"></div><p>""" + "很长的段落" * 80 + "</p>"
    page = extract_page(html, PAGE, RULES)
    got = {p.url: p.caption for p in page.pairs}
    assert got == {"http://site.example/a.jpg": "窗台上的猫", "http://site.example/b.jpg": "桥上的夕阳"}
    assert page.skipped["no_caption"] == 3


def test_open_graph_image_and_title_only_when_asked():
    html = """<head><meta property="og:image" content="/cover.jpg"><meta property="og:title" content="封面 &amp; 标题">
        </head><body><p>文章</p></body>"""
    # og:title is the page's headline: by default it captions nothing.
    assert extract_page(html, PAGE, RULES).pairs == []
    rules = dataclasses.replace(RULES, og_pairs=True)
    (p,) = extract_page(html, PAGE, rules).pairs
    assert (p.url, p.caption, p.caption_source) == ("http://site.example/cover.jpg", "封面 & 标题", "og")
    # When the same image is in the body, the body's caption wins and it is listed once.
    html2 = html.replace("<p>文章</p>", '<img src="/cover.jpg" alt="正文说明">')
    (p2,) = extract_page(html2, PAGE, rules).pairs
    assert p2.caption == "正文说明"


def test_links_and_meta_robots():
    html = """<head><meta name="robots" content="NOAI, noimageai"></head>
        <a href="/b.html#top">b</a><a href="c.html">c</a><a href="/b.html">again</a>
        <a rel="nofollow" href="/x.html">x</a><a href="javascript:void(0)">js</a><a href="mailto:a@b.c">m</a>"""
    page = extract_page(html, PAGE, RULES)
    assert page.links == ["http://site.example/b.html", "http://site.example/news/2024/c.html"]
    assert page.robots == {"noai", "noimageai"}


@pytest.mark.parametrize("body", ["", "   ", b"\x00\xff\xfe garbage \x89PNG", "<html><img></html>",
                                  "<img src='http://[bad'>", "<<<>>>", "<img src=a.jpg alt=" + "猫" * 5000 + ">"])
def test_malformed_html_never_raises(body):
    page = extract_page(body, PAGE, RULES)
    assert all(len(p.caption) <= RULES.max_caption_chars for p in page.pairs)


def test_search_html_entries():
    html = """<div class="result"><a href="/p/1.html"><img src="/i/1.jpg" alt="红色圆形"></a></div>
        <div class="result"><a href="/p/2.html">x</a><img data-src="/i/2.jpg" src="/static/placeholder.gif">
            <span class="t">蓝色 <b>方块</b></span></div>
        <div class="result"><span>no image here</span></div>
        <div class="other"><img src="/i/9.jpg" alt="不是结果"></div>"""
    res = extract_search_html(html, "http://se.example/s?q=x", result_css=".result", caption_css=".t")
    assert res.entries == 3
    assert [(p.url, p.caption) for p in res.pairs] == [("http://se.example/i/1.jpg", "红色圆形"),
                                                       ("http://se.example/i/2.jpg", "蓝色 方块")]
    assert res.page_urls == ["http://se.example/p/1.html", "http://se.example/p/2.html"]
    res2 = extract_search_html(html, "http://se.example/s", result_css=".result", page_css="a::attr(href)")
    # Without a caption selector, the second entry has no alt/title: skipped and counted.
    assert [p.caption for p in res2.pairs] == ["红色圆形"] and res2.skipped["no_caption"] == 1


def test_search_json_entries():
    body = json.dumps({"data": {"items": [
        {"img": {"src": "/i/1.jpg"}, "text": "一只猫", "from": "/p/1.html"},
        {"img": {"src": "javascript:x"}, "text": "坏链接"},
        {"img": {"src": "/i/3.jpg"}, "text": ""},
        "not a dict",
        {"img": {"src": "https://cdn.other/4.png"}, "text": " 两只 狗 "}]}}, ensure_ascii=False)
    res = extract_search_json(body, "http://se.example/api", result_path="data.items", image_key="img.src",
                              caption_key="text", page_key="from")
    assert res.entries == 5
    assert [(p.url, p.caption) for p in res.pairs] == [("http://se.example/i/1.jpg", "一只猫"),
                                                       ("https://cdn.other/4.png", "两只 狗")]
    assert res.page_urls == ["http://se.example/p/1.html", ""]
    assert res.skipped == {"bad_url": 1, "no_caption": 1, "malformed_entry": 1}
    assert extract_search_json(body, "http://se.example/api", result_path="data.missing", image_key="a",
                               caption_key="b", page_key="").entries == 0
    with pytest.raises(ValueError):
        extract_search_json("<html>not json</html>", "http://se.example/api", result_path="x", image_key="a",
                            caption_key="b", page_key="")


def test_x_robots_tag_scoping():
    assert robots_tag_directives(["noai, noimageai"]) == {"noai", "noimageai"}
    assert robots_tag_directives([b"otherbot: noindex"], {"wukong"}) == set()
    assert robots_tag_directives(["wukong: noindex", "googlebot: nofollow"], {"wukong"}) == {"noindex"}
    assert robots_tag_directives(["unavailable_after: 25 Jun 2010 15:00:00 PST"]) == {"unavailable_after: 25 jun 2010 15:00:00 pst"}


# ---------------------------------------------------------------- captions of Chinese article pages

PROSE = "<p>" + "记者从市交通运输局获悉，今年以来全市公共交通客运量稳步回升，地铁日均客运量较去年同期增长一成以上。" * 3 + "</p>"


def article(inner: str, title: str = "新闻标题_示例网") -> str:
    """A page with navigation, an article body (prose around `inner`), a sidebar and comments."""
    return f"""<html><head><title>{title}</title></head><body>
        <div class="header"><a href="/"><img src="/img/brand.png" alt="示例网"></a><a href="/news/">新闻</a></div>
        <div class="article-content">{PROSE}{inner}{PROSE}</div>
        <div class="sidebar"><ul><li><a href="/n/9.html"><img src="/t/9.jpg" alt="相关新闻的标题"></a>
            <a href="/n/9.html">相关新闻的标题</a></li></ul></div>
        <div class="comment-list"><img src="/u/avatar1.jpg" alt="网友小王"><p>说得好</p></div></body></html>"""


def caption_of(html: str, name: str):
    got = {p.url.rsplit("/", 1)[-1]: p for p in extract_page(html, PAGE, RULES).pairs}
    return (got[name].caption, got[name].caption_source) if name in got else None


@pytest.mark.parametrize("inner, want", [
    ('<div class="img_wrapper"><img src="a.jpg"><span class="img_descr">天水有轨电车 图片来源：天水融媒</span></div>',
     ("天水有轨电车 图片来源：天水融媒", "caption_class")),
    ('<p align="center"><img src="a.jpg"><br>图为市民在公园赏花。新华社记者 张三 摄</p>',
     ("图为市民在公园赏花。新华社记者 张三 摄", "br_text")),
    ('<p style="text-align: center"><img src="a.jpg"></p><p style="text-align:center">雪后的故宫角楼，游人在拍照留念</p>',
     ("雪后的故宫角楼，游人在拍照留念", "below")),
    ('<div class="pic"><div><span><img src="a.jpg"></span></div></div><p>车主们将车停在外面小树林中</p>',
     ("车主们将车停在外面小树林中", "below")),
    ('<p><img src="a.jpg"></p><p>5月9日，某学院毕业生就业双选会现场，学生们在咨询岗位。某学院供图</p>',
     ("5月9日，某学院毕业生就业双选会现场，学生们在咨询岗位。某学院供图", "below")),
    ('<figure><img src="a.jpg" alt="点击查看高清原图"><figcaption>夜色中的外滩</figcaption></figure>',
     ("夜色中的外滩", "figcaption")),
    ('<p><img src="a.jpg" alt="2.jpg"></p><p class="pic_txt">湖边的柳树</p>', ("湖边的柳树", "caption_class")),
    ('<p><img src="a.jpg" alt="湖边的柳树在风中摇曳"></p>', ("湖边的柳树在风中摇曳", "alt")),
    ('<p><img src="a.jpg" title="田野里的拖拉机"></p>' + PROSE, ("田野里的拖拉机", "title")),
    # Captions as found: entities decoded, spaces collapsed, full-width punctuation kept.
    ('<p><img src="a.jpg"></p><p class="caption">红色&amp;蓝色，  &nbsp;方块（图）</p>', ("红色&蓝色， 方块（图）", "caption_class")),
])
def test_caption_conventions(inner, want):
    assert caption_of(article(inner), "a.jpg") == want


@pytest.mark.parametrize("inner", [
    '<p><img src="a.jpg"></p>' + PROSE,                                        # prose below
    '<p><img src="a.jpg"></p><p><strong>专业对口，学生入行顺利</strong></p>',     # a heading
    '<p><img src="a.jpg"></p><p>相关新闻：</p>',                                # a label
    '<p><img src="a.jpg"></p><p>01</p>',                                        # a numbered label
    '<p><img src="a.jpg"></p><p class="img_descr">图片来源：城市轨道交通年度统计报告</p>',  # credit only
    '<p><img src="a.jpg"></p><p style="text-align:center">◎ 图：123rf</p>',     # credit only
    '<p><img src="a.jpg" alt="新闻标题"></p>' + PROSE,                           # the page's headline
    '<p><img src="a.jpg" alt="示例网"></p>' + PROSE,                             # the site's name
    '<p><img src="a.jpg" alt="image"></p>' + PROSE,                              # generic word
    '<p><img src="a.jpg" alt="点击查看大图"></p>' + PROSE,                        # interface text
    '<p><img src="a.jpg" alt="IMG_2031.JPG"></p>' + PROSE,                        # file name
    '<p><img src="a.jpg"></p><p><a href="/n/2.html">另一篇文章的标题</a></p>',      # link text
    '<p><img src="a.jpg"><img src="b.jpg"></p><p>两张图共用的说明</p>',             # shared by two images
])
def test_never_captions(inner):
    assert caption_of(article(inner), "a.jpg") is None


def test_alt_repeated_on_several_images_is_boilerplate():
    inner = '<p><img src="a.jpg" alt="脂溢性脱发"></p>' + PROSE + '<p><img src="b.jpg" alt="脂溢性脱发"></p>'
    assert caption_of(article(inner), "a.jpg") is None and caption_of(article(inner), "b.jpg") is None


def test_only_the_article_body_is_paired():
    page = extract_page(article('<p class="caption-wrap"><img src="a.jpg"></p><p class="caption">窗台上的猫</p>'), PAGE, RULES)
    assert [(p.url.rsplit("/", 1)[-1], p.caption) for p in page.pairs] == [("a.jpg", "窗台上的猫")]
    assert page.has_body
    # Header logo, sidebar thumbnail and comment avatar are outside the body.
    assert page.skipped["outside_body"] == 3


def test_chrome_and_teasers_inside_the_body_are_skipped():
    inner = ('<div class="share"><img src="/s/weixin.png" alt="分享到微信"></div>'
             '<p><img src="/i/qrcode.jpg" alt="扫码关注"></p>'
             '<ul><li><a href="/n/3.html"><img src="/t/3.jpg"></a><a href="/n/3.html">第三篇文章</a></li></ul>'
             '<p><img src="/i/photo.jpg"></p><p style="text-align:center">会场一角</p>')
    page = extract_page(article(inner), PAGE, RULES)
    assert [p.caption for p in page.pairs] == ["会场一角"]
    assert page.skipped["chrome"] == 2 and page.skipped["teaser"] == 1


def test_page_without_prose_is_searched_whole_minus_chrome():
    html = """<div class="nav"><img src="/logo.png" alt="图库"></div>
        <div class="gallery"><p><img src="1.jpg" alt="黄山云海"></p><p><img src="2.jpg" alt="西湖断桥"></p></div>"""
    page = extract_page(html, PAGE, RULES)
    assert not page.has_body
    assert [p.caption for p in page.pairs] == ["黄山云海", "西湖断桥"]


def test_pagination_links_are_told_apart():
    html = """<ul><li><a href="/news/2024/b.html">文章二</a></li><li><a href="/about.html">关于</a></li></ul>
        <div class="pages"><a href="list_2.html">2</a><a href="list_3.html">3</a><a href="list_2.html">下一页</a></div>
        <a href="/news/2024/list_9.html">尾页</a><a rel="next" href="/more?x=1">更多</a><a href="/other/5.html">5</a>"""
    page = extract_page(html, "http://site.example/news/2024/list.html", RULES)
    assert page.pagination == ["http://site.example/news/2024/list_2.html", "http://site.example/news/2024/list_3.html",
                               "http://site.example/news/2024/list_9.html", "http://site.example/more?x=1"]
    assert set(page.pagination) <= set(page.links)


def test_extract_rules_come_from_the_crawl_config():
    from crawler.config import CrawlConfig
    from crawler.extract import ExtractRules

    assert ExtractRules.from_config(CrawlConfig()) == ExtractRules()
    rules = ExtractRules.from_config(CrawlConfig(caption_levels=1, plain_caption_max_chars=9, min_body_chars=50,
                                                 og_image_pairs=True), min_side=200)
    assert (rules.caption_rules().levels, rules.caption_rules().plain_max_chars) == (1, 9)
    assert rules.body_rules().min_body_chars == 50 and rules.og_pairs and rules.min_side == 200
