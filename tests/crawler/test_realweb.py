"""Discovery on real Chinese article pages: pair recall and precision against hand labels.

`tests/crawler/data/realweb/` holds saved pages from public repositories (sources and licences in
SOURCES.md), each with a hand-made label file: positives (image, the caption a careful reader takes,
its convention), negatives (logos, avatars, QR codes, ads, comments, related thumbnails, body images
without a caption, boilerplate alt, ...) and a few ambiguous images that count neither way. Every
image a label file does not list is a negative too (page chrome).

Recall: labelled positives found with their caption (or an accepted alternative). Precision: pairs
emitted whose image is a positive with that caption, over every pair emitted (ignored images aside).
Both per convention (recall, by the label's convention; precision, by the pair's caption_source),
for the development pages, the held-out pages (`split`), and overall.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from parsel import Selector

from crawler.extract import (LAZY_SRC_ATTRS, LAZY_SRCSET_ATTRS, ExtractRules, _base_url, extract_page,
                             parse_srcset, resolve_url)

DATA = Path(__file__).parent / "data" / "realweb"
MIN_SCORE = 0.95


def crawl_rules() -> ExtractRules:
    """The rules a default crawl extracts with (the crawl job fills them from the configs)."""
    from pipelines.config import WukongConfig

    cfg = WukongConfig()
    return ExtractRules(min_side=cfg.filter.image.min_side, max_aspect_ratio=cfg.filter.image.max_aspect_ratio,
                        max_caption_chars=cfg.crawl.max_caption_chars)


def load_pages() -> list[tuple[dict, str]]:
    out = []
    for label_path in sorted(DATA.glob("*.json")):
        labels = json.loads(label_path.read_text(encoding="utf-8"))
        out.append((labels, (DATA / labels["page"]).read_text(encoding="utf-8")))
    return out


def image_identities(html: str, page_url: str) -> list[set[str]]:
    """Every URL an <img> can stand for (src, lazy attributes, srcset candidates), per image."""
    root = Selector(text=html).root
    base = _base_url(root, page_url)
    out = []
    for img in root.iter("img"):
        refs = [img.get(a) for a in LAZY_SRC_ATTRS + ("src",)]
        for attr in LAZY_SRCSET_ATTRS:
            refs += [u for u, _, _ in parse_srcset(img.get(attr))]
        out.append({u for u in (resolve_url(base, r) for r in refs if r) if u})
    return out


class Score:
    def __init__(self):
        self.hit = defaultdict(int)
        self.total = defaultdict(int)

    def add(self, key: str, ok: bool) -> None:
        for k in (key, "overall"):
            self.total[k] += 1
            self.hit[k] += ok

    def value(self, key: str) -> float:
        return self.hit[key] / self.total[key] if self.total[key] else 1.0

    def rows(self) -> list[str]:
        keys = sorted(k for k in self.total if k != "overall") + ["overall"]
        return [f"{k:14s} {self.value(k):.3f} ({self.hit[k]}/{self.total[k]})" for k in keys]


def evaluate(pages, rules: ExtractRules | None = None) -> tuple[Score, Score, list[str]]:
    recall, precision, errors = Score(), Score(), []
    for labels, html in pages:
        identities = image_identities(html, labels["url"])

        def element(url: str) -> int | None:
            return next((i for i, ids in enumerate(identities) if url in ids), None)

        positives = {element(p["url"]): p for p in labels["positives"]}
        ignored = {element(p["url"]) for p in labels["ignore"]}
        assert None not in positives, f"{labels['page']}: a labelled image is not on the page"
        emitted = extract_page(html, labels["url"], rules).pairs
        found = {}
        for pair in emitted:
            i = element(pair.url)
            if i in ignored and i is not None:
                continue
            want = positives.get(i)
            ok = want is not None and pair.caption in [want["caption"]] + want["also"]
            precision.add(pair.caption_source, ok)
            if ok:
                found[i] = pair
            else:
                errors.append(f"FP {labels['page']}: {pair.caption_source} {pair.caption!r} <- {pair.url}"
                              + (f" (want {want['caption']!r})" if want else ""))
        for i, p in positives.items():
            recall.add(p["convention"], i in found)
            if i not in found:
                errors.append(f"FN {labels['page']}: {p['convention']} {p['caption']!r} <- {p['url']}")
    return recall, precision, errors


def test_fixture_set_is_what_the_issue_asks():
    pages = load_pages()
    sites = {labels["site"] for labels, _ in pages}
    assert len(pages) >= 40 and len(sites) >= 15
    for labels, _ in pages:
        assert labels["source"]["repository"] and labels["source"]["commit"] and labels["source"]["licence"]
        for p in labels["positives"]:
            assert p["caption"] and p["convention"]
    assert (DATA / "SOURCES.md").is_file()


def test_pairs_on_real_pages_match_the_hand_labels(capsys):
    pages = load_pages()
    report = []
    results = {}
    for split in ("dev", "holdout", "all"):
        chosen = [p for p in pages if split == "all" or p[0]["split"] == split]
        recall, precision, errors = evaluate(chosen, crawl_rules())
        results[split] = (recall, precision, errors)
        report.append(f"== {split}: {len(chosen)} pages")
        report.append("recall by convention:")
        report += ["  " + r for r in recall.rows()]
        report.append("precision by caption_source:")
        report += ["  " + r for r in precision.rows()]
    recall, precision, errors = results["all"]
    report += errors
    with capsys.disabled():
        print("\n" + "\n".join(report))
    for key in recall.total:
        assert recall.value(key) >= MIN_SCORE, (key, recall.rows(), errors)
    for key in precision.total:
        assert precision.value(key) >= MIN_SCORE, (key, precision.rows(), errors)


@pytest.mark.parametrize("name", ["news.sina.com.cn-1", "news.youth.cn-1"])
def test_captions_are_kept_as_found(name):
    labels = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    html = (DATA / labels["page"]).read_text(encoding="utf-8")
    captions = {p.caption for p in extract_page(html, labels["url"], crawl_rules()).pairs}
    # Full-width punctuation and spacing as on the page, nothing folded.
    assert {p["caption"] for p in labels["positives"]} <= captions
    assert any(set(c) & set("，：（）。") for c in captions)
