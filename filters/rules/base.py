"""What every text rule is: a callable that reads a Sample and drops or rewrites it."""

from __future__ import annotations

from abc import ABC, abstractmethod

from filters.sample import Sample


class TextRule(ABC):
    """One rule with one job. `reasons` lists the drop codes it may set.

    `always` rules (cleaning and masking) also run on rows an earlier rule dropped, so a rejected
    row is written cleaned and masked too: rejects are kept for audit, never with a name in them.
    """

    name: str = ""
    reasons: tuple[str, ...] = ()
    always: bool = False

    @abstractmethod
    def __call__(self, s: Sample) -> None:
        """Drop `s` (s.drop(reason)) or rewrite `s.text`; record transformations in `s.marks`."""
