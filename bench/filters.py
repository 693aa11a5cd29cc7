"""Benchmark: captions per second per core for the full text chain (`make bench-filters`).

A realistic mix of >= 100k captions is built from jieba's dictionary (words by part of speech,
drawn by frequency, as Wukong drew queries from frequent words) in web-caption shapes: scenery,
product titles, keyword lists, news photos with person names, traditional captions, English,
Japanese, Korean, boilerplate, contact details, spam, long paragraphs and repeats.
One process, one core, CPU time (time.process_time: the machine may be shared). Printed: the full
chain, the same chain without name masking, the full chain without the memo of repeated captions,
the chain with jieba posseg on every caption (no gate, the naive peer), their ratios, and each
rule's share of the CPU time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from filters.chain import filter_captions  # noqa: E402
from filters.config import TextRulesConfig  # noqa: E402
from filters.jieba_runtime import dictionary, get_jieba  # noqa: E402
from filters.names import NameTables  # noqa: E402


def words_by_tag(freq: dict, tags: dict, wanted: tuple[str, ...], limit: int) -> tuple[list[str], list[int]]:
    items = sorted(((f, w) for w, t in tags.items() if t in wanted and 2 <= len(w) <= 4
                    and (f := freq.get(w, 0)) > 0), reverse=True)[:limit]
    return [w for _, w in items], [f for f, _ in items]


def build_corpus(n: int, seed: int = 0) -> list[str]:
    import opencc
    rng = random.Random(seed)
    get_jieba(str(ROOT / ".cache" / "jieba"))
    freq, tags = dictionary()
    nouns, nf = words_by_tag(freq, tags, ("n",), 20000)
    adjs, af = words_by_tag(freq, tags, ("a",), 3000)
    places, pf = words_by_tag(freq, tags, ("ns",), 3000)
    verbs, vf = words_by_tag(freq, tags, ("v",), 5000)
    t = NameTables.load(TextRulesConfig())
    surnames, given = sorted(t.single) + sorted(t.compound)[:5], sorted(t.given)
    s2t = opencc.OpenCC("s2t")
    n_ = lambda: rng.choices(nouns, nf)[0]  # noqa: E731
    a_ = lambda: rng.choices(adjs, af)[0]  # noqa: E731
    p_ = lambda: rng.choices(places, pf)[0]  # noqa: E731
    v_ = lambda: rng.choices(verbs, vf)[0]  # noqa: E731
    name = lambda: rng.choice(surnames) + "".join(rng.choices(given, k=rng.choice((1, 2))))  # noqa: E731
    shapes = [
        (22, lambda: f"{a_()}的{n_()}"),
        (10, lambda: f"{p_()}的{n_()}{rng.choice(['风景', '夜景', '美食', '街景', ''])}"),
        (12, lambda: f"{rng.choice(['2023', '2024', ''])}新款{n_()}{n_()}{a_()}{rng.choice(['男', '女', ''])}"),
        (8, lambda: " ".join(n_() for _ in range(rng.randint(2, 5)))),
        (6, lambda: f"{n_()}{v_()}{n_()}的{n_()}"),
        (4, lambda: f"记者{name()}摄" if rng.random() < .5 else f"{name()}{rng.choice(['在', '和'])}{p_()}{v_()}"),
        (5, lambda: s2t.convert(f"{a_()}的{n_()}{v_()}")),
        (4, lambda: rng.choice(["Beautiful sunset at the beach", "Modern kitchen design ideas",
                                 "Free HD wallpaper download", "Cute puppy photo"]) + f" {rng.randint(1, 999)}"),
        (2, lambda: rng.choice(["東京の夜景がきれいです", "かわいい猫の写真", "서울의 밤 풍경", "맛있는 음식"])),
        (5, lambda: rng.choice(["iPhone 15", "LED", "4K", "Nike", "DIY", "PPT"]) + f" {n_()} {a_()}"),
        (3, lambda: rng.choice(["查看源网页", "展开全文", "摄影部落", "点击查看大图"]) if rng.random() < .5
         else f"{a_()}的{n_()} | 查看源网页"),
        (2, lambda: f"{n_()}出售 联系电话1{rng.randint(3, 9)}{rng.randint(100000000, 999999999)}"),
        (1, lambda: rng.choice(["代开发票", "网络赌博", "六合彩"]) + n_()),
        (3, lambda: "，".join(f"{a_()}的{n_()}{v_()}{n_()}" for _ in range(6))),
        (3, lambda: rng.choice(["高清壁纸", "风景图片", "美女图片", "可爱头像"])),
        (1, lambda: rng.choice(["猫", "好", "😂😂"])),
    ]
    weights = [w for w, _ in shapes]
    makers = [m for _, m in shapes]
    return [rng.choices(makers, weights)[0]() for _ in range(n)]


def throughput(captions: list[str], cfg: TextRulesConfig, profile: bool = False, repeats: int = 1):
    # Warm-up: load jieba, OpenCC, fastText and the automata outside the timed run.
    filter_captions(captions[:200], cfg)
    best = None
    # Best of `repeats`: the first pass over a large list also pays the process's memory growth,
    # and a shared machine adds noise; every configuration gets the same number of passes.
    for _ in range(repeats):
        t0 = time.process_time()
        samples, chain = filter_captions(captions, cfg, profile=profile)
        seconds = time.process_time() - t0
        best = seconds if best is None else min(best, seconds)
    return len(captions) / best, samples, chain


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--captions", type=int, default=100_000)
    ap.add_argument("--naive", type=int, default=10_000, help="captions for the posseg-everywhere peer")
    ap.add_argument("--repeats", type=int, default=2, help="timed passes per configuration (best counts)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    captions = build_corpus(args.captions)
    cfg = TextRulesConfig()
    full, samples, chain = throughput(captions, cfg, repeats=args.repeats)
    tagged = chain.rule("privacy").names.tagged / len(captions)
    memo_share = chain.memo_hits / len(captions)
    no_names, _, _ = throughput(captions, dataclasses.replace(cfg, mask_names=False), repeats=args.repeats)
    no_memo, _, _ = throughput(captions, dataclasses.replace(cfg, memo_size=0), repeats=args.repeats)
    _, _, prof = throughput(captions, cfg, profile=True)
    # The naive peer: jieba posseg on every caption, then the same chain without the name gate.
    import jieba.posseg
    sub = captions[: args.naive]
    t0 = time.process_time()
    for c in sub:
        jieba.posseg.lcut(c)
    posseg_each = (time.process_time() - t0) / len(sub)
    naive = 1.0 / (1.0 / no_names + posseg_each)
    total = sum(prof.seconds.values())
    shares = {k: round(v / total, 3) for k, v in sorted(prof.seconds.items(), key=lambda kv: -kv[1])}
    kept = sum(s.reason is None for s in samples) / len(samples)
    figures = {
        "captions": len(captions), "kept_share": round(kept, 3), "tagged_share": round(tagged, 3),
        "full_chain_captions_per_s_per_core": round(full),
        "chain_without_names_captions_per_s_per_core": round(no_names),
        "full_chain_without_memo_captions_per_s_per_core": round(no_memo), "memo_hit_share": round(memo_share, 3),
        "naive_posseg_every_caption_captions_per_s_per_core": round(naive),
        "ratio_full_vs_without_names": round(full / no_names, 3),
        "ratio_full_vs_naive_posseg": round(full / naive, 2),
        "target_captions_per_s_per_core": 20_000, "meets_target": full >= 20_000,
        "rule_time_share": shares, "funnel": dict(chain.counts.most_common()),
    }
    print(f"filters: {len(captions)} captions, 1 core (CPU time)")
    print(f"  full chain            {full:10.0f} captions/s  (name tagger ran on {tagged:.1%})")
    print(f"  without name masking  {no_names:10.0f} captions/s  ratio full/without {full / no_names:.2f}")
    print(f"  full, no repeat memo  {no_memo:10.0f} captions/s  (repeats served from the memo: {memo_share:.1%})")
    print(f"  peer: posseg on all   {naive:10.0f} captions/s  ratio full/peer {full / naive:.2f}")
    print(f"  target 20000/s/core: {'met' if full >= 20_000 else 'NOT met'}")
    print("  share of time per rule: " + ", ".join(f"{k} {v:.1%}" for k, v in shares.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
