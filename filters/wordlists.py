"""Word lists of the rules: the bundled files in filters/data/ or a user's file, one entry a line."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"


def bundled(name: str) -> Path:
    return DATA_DIR / name


def load_lines(path: str | Path, default_name: str) -> list[str]:
    """Entries of `path` ('' = the bundled `default_name`): stripped, no blanks, '#' starts a comment."""
    p = Path(path) if path else bundled(default_name)
    if not p.is_file():
        raise FileNotFoundError(f"word list not found: {p}")
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out
