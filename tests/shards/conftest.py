"""Share the raw-shard helper of tests/dedup and this directory's synthetic inputs (pytest runs
in importlib mode)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "dedup"))
sys.path.insert(0, str(Path(__file__).parent))
