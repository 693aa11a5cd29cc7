"""Typed, documented defaults of the final-shards stage."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ShardsConfig:
    # Samples per final shard; the last shard of a split may be smaller (and a shard loses one
    # sample per key repeated across raw shards, which is counted).
    samples_per_shard: int = 10_000
    # Seed of the shuffle across source shards (recorded in stats.json and the dataset card).
    seed: int = 0
    # Split fractions by a stable hash of the key: a sample never changes split as data grows.
    val_fraction: float = 0.05
    test_fraction: float = 0.0
    # Salt of that hash; change it only to draw a new, independent split.
    split_salt: str = "wukong-split-v1"
    # Dataset card fields.
    dataset_name: str = "wukong-zh-demo"
    license: str = "unknown: images and captions belong to their owners; research use only"
    description: str = "Chinese image-text pairs crawled and filtered with the Wukong recipe."
    # Histogram bins of the plots.
    plot_bins: int = 40
    # Caption lengths are counted exactly up to this many characters; longer ones in the last bin.
    plot_caption_max_chars: int = 512
    # Image sizes (original width x height) are counted in square cells of this many pixels.
    plot_image_bin_px: int = 64
    # Largest side counted in its own cells; larger sides fall in the last cell.
    plot_image_max_px: int = 4096
    # Most plan rows one shards-gather task holds (about 0.5 KB each in memory): sets the number of
    # gather groups, ceil(raw rows / gather_rows), before any row is read.
    gather_rows: int = 500_000
    # Keep OUTPUT/_work (plan files and gathered pieces) after a successful run, e.g. to inspect
    # the exchange; a run that fails always keeps it so a rerun resumes.
    keep_work: bool = False
    # Raw-member reads in flight per shards-write task. A final shard's samples are scattered over
    # every raw tar, and at 100M none of them is still in the page cache, so each is a random disk
    # read; a disk serves many at once (this box, cold: 76 us a read one at a time, 40 us with 16).
    read_threads: int = 16
    # Samples per read job (a thread's hand-off costs about as much as a cached read, so reads go
    # in batches). Memory per task: 2 x read_threads x read_batch samples' bytes in flight.
    read_batch: int = 16
    # Parallel Ray tasks in flight per step (0: two per CPU Ray sees).
    processes: int = 0

    def problems(self) -> list[str]:
        """Values that cannot work, one line each (the CLI turns them into a usage error)."""
        out = []
        if self.samples_per_shard < 1:
            out.append(f"shards.samples_per_shard must be at least 1, got {self.samples_per_shard}")
        if not (0 <= self.val_fraction and 0 <= self.test_fraction and self.val_fraction + self.test_fraction < 1):
            out.append("shards.val_fraction and shards.test_fraction must be >= 0 and sum to less than 1")
        if self.read_threads < 1 or self.read_batch < 1:
            out.append("shards.read_threads and shards.read_batch must be at least 1")
        if self.gather_rows < 1:
            out.append(f"shards.gather_rows must be at least 1, got {self.gather_rows}")
        if self.plot_caption_max_chars < 1 or self.plot_image_bin_px < 1 or self.plot_image_max_px < self.plot_image_bin_px:
            out.append("shards.plot_caption_max_chars and shards.plot_image_bin_px must be >= 1, "
                       "shards.plot_image_max_px >= shards.plot_image_bin_px")
        return out
