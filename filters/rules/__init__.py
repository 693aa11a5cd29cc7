"""The registry of text rules, by name: the one place that knows every rule and validates the names
a configuration lists. Adding a rule = one module here + its entry below + its name in
`TextRulesConfig.rules`. (The config holds names only; it never imports this module.)"""

from __future__ import annotations

from collections.abc import Callable, Collection

from filters.config import TextRulesConfig
from filters.rules.base import TextRule
from filters.rules.boilerplate import Boilerplate
from filters.rules.convert import Convert
from filters.rules.frequency import Frequency
from filters.rules.language import Language
from filters.rules.length import Length
from filters.rules.normalize import Normalize
from filters.rules.privacy import Privacy
from filters.rules.sensitive import Sensitive

RULES: dict[str, type[TextRule]] = {r.name: r for r in (
    Normalize, Convert, Boilerplate, Language, Length, Sensitive, Frequency, Privacy)}


def unknown_rules(names) -> list[str]:
    return [n for n in names if n not in RULES]


def problems(cfg: TextRulesConfig) -> list[str]:
    """What makes this text configuration unusable, in words: unknown rule names, missing lists."""
    out = [f"unknown text rule {r!r} (known: {', '.join(RULES)})" for r in unknown_rules(cfg.rules)]
    return out + cfg.problems()


def build_rules(cfg: TextRulesConfig, *, frequent: Collection[int] | None = None,
                jieba_cache_dir: str = "") -> list[TextRule]:
    """The configured chain. Word lists are normalised like captions (NFKC, t2s) so they match."""
    unknown = unknown_rules(cfg.rules)
    if unknown:
        raise ValueError(f"unknown text rule {unknown[0]!r} (known: {', '.join(RULES)})")
    normalize, convert = Normalize(cfg), Convert(cfg)
    as_caption: Callable[[str], str] = lambda w: convert.convert(normalize.clean(w)[0])  # noqa: E731
    factories: dict[str, Callable[[], TextRule]] = {
        "normalize": lambda: normalize,
        "convert": lambda: convert,
        "boilerplate": lambda: Boilerplate(cfg, as_caption),
        "language": lambda: Language(cfg),
        "length": lambda: Length(cfg, jieba_cache_dir),
        "sensitive": lambda: Sensitive(cfg, as_caption),
        "frequency": lambda: Frequency(cfg, frequent),
        "privacy": lambda: Privacy(cfg, jieba_cache_dir),
    }
    return [factories[n]() if n in factories else RULES[n](cfg) for n in cfg.rules]
