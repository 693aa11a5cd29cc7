"""The filter stage on Ray: Wukong's text and image rules over tables or raw shard directories.

Pass 1 (one Ray task per partition) runs the rule chain and writes an annotated part file plus the
partition's caption-key counts under OUT/_work/; the global caption frequency is then reduced over
all partitions by Ray tasks (keys bucketed by their low bits); last, the driver applies the
too-frequent set and streams the parts into OUT/kept.parquet and OUT/rejected.parquet. Parts are
written atomically and named by a fingerprint of their input and configuration, so a rerun after a
crash redoes only the missing ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from filters import reasons
from filters.config import FilterConfig
from filters.partition import KEY_COL, REASON_COL, annotate, text_rules_for
from filters.rules import problems as text_rule_problems
from filters.tables import InputError, Partition, file_fingerprint, plan, read_partition
from pipelines.config import WukongConfig
from pipelines.ray_runtime import cluster_cpus, init_ray
from shards.atomic import remove_stale_temporaries, write_json_atomic, write_parquet_atomic

log = logging.getLogger(__name__)

KEPT_FILE = "kept.parquet"
REJECTED_FILE = "rejected.parquet"
STATS_FILE = "stats.json"
WORK_DIR = "_work"

# One chain per worker process and configuration: jieba, OpenCC and fastText load once.
_CHAINS: dict[str, object] = {}


def _chain_for(cfg: FilterConfig, rules: str, jieba_dir: str):
    from filters.chain import TextChain
    text_cfg = dataclasses.replace(cfg.text, rules=text_rules_for(cfg, rules))
    key = json.dumps([dataclasses.asdict(text_cfg), jieba_dir], sort_keys=True)
    chain = _CHAINS.get(key)
    if chain is None:
        chain = _CHAINS[key] = TextChain(text_cfg, jieba_cache_dir=jieba_dir)
    return chain


def _fingerprint(part: Partition, cfg: FilterConfig, rules: str) -> str:
    h = hashlib.sha256(json.dumps([file_fingerprint(part.path), part.start, part.stop, part.raw,
                                   rules, dataclasses.asdict(cfg)], sort_keys=True).encode())
    return h.hexdigest()[:16]


def _report_metrics(counts: Counter) -> None:
    """Per-reason counters on the Ray dashboard (Metrics view)."""
    try:
        from ray.util.metrics import Counter as RayCounter
        rows = RayCounter("wukong_filter_rows", description="filter stage rows by verdict/reason",
                          tag_keys=("reason",))
        for reason, n in counts.items():
            if n > 0:
                rows.inc(n, tags={"reason": reason})
    except Exception as exc:  # metrics are a view, never a reason to fail a partition
        log.debug("filter: metrics not reported: %s", exc)


def filter_partition(part: Partition, cfg: FilterConfig, rules: str, work: str, fp: str,
                     jieba_dir: str) -> dict:
    """Pass 1 of one partition: annotated part + key counts + stats, all under `work`."""
    out = Path(work)
    stats_path = out / f"{fp}.stats.json"
    if stats_path.is_file():
        return json.loads(stats_path.read_text())
    t0 = time.perf_counter()
    try:
        table, malformed = read_partition(part, cfg.caption_col)
    except Exception as exc:  # an unreadable file is counted and reported, the stage goes on
        stats = {"partition": part.name, "path": part.path, "rows": 0,
                 "counts": {}, "input_error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
        write_json_atomic(stats_path, stats)
        return stats
    annotated, counts = annotate(table, _chain_for(cfg, rules, jieba_dir), cfg, rules, malformed)
    write_parquet_atomic(out / f"{fp}.parquet", annotated)
    keys = annotated[KEY_COL].drop_null()
    key_counts = pa.table({"key": keys}).group_by("key").aggregate([("key", "count")])
    write_parquet_atomic(out / f"{fp}.counts.parquet",
                         key_counts.rename_columns(["key", "count"]).cast(
                             pa.schema([("key", pa.uint64()), ("count", pa.int64())])))
    stats = {"partition": part.name, "path": part.path, "rows": table.num_rows + len(malformed),
             "counts": dict(counts), "seconds": round(time.perf_counter() - t0, 3)}
    write_json_atomic(stats_path, stats)
    _report_metrics(counts)
    return stats


def frequent_bucket(count_files: list[str], bucket: int, buckets: int, max_occurrences: int) -> pa.Array:
    """Reduce: global counts of the keys whose low bits equal `bucket`; the too-frequent ones."""
    tables = []
    for f in count_files:
        t = pq.read_table(f)
        mask = pc.equal(pc.bit_wise_and(t["key"], pa.scalar(buckets - 1, pa.uint64())),
                        pa.scalar(bucket, pa.uint64()))
        tables.append(t.filter(mask))
    if not tables:
        return pa.array([], pa.uint64())
    total = pa.concat_tables(tables).group_by("key").aggregate([("count", "sum")])
    return total.filter(pc.greater(total["count_sum"], max_occurrences))["key"].combine_chunks()


def _unified_schema(paths: list[Path]) -> pa.Schema:
    schemas = [pq.read_schema(p) for p in paths]
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # The same column with incompatible types in two inputs: written as text.
        fields: dict[str, pa.DataType] = {}
        for s in schemas:
            for f in s:
                prev = fields.get(f.name)
                fields[f.name] = f.type if prev is None or prev == f.type or pa.types.is_null(prev) else (
                    prev if pa.types.is_null(f.type) else pa.string())
        return pa.schema(list(fields.items()))


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = []
    for f in schema:
        if f.name in table.column_names:
            col = table[f.name]
            if col.type != f.type:
                try:
                    col = col.cast(f.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    col = pa.array([None if v is None else str(v) for v in col.to_pylist()], f.type)
            cols.append(col)
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def _write_outputs(part_files: list[Path], frequent: pa.Array, output: Path, max_occurrences: int) -> Counter:
    """Apply the too-frequent set and stream every part into kept.parquet / rejected.parquet."""
    moved: Counter = Counter()
    schema = _unified_schema(part_files) if part_files else pa.schema([("caption", pa.string())])
    out_schema = schema.remove(schema.get_field_index(KEY_COL)) if KEY_COL in schema.names else schema
    kept_schema = out_schema
    for c in (REASON_COL, "reason_detail"):
        if c in kept_schema.names:
            kept_schema = kept_schema.remove(kept_schema.get_field_index(c))
    tmp_kept, tmp_rej = output / f".{KEPT_FILE}.tmp", output / f".{REJECTED_FILE}.tmp"
    with pq.ParquetWriter(tmp_kept, kept_schema) as kw, pq.ParquetWriter(tmp_rej, out_schema) as rw:
        for f in part_files:
            t = pq.read_table(f)
            if len(frequent) and t.num_rows:
                hit = pc.and_(pc.is_null(t[REASON_COL]),
                              pc.fill_null(pc.is_in(t[KEY_COL], value_set=frequent), False))
                n = pc.sum(hit).as_py() or 0
                if n:
                    moved[reasons.TOO_FREQUENT] += n
                    idx = t.column_names.index(REASON_COL)
                    t = t.set_column(idx, REASON_COL, pc.if_else(hit, reasons.TOO_FREQUENT, t[REASON_COL]))
                    didx = t.column_names.index("reason_detail")
                    t = t.set_column(didx, "reason_detail",
                                     pc.if_else(hit, f"> {max_occurrences}", t["reason_detail"]))
            t = _conform(t, schema)
            kept_mask = pc.is_null(t[REASON_COL])
            kw.write_table(_conform(t.filter(kept_mask), kept_schema))
            rw.write_table(_conform(t.filter(pc.invert(kept_mask)), out_schema))
    for tmp, name in ((tmp_kept, KEPT_FILE), (tmp_rej, REJECTED_FILE)):
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, output / name)
    return moved


def run_filter(inputs, output, cfg: WukongConfig, rules: str = "all") -> dict:
    """Filter `inputs` (tables with a caption column, or raw shard directories) into `output`.

    Writes kept.parquet, rejected.parquet and stats.json (the funnel); returns the stats.
    """
    import ray

    fcfg = cfg.filter
    text_rules_for(fcfg, rules)  # validates `rules`
    problems = text_rule_problems(fcfg.text)
    if problems:
        raise InputError(problems[0])
    inputs = [str(i) for i in ([inputs] if isinstance(inputs, (str, Path)) else inputs)]
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(output)
    parts = plan(inputs, fcfg.caption_col, max(1, fcfg.rows_per_partition))
    work = output / WORK_DIR
    work.mkdir(exist_ok=True)
    remove_stale_temporaries(work)
    jieba_dir = fcfg.jieba_cache_dir or str(Path.cwd() / ".cache" / "jieba")
    t0 = time.perf_counter()

    init_ray(cfg.ray)
    task = ray.remote(filter_partition)
    fps = [_fingerprint(p, fcfg, rules) for p in parts]
    refs = [task.options(name=f"filter:{p.name}").remote(p, fcfg, rules, str(work), fp, jieba_dir)
            for p, fp in zip(parts, fps)]
    part_stats = ray.get(refs)

    count_files = [str(work / f"{fp}.counts.parquet") for fp in fps if (work / f"{fp}.counts.parquet").is_file()]
    frequent = pa.array([], pa.uint64())
    if "frequency" in text_rules_for(fcfg, rules) and count_files:
        buckets = 1 << max(0, (fcfg.frequency_reducers or cluster_cpus()) - 1).bit_length()
        reduce = ray.remote(frequent_bucket)
        chunks = ray.get([reduce.options(name=f"filter:frequency:{b}").remote(
            count_files, b, buckets, fcfg.text.max_occurrences) for b in range(buckets)])
        frequent = pa.concat_arrays([c.cast(pa.uint64()) for c in chunks]) if chunks else frequent

    part_files = [work / f"{fp}.parquet" for fp in fps if (work / f"{fp}.parquet").is_file()]
    moved = _write_outputs(part_files, frequent, output, fcfg.text.max_occurrences)

    counts: Counter = Counter()
    for s in part_stats:
        counts.update(s.get("counts", {}))
    counts.update(moved)
    counts[KEPT_KEY] -= sum(moved.values())
    stats = _funnel(counts, part_stats, moved, len(frequent), inputs, rules, time.perf_counter() - t0)
    write_json_atomic(output / STATS_FILE, stats)
    shutil.rmtree(work, ignore_errors=True)
    log.info("filter: %d rows in, %d kept, %d rejected", stats["rows_in"], stats["kept"], stats["rejected"])
    return stats


KEPT_KEY = "kept"


def _funnel(counts: Counter, part_stats: list[dict], moved: Counter, n_frequent: int,
            inputs: list[str], rules: str, seconds: float) -> dict:
    drop_order = [reasons.MALFORMED_ROW, reasons.NO_CAPTION, reasons.IMAGE_UNDECODABLE,
                  reasons.IMAGE_TOO_SMALL, reasons.IMAGE_BAD_ASPECT, reasons.IMAGE_TOO_MANY_PIXELS,
                  reasons.BOILERPLATE, reasons.NO_CHINESE, reasons.TOO_SHORT, reasons.TOO_LONG,
                  reasons.SENSITIVE, reasons.TOO_FREQUENT, reasons.ERROR]
    by_reason = {r: int(counts.get(r, 0)) for r in drop_order if counts.get(r, 0)}
    transforms = {k: int(v) for k, v in sorted(counts.items())
                  if k not in by_reason and k not in drop_order and k != KEPT_KEY and v}
    rows_in = sum(int(s.get("rows", 0)) for s in part_stats)
    funnel, left = [{"step": "input", "rows": rows_in}], rows_in
    for r in drop_order:
        if r in by_reason:
            left -= by_reason[r]
            funnel.append({"step": r, "dropped": by_reason[r], "rows_left": left})
    rejected = sum(by_reason.values())
    errors = {s["path"]: s["input_error"] for s in part_stats if s.get("input_error")}
    return {
        "inputs": inputs, "rules": rules, "partitions": len(part_stats),
        "rows_in": rows_in, "kept": rows_in - rejected, "rejected": rejected,
        "by_reason": by_reason, "transforms": transforms, "funnel": funnel,
        "too_frequent_captions": n_frequent, "input_errors": errors,
        "seconds": round(seconds, 3),
    }
