"""Typed, documented defaults of the dedup stage."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DedupConfig:
    # Near duplicates: pHash Hamming distance at most this (of 64 bits).
    radius: int = 4
