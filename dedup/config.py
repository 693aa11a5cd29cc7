"""Typed, documented defaults of the dedup stage."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DedupConfig:
    # Near duplicates: pHash Hamming distance at most this (of 64 bits). 4 catches re-encodes,
    # resizes and brightness changes; 8 also catches most 2% crops and small watermarks.
    radius: int = 4
    # Pigeonhole blocks the 64 bits are split into (tables = C(blocks, radius)); 0 picks the
    # count with the lowest estimated cost for the dataset's size (keys of about log2(n) bits).
    blocks: int = 0
    # Safety cap on tables when `blocks` is chosen automatically (large radii explode C(b, k)).
    max_tables: int = 4096
    # In a bucket (same table key) each hash is compared with at most this many following
    # hashes; larger buckets are "hot", reported with the comparisons they skipped.
    hot_bucket_window: int = 2048
    # Estimated cost per hash per table (sort + permutation) and per candidate pair, in
    # nanoseconds: only their ratio matters, for choosing `blocks` automatically.
    cost_sort_ns: float = 40.0
    cost_candidate_ns: float = 15.0
    # Exact duplicates: same normalised URL, same image bytes (sha256), same (image, caption).
    exact_url: bool = True
    exact_sha256: bool = True
    # Query parameters dropped when normalising URLs (tracking only, never content).
    url_drop_params: list[str] = field(default_factory=lambda: [
        "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "spm", "share_from"])
    # Distinct captions kept per image cluster, each as its own pair (1: one pair per cluster).
    captions_per_cluster: int = 1
    # Rows one dedup-exact or dedup-decide task gathers (about 35 and 125 bytes each): sets how
    # many such tasks run; each reads one slice of every raw index's work file.
    shuffle_rows_per_task: int = 4_000_000

    def problems(self) -> list[str]:
        """Values that cannot work, one line each (the CLI turns them into a usage error)."""
        out = []
        if not 0 <= self.radius <= 32:
            out.append(f"dedup.radius must be within 0..32, got {self.radius}")
        if self.blocks and not self.radius < self.blocks <= 64:
            out.append(f"dedup.blocks must be 0 (auto) or within radius+1..64, got {self.blocks}")
        if self.captions_per_cluster < 1:
            out.append("dedup.captions_per_cluster must be at least 1")
        if self.shuffle_rows_per_task < 1:
            out.append("dedup.shuffle_rows_per_task must be at least 1")
        if self.hot_bucket_window < 1:
            out.append("dedup.hot_bucket_window must be at least 1")
        return out
