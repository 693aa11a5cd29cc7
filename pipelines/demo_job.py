"""`wukong demo`: the whole pipeline on the bundled demo web, and a report checked against its truth.

crawl (discover -> text rules -> download) -> filter -> dedup -> shards -> pretrain -> eval, each
stage the same job function its own subcommand runs, all on one Ray. Every stage is resumable, so a
rerun after an interruption continues. The report traces each ground-truth image of the demo web
through the stages (where it was dropped, and why) and compares that with what the demo web says
should happen to it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from pipelines.config import WukongConfig
from pipelines.ray_runtime import init_ray
from shards.atomic import write_bytes_atomic, write_json_atomic
from shards.format import STATUS_SUCCESS
from shards.parts import IncompleteOutput, open_parts

log = logging.getLogger(__name__)

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


@dataclasses.dataclass
class StageDirs:
    root: Path

    @property
    def crawl(self) -> Path: return self.root / "crawl"
    @property
    def web(self) -> Path: return self.crawl / "demo_web"
    @property
    def candidates(self) -> Path: return self.crawl / "candidates"
    @property
    def candidates_filtered(self) -> Path: return self.crawl / "candidates_filtered"
    @property
    def raw(self) -> Path: return self.crawl / "raw"
    @property
    def filter(self) -> Path: return self.root / "filter"
    @property
    def dedup(self) -> Path: return self.root / "dedup"
    @property
    def shards(self) -> Path: return self.root / "shards"
    @property
    def model(self) -> Path: return self.root / "model"
    @property
    def evalsets(self) -> Path: return self.root / "evalsets"


def _read_parquets(paths, columns=None) -> pd.DataFrame:
    frames = []
    for p in paths:
        p = Path(p)
        if p.is_file():
            schema_names = pq.read_schema(p).names
            cols = [c for c in columns if c in schema_names] if columns else None
            frames.append(pq.read_table(p, columns=cols).to_pandas())
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns or [])


def read_stage_output(base: Path, name: str, columns) -> pd.DataFrame:
    """The rows of a stage's output `base/name/` (parts + manifest, `shards.parts`) or of the single
    `base/name.parquet` an earlier version wrote; empty when the stage wrote neither. A parts
    directory without its manifest (the stage did not finish) raises, saying so."""
    try:
        parts = open_parts(base, name)
    except IncompleteOutput:
        raise
    except FileNotFoundError:
        return pd.DataFrame(columns=columns)
    return _read_parquets(parts.paths(), columns)


def trace_ground_truth(d: StageDirs, text_rules=None) -> pd.DataFrame:
    """One row per ground-truth image: the stage where it left the pipeline (or `kept`) and why.

    A kept pair counts as rewritten when its final caption differs from the page's caption after
    plain normalisation (entities, tags, NFKC, spaces): masking and t2s conversion, not markup."""
    from filters.config import TextRulesConfig
    from filters.rules.normalize import Normalize
    normalise = Normalize(text_rules or TextRulesConfig()).clean
    gt = pq.read_table(d.web / "ground_truth.parquet").to_pandas()
    candidates = _read_parquets(sorted(d.candidates.glob("*.parquet")), ["url"])
    discovered = set(candidates["url"])
    cand_rejected = read_stage_output(d.candidates_filtered, "rejected", ["url", "reason"])
    cand_reason = dict(zip(cand_rejected["url"], cand_rejected["reason"]))
    raw = _read_parquets(sorted(d.raw.glob("*.parquet")), ["key", "url", "status", "error"])
    raw_by_url = {u: (k, s, e) for k, u, s, e in zip(raw["key"], raw["url"], raw["status"], raw["error"])}
    filt_rejected = read_stage_output(d.filter, "rejected", ["key", "reason"])
    filt_reason = dict(zip(filt_rejected["key"], filt_rejected["reason"]))
    # The final caption, to tell a rewritten caption (masking, t2s) from the one on the page.
    kept = read_stage_output(d.filter, "kept", ["key", "caption"])
    final_caption = dict(zip(kept["key"], kept["caption"]))
    decisions = read_stage_output(d.dedup, "decisions", ["key", "keep", "reason"])
    dedup_drop = {k: r for k, keep, r in zip(decisions["key"], decisions["keep"], decisions["reason"]) if not keep}
    final = _read_parquets(sorted(d.shards.glob("*/*.parquet")), ["key"])
    final_keys = set(final["key"])

    rows = []
    for rec in gt.to_dict("records"):
        url = rec["url"]
        stage, action, reason = "discover", "drop", "not_discovered"
        if url in discovered:
            if url in cand_reason:
                stage, reason = "filter", cand_reason[url]
            elif url not in raw_by_url:
                stage, reason = "download", "not_attempted"
            else:
                key, status, error = raw_by_url[url]
                if status != STATUS_SUCCESS:
                    stage, reason = "download", error
                elif key in filt_reason:
                    stage, reason = "filter", filt_reason[key]
                elif key in dedup_drop:
                    stage, reason = "dedup", dedup_drop[key]
                elif key in final_keys:
                    stage, action = None, ("rewrite" if final_caption.get(key) != normalise(rec["caption"])[0]
                                          else "keep")
                    reason = None
                else:
                    stage, reason = "shards", "missing_from_final_shards"
        expected_action = rec.get("expected_action") or "keep"
        if expected_action == "drop":
            as_expected = action == "drop" and stage == rec.get("expected_stage")
        else:
            as_expected = action != "drop" and (expected_action != "rewrite" or action == "rewrite")
        rows.append({"pair_id": rec["pair_id"], "category": rec["category"], "url": url,
                     "dup_of": rec.get("dup_of"), "expected_stage": rec.get("expected_stage"),
                     "expected_action": expected_action, "expected_reason": rec.get("expected_reason"),
                     "stage": stage, "action": action, "reason": reason, "as_expected": bool(as_expected)})
    trace = pd.DataFrame(rows)
    _judge_duplicate_groups(trace)
    return trace


def _judge_duplicate_groups(trace: pd.DataFrame) -> None:
    """Which copy of a duplicate group survives is the dedup policy's choice, not the generator's:
    a group is as expected when exactly one member reaches the shards and the rest left at dedup."""
    dups = trace[trace["dup_of"].notna()]
    for original, grp in dups.groupby("dup_of"):
        members = trace.index[(trace["pair_id"] == original) | (trace["dup_of"] == original)]
        # Only groups whose members were all downloadable and clean are dedup's business.
        states = trace.loc[members, ["stage", "action"]]
        survivors = int((states["action"] != "drop").sum())
        dropped_at_dedup = int(((states["action"] == "drop") & (states["stage"] == "dedup")).sum())
        if survivors + dropped_at_dedup == len(members):
            trace.loc[members, "as_expected"] = survivors == 1


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def summarise_trace(trace: pd.DataFrame) -> list[dict]:
    out = []
    for category, grp in trace.groupby("category", sort=True):
        first = grp.iloc[0]
        outcomes = Counter(
            f"{a}" if _missing(s) else f"{a} at {s} ({r})" for s, a, r in zip(grp["stage"], grp["action"], grp["reason"]))
        expected = first["expected_action"] if _missing(first["expected_stage"]) \
            else f"{first['expected_action']} at {first['expected_stage']} ({first['expected_reason']})"
        out.append({"category": category, "pairs": int(len(grp)), "expected": expected,
                    "as_expected": int(grp["as_expected"].sum()),
                    "outcomes": dict(outcomes.most_common())})
    return out


def _stage_funnel(stats: dict) -> dict:
    """What each stage took in, kept and dropped (by reason), from the stats its job returned."""
    crawl = stats.get("crawl", {})
    disc = crawl.get("discover", {})
    counts = disc.get("counts", {})
    dl = crawl.get("download", {})
    by_status = dl.get("by_status", {})

    def filt(f: dict) -> dict:
        return {"in": f.get("rows_in"), "kept": f.get("kept"), "dropped": f.get("by_reason", {}),
                "rewritten": f.get("transforms", {})}

    dd = stats.get("dedup", {})
    return {
        # Discovery turns pages into candidate pairs: "in" counts pages, "kept" candidates.
        "discover (pages -> pairs)": {"in": counts.get("article_pages", 0) + counts.get("search_pages", 0),
                     "kept": disc.get("candidates"),
                     "dropped": {k: v for k, v in counts.items()
                                 if k.startswith(("pages_", "images_skipped")) and v}},
        "filter (candidates)": filt(crawl.get("filter", {})),
        "download": {"in": dl.get("rows"), "kept": by_status.get("success"), "dropped": dl.get("by_error", {}),
                     "samples_per_s": dl.get("samples_per_s")},
        "filter": filt(stats.get("filter", {})),
        "dedup": {"in": dd.get("examined"), "kept": dd.get("kept"),
                  "dropped": {k: v for k, v in dd.get("by_reason", {}).items() if k not in ("unique", "survivor") and v}},
        "shards": {"kept": {k: v.get("samples") for k, v in stats.get("shards", {}).get("splits", {}).items()}},
    }


def render_markdown(report: dict) -> str:
    lines = ["# Wukong demo report", ""]
    lines += ["## Stages", "", "| stage | in | kept | dropped (by reason) | rewritten |", "|---|---|---|---|---|"]

    def fmt(v):
        if isinstance(v, dict):
            return ", ".join(f"{k} {n}" for k, n in sorted(v.items())) or "-"
        return "-" if v is None else str(v)
    for stage, f in report["funnel"].items():
        lines.append(f"| {stage} | {fmt(f.get('in'))} | {fmt(f.get('kept'))} | {fmt(f.get('dropped'))} | "
                     f"{fmt(f.get('rewritten'))} |")
    lines += ["", "## Ground truth of the demo web, traced through the stages", "",
              "| category | pairs | expected | as expected | outcomes |", "|---|---|---|---|---|"]
    for row in report["ground_truth"]:
        outcomes = "; ".join(f"{k}: {v}" for k, v in row["outcomes"].items())
        lines.append(f"| {row['category']} | {row['pairs']} | {row['expected']} | {row['as_expected']} | {outcomes} |")
    total = sum(r["pairs"] for r in report["ground_truth"])
    ok = sum(r["as_expected"] for r in report["ground_truth"])
    lines += ["", f"Ground truth agreement: {ok}/{total} ({ok / max(total, 1):.1%}).", ""]
    lines += ["## Model", ""]
    for name, result in report["eval"].items():
        lines.append(f"- {name}: {json.dumps(result, ensure_ascii=False, sort_keys=True)}")
    lines.append("")
    lines.append(f"Total time: {report['seconds']:.0f} s; outputs under {report['output']}.")
    return "\n".join(lines) + "\n"


def _eval_summary(result: dict) -> dict:
    keep = ("accuracy", "top1", "top5", "chance", "classes", "images", "mean_recall",
            "image_to_text", "text_to_image", "pairs")
    return {k: result[k] for k in keep if k in result}


def run_demo(output: str | Path, cfg: WukongConfig) -> dict:
    from crawler.demoweb.evalset import generate_evalset
    from pipelines.crawl_job import run_crawl
    from pipelines.dedup_job import run_dedup
    from pipelines.filter_job import run_filter
    from pipelines.shards_job import run_shards
    from pipelines.train_job import run_eval_retrieval, run_eval_zeroshot, run_pretrain

    d = StageDirs(Path(output).resolve())
    d.root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    init_ray(cfg.ray)
    stats: dict = {}
    timings: dict = {}

    def stage(name, fn, *args, **kwargs):
        log.info("demo: %s", name)
        t = time.time()
        stats[name] = fn(*args, **kwargs)
        timings[name] = round(time.time() - t, 1)
        return stats[name]

    stage("crawl", run_crawl, d.crawl, cfg)
    stage("filter", run_filter, [str(d.raw)], d.filter, cfg)
    stage("dedup", run_dedup, [str(d.raw)], d.dedup, cfg, kept=d.filter)
    stage("shards", run_shards, [str(d.raw)], d.shards, cfg, filter_dir=d.filter, dedup_dir=d.dedup)

    demo = cfg.demo
    train_cfg = dataclasses.replace(cfg.train, time_budget_s=demo.train_time_budget_s) \
        if not (cfg.train.steps or cfg.train.epochs or cfg.train.time_budget_s) else cfg.train
    stage("pretrain", run_pretrain, str(d.shards / "train"), d.model, dataclasses.replace(cfg, train=train_cfg),
          val_shards=str(d.shards / "val"), resume="latest" if (d.model / "checkpoints" / "latest.pt").exists() else None)
    ckpt = d.model / "checkpoints" / "latest.pt"
    evals: dict = {}
    for task in demo.eval_tasks:
        folder = generate_evalset(d.evalsets, task, per_class=demo.eval_per_class, seed=cfg.demo_web.seed)
        result = run_eval_zeroshot(ckpt, folder, folder / "classnames.tsv", cfg)
        evals[f"zeroshot_{task}"] = _eval_summary(result)
    evals["retrieval_val"] = _eval_summary(run_eval_retrieval(ckpt, str(d.shards / "val"), cfg))
    stats["eval"] = evals

    trace = trace_ground_truth(d, cfg.filter.text)
    trace.to_csv(d.root / "ground_truth_trace.csv", index=False)
    report = {"output": str(d.root), "seconds": round(time.time() - t0, 1), "stage_seconds": timings,
              "funnel": _stage_funnel(stats), "ground_truth": summarise_trace(trace), "eval": evals}
    write_json_atomic(d.root / REPORT_JSON, report)
    write_bytes_atomic(d.root / REPORT_MD, render_markdown(report).encode("utf-8"))
    return report
