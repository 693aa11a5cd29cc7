"""Precision and recall of every rule on the labelled caption set (fails below 0.97).

The set (tests/filters/data/labelled_captions.jsonl, sources in tests/filters/data/SOURCES.md) holds
captions written by the team and, for at least a third, real page titles, photo captions and alt
texts from public pages; a quarter of it (`split: holdout`, chosen by a hash of the caption) was
kept aside while the rules were tuned. The report is printed for all rows, the real ones and the
holdout, per rule: language, length, boilerplate, frequency, sensitive, names, phone, e-mail.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from filters import reasons
from filters.chain import filter_captions
from filters.config import TextRulesConfig

LABELLED = Path(__file__).parent / "data" / "labelled_captions.jsonl"
THRESHOLD = 0.97
# Each rule and the drop codes it owns.
DROP_RULES = {"language": (reasons.NO_CHINESE,), "length": (reasons.TOO_SHORT, reasons.TOO_LONG),
              "boilerplate": (reasons.BOILERPLATE,), "frequency": (reasons.TOO_FREQUENT,),
              "sensitive": (reasons.SENSITIVE,)}
MASK_RULES = {"names": "<人名>", "phone": "<电话>", "e-mail": "<邮箱>", "id number": "<身份证号>"}
# Where the target is not met yet, the floor the rule holds today (the report prints the figures).
# Issue 16 asks 0.97 everywhere; every rule meets it now. Name recall is 0.975 on all rows (0.944
# on the real news titles, 0.938 on the holdout; precision 0.994): the names resource is built from
# jieba's dictionary, THUOCL's 5,134 most-named people, HanLP's transliterated names and person
# dictionary, and CC-CEDICT's person entries (屈原, 特朗普, 杰克 standing alone), all licensed
# sources (see filters/names_resource.py). The names still missed are ones no such list holds
# surely and no context gives away: fictional names without a surname (东华, 凤九), a nickname-like
# stage name (丫蛋儿), transliterated names standing alone before an ordinary verb that no
# dictionary lists as a person (哈登出现在..., 阿奇姆彭一剑封喉: the transliterated lists also hold
# brands, 特斯拉, 别克, which 'appear' as people do) (docs/design.md).
SHORTFALL: dict[tuple[str, str], float] = {}
# Kept captions whose whole cleaned text is as expected (the names missed above show here too).
EXACT_FLOOR = 0.98


@pytest.fixture(scope="module")
def labelled():
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    samples, chain = filter_captions([r["caption"] for r in rows], TextRulesConfig())
    return rows, samples, chain


def _pr(expected: list[bool], predicted: list[bool]) -> tuple[float, float, int]:
    tp = sum(e and p for e, p in zip(expected, predicted))
    fp = sum(p and not e for e, p in zip(expected, predicted))
    fn = sum(e and not p for e, p in zip(expected, predicted))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall, tp + fn


def test_labelled_set_is_large_varied_and_one_third_real(labelled):
    rows, _, _ = labelled
    assert len(rows) >= 800
    assert sum(r["real"] for r in rows) * 3 >= len(rows)
    assert all(r["source"] for r in rows)
    assert 0.15 <= sum(r["split"] == "holdout" for r in rows) / len(rows) <= 0.35
    cats = Counter(r["category"] for r in rows)
    for needed in ("simplified", "traditional", "japanese", "korean", "english", "mixed", "emoji",
                   "boilerplate", "boilerplate_cut", "sensitive", "names", "name_lookalike", "privacy",
                   "short", "long", "kana_chinese", "normalize", "alt_text", "news_title"):
        assert cats[needed] >= 3, needed


def rule_scores(rows, samples) -> dict[str, tuple[float, float, int]]:
    """(precision, recall, positives) per rule. Drop rules: per caption, the expected reason is one
    of the rule's codes <=> the chain dropped it with one. Mask rules: per caption the team expects
    kept, the expected cleaned text holds the token <=> the chain's text does."""
    out = {}
    for rule, codes in DROP_RULES.items():
        out[rule] = _pr([row["reason"] in codes for row in rows], [s.reason in codes for s in samples])
    kept = [(row, s) for row, s in zip(rows, samples) if row["verdict"] == "keep" and s.reason is None]
    for rule, token in MASK_RULES.items():
        out[rule] = _pr([token in row["cleaned"] for row, _ in kept], [token in s.text for _, s in kept])
    return out


def test_precision_recall_per_rule(labelled):
    rows, samples, _ = labelled
    report, failures = [], []
    subsets = {"all": [True] * len(rows), "real": [r["real"] for r in rows],
               "holdout": [r["split"] == "holdout" for r in rows]}
    scores = {name: rule_scores([r for r, m in zip(rows, mask) if m], [s for s, m in zip(samples, mask) if m])
              for name, mask in subsets.items()}
    report.append(f"{'rule':12s} " + "  ".join(f"{n + ' P/R (n)':>24s}" for n in subsets))
    for rule in list(DROP_RULES) + list(MASK_RULES):
        cells = [f"{scores[n][rule][0]:.3f}/{scores[n][rule][1]:.3f} ({scores[n][rule][2]:3d})" for n in subsets]
        report.append(f"{rule:12s} " + "  ".join(f"{c:>24s}" for c in cells))
        p, r, _ = scores["all"][rule]
        if p < SHORTFALL.get((rule, "precision"), THRESHOLD) or r < SHORTFALL.get((rule, "recall"), THRESHOLD):
            failures.append(rule)
    kept = [(row, s) for row, s in zip(rows, samples) if row["verdict"] == "keep" and s.reason is None]
    exact = sum(row["cleaned"] == s.text for row, s in kept) / max(1, len(kept))
    report.append(f"{'cleaned text':12s} exact {exact:.3f} (n={len(kept)})")
    print("\n" + "\n".join(report))
    assert not failures, "\n".join(report)
    assert exact >= EXACT_FLOOR


def test_language_accuracy_beats_the_model_alone(labelled):
    """Script first, model only where script cannot decide: measured against fastText alone."""
    from filters.rules.language import LanguageId
    rows, samples, _ = labelled
    lid = LanguageId()
    subset = [(row, s) for row, s in zip(rows, samples)
              if row["category"] in ("simplified", "traditional", "japanese", "korean", "english",
                                     "mixed", "emoji", "short")]
    truth = [row["reason"] != reasons.NO_CHINESE for row, _ in subset]
    ours = [s.reason != reasons.NO_CHINESE for _, s in subset]
    model = [lid.chinese_score(row["caption"])[1] in ("zh", "wuu", "yue") for row, _ in subset]
    acc_ours = sum(t == o for t, o in zip(truth, ours)) / len(subset)
    acc_model = sum(t == m for t, m in zip(truth, model)) / len(subset)
    print(f"\nlanguage accuracy on {len(subset)} captions: rule {acc_ours:.3f}, fastText top-1 alone {acc_model:.3f}")
    assert acc_ours >= THRESHOLD
    assert acc_ours > acc_model


def test_no_name_survives_in_any_output_text(labelled):
    """Masked names appear neither in the cleaned caption nor in the redacted original."""
    rows, samples, chain = labelled
    for row, s in zip(rows, samples):
        for hidden, _token in s.masked:
            assert hidden not in s.text
            original = chain.output_original(s) or ""
            assert hidden not in chain.redactor.convert.convert(original), (row["caption"], original)
