"""The dataset card (README.md) and plots (PNG, matplotlib Agg) of the final shards."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from shards.atomic import write_bytes_atomic
from shards.config import ShardsConfig
from shards.histograms import Histograms


def _counts_lines(counts: dict, indent: str = "") -> list[str]:
    lines = []
    for k, v in counts.items():
        if isinstance(v, dict):
            if v and all(isinstance(x, (int, float)) for x in v.values()):
                lines.append(f"{indent}- {k}: " + ", ".join(f"{a} {b:,}" if isinstance(b, int) else f"{a} {b}"
                                                            for a, b in v.items()))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            lines.append(f"{indent}- {k}: {v:,}" if isinstance(v, int) else f"{indent}- {k}: {v}")
    return lines


def dataset_card(cfg: ShardsConfig, stats: dict, stage_stats: dict[str, dict], command: str) -> str:
    f = stats["funnel"]
    lines = [
        f"# {cfg.dataset_name}", "",
        cfg.description, "",
        f"**Licence:** {cfg.license}", "",
        "## Contents", "",
        "| split | samples | shards |", "|---|---:|---:|",
    ]
    for split, s in stats["splits"].items():
        lines.append(f"| {split} | {s['samples']:,} | {s['shards']} |")
    lines += [
        "", "Each shard `{split}/NNNNNN.tar` holds `KEY.jpg` (the JPEG as downloaded and resized by the "
        "ingest stage, copied without re-encoding), `KEY.txt` (the cleaned caption) and `KEY.json` "
        "(metadata: url, sizes, pHash, sha256, original caption). `NNNNNN.parquet` indexes each shard; "
        "`sizes.json` and `__len__` give the sample counts that webdataset and open_clip read.", "",
        "## Funnel", "",
        "| step | samples |", "|---|---:|",
    ]
    for step, n in f.items():
        lines.append(f"| {step} | {n:,} |")
    lines += ["", "![funnel](funnel.png)", "", "### Reasons, by stage", ""]
    for stage, reasons in stats["reasons"].items():
        if reasons:
            lines.append(f"- {stage}: " + ", ".join(f"{r} {n:,}" for r, n in reasons.items()))
    for stage, s in stage_stats.items():
        body = _counts_lines(s)
        if body:
            lines += ["", f"### {stage} stage (its stats.json)", ""] + body
    lines += [
        "", "## Distributions", "", "![caption length](caption_length.png)", "",
        "![image size](image_size.png)", "",
        "## How it was built", "",
        "Ingest (download, resize, pHash) -> filter (Wukong text and image rules) -> dedup (exact URL, "
        "sha256 and pair duplicates, pHash near duplicates within the radius by permuted pigeonhole "
        "tables and union-find) -> these shards. Splits by a salted hash of the key, so a sample never "
        "moves between splits as the dataset grows; samples shuffled across source shards with the "
        "recorded seed.", "",
        f"- command: `{command}`",
        f"- seed: {cfg.seed}, split salt: `{cfg.split_salt}`, samples per shard: {cfg.samples_per_shard}",
        f"- val fraction: {cfg.val_fraction}, test fraction: {cfg.test_fraction}",
        "", "Configuration of this stage:", "", "```json",
        json.dumps(dataclasses.asdict(cfg), ensure_ascii=False, indent=2), "```", "",
    ]
    return "\n".join(lines)


def _save(fig, path: Path) -> None:
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    write_bytes_atomic(path, buf.getvalue())


def write_plots(out: Path, hist: Histograms, funnel: dict[str, int], bins: int) -> list[str]:
    """Plots from merged histograms (`shards.histograms`), never from per-sample arrays."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    names = []
    fig, ax = plt.subplots(figsize=(6, 4))
    lengths = hist.caption_length
    top = int(np.flatnonzero(lengths)[-1]) + 1 if lengths.any() else 1
    width = -(-top // bins)  # whole characters per bin, so no bin holds more lengths than another
    ax.hist(np.arange(top), bins=np.arange(0, top + width, width), weights=lengths[:top], color="#4477aa")
    ax.set_xlabel("caption length (characters)" + (f", last bin {hist.caption_max}+" if top > hist.caption_max else ""))
    ax.set_ylabel("samples")
    ax.set_title("Caption length")
    _save(fig, out / "caption_length.png")
    plt.close(fig)
    names.append("caption_length.png")

    fig, ax = plt.subplots(figsize=(6, 4.6))
    cells = hist.image_cells
    used = np.argwhere(cells)
    w_top, h_top = (used.max(axis=0) + 1) if len(used) else (1, 1)
    shown = cells[:w_top, :h_top].T.astype(float)
    shown[shown == 0] = np.nan
    mesh = ax.pcolormesh(np.arange(w_top + 1) * hist.image_bin, np.arange(h_top + 1) * hist.image_bin, shown,
                         cmap="viridis", norm=LogNorm() if len(used) else None)
    fig.colorbar(mesh, ax=ax, label="samples")
    ax.set_xlabel(f"original width (px, {hist.image_bin} px cells)")
    ax.set_ylabel("original height (px)")
    ax.set_title("Image size")
    _save(fig, out / "image_size.png")
    plt.close(fig)
    names.append("image_size.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = list(funnel)
    ax.barh(steps[::-1], [funnel[s] for s in steps][::-1], color="#cc6677")
    for i, s in enumerate(steps[::-1]):
        ax.text(funnel[s], i, f" {funnel[s]:,}", va="center")
    ax.set_xlabel("samples")
    ax.set_title("Funnel")
    fig.tight_layout()
    _save(fig, out / "funnel.png")
    plt.close(fig)
    names.append("funnel.png")
    return names
