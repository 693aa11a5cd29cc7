"""Small, mergeable histograms of the final samples, for the plots and the dataset card: each
shards-plan task counts its rows, the driver adds the counts (O(bins), never O(rows))."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Histograms:
    """Caption lengths counted exactly up to `caption_max` (longer in the last bin); image sizes
    (original width x height) in square cells of `image_bin` px up to `image_max` a side."""
    caption_max: int
    image_bin: int
    image_max: int
    caption_length: np.ndarray = field(default=None)
    image_cells: np.ndarray = field(default=None)

    def __post_init__(self):
        if self.caption_length is None:
            self.caption_length = np.zeros(self.caption_max + 1, dtype=np.int64)
        if self.image_cells is None:
            self.image_cells = np.zeros((self.cells, self.cells), dtype=np.int64)

    @property
    def cells(self) -> int:
        return -(-self.image_max // self.image_bin)

    def count(self, caption_lengths: np.ndarray, widths: np.ndarray, heights: np.ndarray) -> None:
        n = np.minimum(np.asarray(caption_lengths, dtype=np.int64), self.caption_max)
        self.caption_length += np.bincount(n, minlength=self.caption_max + 1)
        w = np.clip(np.asarray(widths, dtype=np.int64) // self.image_bin, 0, self.cells - 1)
        h = np.clip(np.asarray(heights, dtype=np.int64) // self.image_bin, 0, self.cells - 1)
        np.add.at(self.image_cells, (w, h), 1)

    def to_dict(self) -> dict:
        """Sparse, for a task's small return value."""
        nz = np.nonzero(self.caption_length)[0]
        w, h = np.nonzero(self.image_cells)
        return {"caption_length": [nz.tolist(), self.caption_length[nz].tolist()],
                "image_cells": [w.tolist(), h.tolist(), self.image_cells[w, h].tolist()]}

    def add(self, d: dict) -> None:
        idx, n = d["caption_length"]
        self.caption_length[np.asarray(idx, dtype=np.int64)] += np.asarray(n, dtype=np.int64)
        w, h, n = d["image_cells"]
        np.add.at(self.image_cells, (np.asarray(w, dtype=np.int64), np.asarray(h, dtype=np.int64)),
                  np.asarray(n, dtype=np.int64))

    @property
    def samples(self) -> int:
        return int(self.caption_length.sum())

    def mean_caption_length(self) -> float:
        n = self.samples
        return round(float((self.caption_length * np.arange(len(self.caption_length))).sum() / n), 2) if n else 0.0

    def median_caption_length(self) -> int:
        n = self.samples
        return int(np.searchsorted(np.cumsum(self.caption_length), (n + 1) // 2)) if n else 0
