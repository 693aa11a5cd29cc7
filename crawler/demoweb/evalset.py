"""A held-out zero-shot evaluation set drawn like the demo web's good images.

`generate_evalset(out, task)` writes `out/<task>/<class>/<nnnn>.jpg` (one folder per class) and
`out/<task>/classnames.tsv` (`folder<TAB>Chinese class name`, one class a line, the folders' order)
plus `classnames.json` ({"task", "classes": [{"folder", "name", "synonyms"}], "templates"}) with
Chinese prompt templates. Tasks:
- `shape`: circle, square, triangle, star, hexagon (random colour, count, background)
- `colour`: the eight shape colours (random shape, count)
- `count`: one to four shapes (random shape, colour)
- `object`: the photo classes (cat, coffee, astronaut, rocket, motorcycle, coins, moon, galaxy)
Its random stream is separate from the site's (a different seed offset), so no image repeats one
of the demo web's; the pictures come from the same generators, sizes and backgrounds.
"""

from __future__ import annotations

import random
from pathlib import Path

from crawler.demoweb import content as C
from shards.atomic import write_bytes_atomic, write_json_atomic

TASKS = ("shape", "colour", "count", "object")
# Added to the demo web's seed so the evaluation images never come from the site's random stream.
EVAL_SEED_OFFSET = 1_000_003
PROMPT_TEMPLATES = ["一张{}的图片", "{}的照片", "图中是{}", "这是{}"]
COUNT_PROMPTS = ["图中有{}图形", "一张有{}图形的图片", "画面里有{}形状"]


def _synonyms(task: str, key: str) -> list[str]:
    table = {"shape": C.SHAPES, "colour": C.COLOURS, "object": C.PHOTOS}.get(task)
    if table is None:
        return list(C.COUNTS[int(key)]["zh"])
    return list(table[key]["zh"])


def _draw(task: str, key: str, rng: random.Random, size: tuple[int, int]) -> C.Drawing:
    if task == "object":
        return C.draw_photo(rng, size, key)
    shape = key if task == "shape" else rng.choice(sorted(C.SHAPES))
    colour = key if task == "colour" else rng.choice(sorted(C.COLOURS))
    count = int(key) if task == "count" else rng.randint(1, 4)
    return C.draw_shapes(rng, size, shape, colour, count)


def generate_evalset(output: str | Path, task: str = "shape", per_class: int = 20, seed: int = 0,
                     min_side: int = 240, max_side: int = 420) -> Path:
    """Write the task's folder under `output`; returns it. Deterministic for a seed."""
    if task not in TASKS:
        raise ValueError(f"unknown evaluation task {task!r} (one of {', '.join(TASKS)})")
    names = C.class_names_zh(task)
    rng = random.Random(seed + EVAL_SEED_OFFSET + TASKS.index(task))
    root = Path(output) / task
    for key in names:
        for i in range(per_class):
            short = rng.randint(min_side, max_side)
            long = int(short * rng.uniform(1.0, 1.4))
            size = (long, short) if rng.random() < 0.6 else (short, long)
            img = _draw(task, key, rng, size).image
            write_bytes_atomic(root / key / f"{i:04d}.jpg", C.encode(img, "JPEG", 90))
    write_bytes_atomic(root / "classnames.tsv", "".join(f"{k}\t{v}\n" for k, v in names.items()).encode("utf-8"))
    write_json_atomic(root / "classnames.json", {
        "task": task,
        "classes": [{"folder": k, "name": v, "synonyms": _synonyms(task, k)} for k, v in names.items()],
        "templates": COUNT_PROMPTS if task == "count" else PROMPT_TEMPLATES,
    })
    return root
