"""The text chain: runs the configured rules over captions and counts every drop and change."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection, Iterable

from filters import reasons
from filters.config import TextRulesConfig
from filters.redact import Redactor
from filters.rules import build_rules
from filters.rules.convert import Convert
from filters.rules.normalize import Normalize
from filters.rules.privacy import Privacy
from filters.sample import Sample

KEPT = "kept"


class TextChain:
    """Per-process object: build once (jieba, OpenCC, automata, fastText load lazily), then feed."""

    def __init__(self, cfg: TextRulesConfig, *, frequent: Collection[int] | None = None,
                 jieba_cache_dir: str = "", profile: bool = False):
        self.cfg = cfg
        self.rules = build_rules(cfg, frequent=frequent, jieba_cache_dir=jieba_cache_dir)
        self.counts: Counter[str] = Counter()
        self.profile = profile
        self.seconds: Counter[str] = Counter()
        self.redactor = Redactor(Normalize(cfg), Convert(cfg), cfg)
        # caption -> the sample's state after the chain: a repeated caption costs one lookup.
        self._memo: dict[str, tuple] = {}
        self.memo_hits = 0

    def rule(self, name: str):
        return next((r for r in self.rules if r.name == name), None)

    def _run(self, s: Sample) -> None:
        for rule in self.rules:
            if s.reason is not None and not rule.always:
                continue
            if self.profile:
                t0 = time.process_time()
            try:
                rule(s)
            except Exception as exc:  # a bad row never stops the chain: it is set aside, counted
                if isinstance(rule, Privacy) or rule.always:
                    s.withheld = True
                if s.reason is None or rule.always:
                    s.drop(reasons.ERROR, f"{rule.name}: {type(exc).__name__}: {exc}"[:300])
            if self.profile:
                self.seconds[rule.name] += time.process_time() - t0

    def process(self, caption, reason: str | None = None, detail: str | None = None) -> Sample:
        """Run one caption. `reason` pre-set (e.g. by an image rule) skips the drop rules but
        still cleans and masks the text, since rejected rows are written too."""
        memo = self._memo.get(caption) if reason is None and isinstance(caption, str) else None
        if memo is not None:
            self.memo_hits += 1
            s = _restore(caption, memo)
        else:
            s = Sample(caption, reason, detail)
            if not isinstance(caption, str):
                if s.reason is None:
                    s.drop(reasons.NO_CAPTION,
                           "missing" if caption is None else f"not text: {type(caption).__name__}")
                s.text = ""
            else:
                self._run(s)
                if reason is None and self.cfg.memo_size > 0:
                    if len(self._memo) >= self.cfg.memo_size:
                        self._memo.clear()  # a new generation: cheaper than tracking recency
                    self._memo[caption] = _snapshot(s)
        self.counts[s.reason or KEPT] += 1
        for mark in s.marks:
            self.counts[mark] += 1
        return s

    def process_all(self, captions: Iterable) -> list[Sample]:
        return [self.process(c) for c in captions]

    def output_original(self, s: Sample) -> str | None:
        """The original caption as it may be written out: redacted where the privacy rule masked."""
        if s.withheld:
            return None
        if not s.masked:
            return s.original if isinstance(s.original, str) else None
        return self.redactor.redact(s.original, s.masked, fallback=s.text)

    def output_caption(self, s: Sample) -> str | None:
        return None if s.withheld or not isinstance(s.original, str) else s.text


_STATE = ("text", "reason", "detail", "key", "han", "kana", "hangul", "latin_words", "withheld",
          "unconverted")


def _snapshot(s: Sample) -> tuple:
    return tuple(getattr(s, f) for f in _STATE) + (tuple(s.marks), tuple(s.masked))


def _restore(caption: str, memo: tuple) -> Sample:
    s = Sample(caption)
    for f, v in zip(_STATE, memo):
        setattr(s, f, v)
    s.marks, s.masked = list(memo[-2]), list(memo[-1])
    return s


def frequent_keys(samples: Iterable[Sample], max_occurrences: int) -> set[int]:
    counts = Counter(s.key for s in samples if s.key is not None)
    return {k for k, n in counts.items() if n > max_occurrences}


def apply_frequent(samples: Iterable[Sample], frequent: Collection[int], max_occurrences: int,
                   counts: Counter | None = None) -> int:
    """Second pass of the frequency rule: drop kept samples whose key is too frequent."""
    n = 0
    for s in samples:
        if s.reason is None and s.key is not None and s.key in frequent:
            s.drop(reasons.TOO_FREQUENT, f"> {max_occurrences}")
            n += 1
            if counts is not None:
                counts[KEPT] -= 1
                counts[reasons.TOO_FREQUENT] += 1
    return n


def filter_captions(captions: Iterable, cfg: TextRulesConfig, *, profile: bool = False,
                    jieba_cache_dir: str = "") -> tuple[list[Sample], TextChain]:
    """The whole text chain on an in-memory list, with the frequency counted over the list."""
    chain = TextChain(cfg, jieba_cache_dir=jieba_cache_dir, profile=profile)
    samples = chain.process_all(captions)
    if "frequency" in cfg.rules:
        t0 = time.process_time()
        apply_frequent(samples, frequent_keys(samples, cfg.max_occurrences), cfg.max_occurrences,
                       chain.counts)
        if profile:
            chain.seconds["frequency"] += time.process_time() - t0
    return samples, chain
