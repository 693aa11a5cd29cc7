"""jieba, initialised once per process with its cache in a project-local directory."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

_lock = threading.Lock()
_ready = False


def default_cache_dir() -> Path:
    return Path.cwd() / ".cache" / "jieba"


def get_jieba(cache_dir: str | Path | None = None):
    """The `jieba` module, initialised (dictionary loaded) once; its cache never goes to /tmp."""
    global _ready
    import jieba
    if _ready:
        return jieba
    with _lock:
        if not _ready:
            path = Path(cache_dir) if cache_dir else default_cache_dir()
            try:
                path.mkdir(parents=True, exist_ok=True)
                writable = os.access(path, os.W_OK)
            except OSError:
                writable = False
            if writable:
                jieba.dt.tmp_dir = str(path)
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            import jieba.posseg  # noqa: F401 - loads the tag table once
            _ready = True
    return jieba


def posseg_tokenizer():
    import jieba.posseg
    return jieba.posseg.dt


def dictionary() -> tuple[dict, dict]:
    """(word -> frequency, word -> part-of-speech tag) of jieba's loaded dictionary."""
    import jieba
    import jieba.posseg
    return jieba.dt.FREQ, jieba.posseg.dt.word_tag_tab
