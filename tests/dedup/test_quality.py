"""Known edits of real photos must cluster with their source; distinct photos must not.

603 images: 67 distinct pictures (scikit-image photos and quadrant crops) stored as-is and after
re-encoding at quality 90/70/40, 50% resize, 2% crop, brightness +-10% and a small watermark.
"""

from __future__ import annotations

import pandas as pd
import pytest

from dedup.config import DedupConfig
from dedup.decisions import decide
from rawgen import TRANSFORMS, build_corpus, cluster_pairs, phash_u64, truth_pairs


@pytest.fixture(scope="module")
def corpus():
    samples = build_corpus()
    df = pd.DataFrame({
        "key": [s.key for s in samples], "url": [s.url for s in samples],
        "caption": [s.caption for s in samples],
        "sha256": [s.key for s in samples],  # every file distinct: only pHash may link them
        "phash": pd.array([phash_u64(s.jpeg) for s in samples], dtype="UInt64"),
        "original_width": 100, "original_height": 100,
    })
    return samples, df


def evaluate(samples, df, radius):
    decisions, stats = decide(df, DedupConfig(radius=radius))
    cluster = dict(zip(decisions["key"], decisions["cluster_id"]))
    truth = truth_pairs(samples)
    found = cluster_pairs(cluster)
    tp = len(truth & found)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(truth)
    original = {s.source: cluster[s.key] for s in samples if s.transform == "original"}
    per_transform = {t: sum(cluster[s.key] == original[s.source] for s in samples if s.transform == t)
                     / sum(s.transform == t for s in samples) for t in TRANSFORMS}
    print(f"\nradius {radius}: {len(samples)} images, pair precision {precision:.4f}, recall {recall:.4f}, "
          f"kept {stats['kept']} of {stats['examined']}; recall by transform "
          + ", ".join(f"{t} {r:.3f}" for t, r in per_transform.items()))
    return precision, recall, per_transform, stats


def test_default_radius_finds_reencodes_resizes_and_brightness(corpus):
    samples, df = corpus
    assert len(samples) >= 200
    precision, recall, per_t, stats = evaluate(samples, df, radius=4)
    assert precision == 1.0  # no two distinct photos merged
    for t in ("jpeg90", "jpeg70", "jpeg40", "resize50", "bright-10"):
        assert per_t[t] == 1.0, t
    # pHash at 4 bits also catches most small crops, watermarks and brightening.
    assert per_t["crop2"] >= 0.85 and per_t["watermark"] >= 0.8 and per_t["bright+10"] >= 0.95
    assert recall >= 0.9
    # One survivor per picture that was not split.
    assert stats["kept"] >= 67 and stats["kept"] <= 67 + sum(1 - r for r in per_t.values()) * 67 + 1


def test_radius_8_finds_crops_and_watermarks(corpus):
    samples, df = corpus
    precision, recall, per_t, _ = evaluate(samples, df, radius=8)
    # At 8 bits pHash starts to join pictures of the same coarse structure (measured here: a
    # quarter of the retina's black disk and a quarter of the colour wheel, 8 bits apart), which
    # merges their two clusters; everything else stays apart.
    assert precision >= 0.95
    assert per_t["crop2"] == 1.0 and per_t["bright+10"] == 1.0
    assert per_t["watermark"] >= 0.95
    assert recall >= 0.98
