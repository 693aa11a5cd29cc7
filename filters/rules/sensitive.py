"""sensitive: a word list matched with Aho-Corasick on the caption's skeleton.

The skeleton (letters and digits only, lower-cased) is taken after NFKC and t2s, so inserted
spaces, punctuation or emoji and traditional forms do not hide a word.
"""

from __future__ import annotations

import ahocorasick

from filters import reasons
from filters.config import TextRulesConfig
from filters.rules.base import TextRule
from filters.sample import Sample
from filters.text_utils import skeleton
from filters.wordlists import load_lines


class Sensitive(TextRule):
    name = "sensitive"
    reasons = (reasons.SENSITIVE,)

    def __init__(self, cfg: TextRulesConfig, normalize_word=None):
        words = load_lines(cfg.sensitive_words_file, "sensitive_words.txt") + list(cfg.sensitive_extra)
        norm = normalize_word or (lambda w: w)
        self.automaton = ahocorasick.Automaton()
        self.size = 0
        for w in words:
            key = skeleton(norm(w))
            if len(key) >= cfg.sensitive_min_len and key not in self.automaton:
                self.automaton.add_word(key, key)
                self.size += 1
        if self.size:
            self.automaton.make_automaton()

    def first_match(self, text: str, skel: str | None = None) -> str | None:
        if not self.size:
            return None
        for _end, word in self.automaton.iter(skeleton(text) if skel is None else skel):
            return word
        return None

    def __call__(self, s: Sample) -> None:
        word = self.first_match(s.text, s.skeleton())
        if word is not None:
            s.drop(reasons.SENSITIVE, word)
