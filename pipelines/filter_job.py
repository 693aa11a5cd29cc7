"""The filter stage on Ray: Wukong's text and image rules over tables or raw shard directories.

Three kinds of Ray task, the driver holding only one small entry per partition:
- `filter` (one per partition): the rule chain; writes the annotated rows, the partition's
  caption-key counts and its stats (last: the partition is done) under OUT/_work/, named by a
  fingerprint of the partition's input and the configuration.
- `filter-frequency` (reduce, keys bucketed by their low bits): the globally too-frequent keys, the
  only row-derived data the driver holds.
- `filter-write` (one per partition): applies the too-frequent set, conforms the rows to the run's
  schema and writes the partition's part of OUT/kept/ and OUT/rejected/ (`shards.parts`, part
  number = partition number, so part key ranges follow the input files), then a marker.

The driver publishes the two manifests, then stats.json, then removes OUT/_work/. A rerun of a
finished run (same partitions and configuration, every part in place) returns its stats. Any other
rerun first unpublishes them, then redoes only what a killed run left missing (no stats file:
`filter`; no valid marker or a part file gone: `filter-write`); every step is deterministic, so
the output is the one an uninterrupted run writes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from filters import reasons
from filters.config import FilterConfig
from filters.frequency_counts import frequent_keys, key_counts
from filters.partition import (DETAIL_COL, INTERNAL_COLS, KEY_COL, REASON_COL, REJECT_ONLY_COLS, annotate,
                               text_rules_for)
from filters.rules import problems as text_rule_problems
from filters.tables import InputError, Partition, file_fingerprint, plan, read_partition
from pipelines import metrics
from pipelines.config import WukongConfig
from pipelines.ray_runtime import cluster_cpus, init_ray
from shards import parts as shard_parts
from shards.atomic import remove_stale_temporaries, write_json_atomic, write_parquet_atomic

log = logging.getLogger(__name__)

KEPT = "kept"                 # output names (directories of parts, `shards.parts`)
REJECTED = "rejected"
STATS_FILE = "stats.json"
WORK_DIR = "_work"
STAGE = "filter"
# The raw shards' sample key: parts record their range of it, so consumers read only the parts
# that meet a shard. Tables without it (caption lists) get parts without a key range.
SAMPLE_KEY_COL = shard_parts.KEY_COL
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


def _config_digest(cfg: FilterConfig, rules: str) -> str:
    return json.dumps([rules, dataclasses.asdict(cfg)], sort_keys=True)


def _fingerprint(part: Partition, cfg: FilterConfig, rules: str, config_digest: str | None = None) -> str:
    digest = config_digest if config_digest is not None else _config_digest(cfg, rules)
    h = hashlib.sha256(json.dumps([file_fingerprint(part.path), part.start, part.stop, part.raw,
                                   digest], sort_keys=True).encode())
    return h.hexdigest()[:16]


def _work_files(work: Path, fp: str) -> dict[str, Path]:
    return {"rows": work / f"{fp}.parquet", "counts": work / f"{fp}.counts.parquet",
            "stats": work / f"{fp}.stats.json", "written": work / f"{fp}.written.json"}


def _split_counts(counts: dict) -> tuple[dict, dict]:
    """(verdicts: kept and drop reasons, transformations) of a chain's counts."""
    verdicts = {k: v for k, v in counts.items() if k == KEPT or k in reasons.ALL}
    return verdicts, {k: v for k, v in counts.items() if k not in verdicts}


# -- pass 1: the rule chain ------------------------------------------------------------------------

def filter_partition(part: Partition, cfg: FilterConfig, rules: str, work: str, fp: str,
                     jieba_dir: str) -> tuple[dict, pa.Schema | None]:
    """Pass 1 of one partition: annotated rows + key counts + stats (last), all under `work`.

    Returns the stats and the annotated rows' schema (None when the input could not be read)."""
    files = _work_files(Path(work), fp)
    if files["stats"].is_file():
        stats = json.loads(files["stats"].read_text())
        if stats.get("input_error"):
            return stats, None
        if files["rows"].is_file() and files["counts"].is_file():
            return stats, pq.read_schema(files["rows"])
    t0 = time.perf_counter()
    try:
        table, malformed = read_partition(part, cfg.caption_col)
    except Exception as exc:  # an unreadable file is counted and reported, the stage goes on
        stats = {"partition": part.name, "path": part.path, "rows": 0,
                 "counts": {}, "input_error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
        write_json_atomic(files["stats"], stats)
        return stats, None
    annotated, counts = annotate(table, _chain_for(cfg, rules, jieba_dir), cfg, rules, malformed)
    write_parquet_atomic(files["rows"], annotated)
    counts_table = key_counts(annotated[KEY_COL])
    write_parquet_atomic(files["counts"], counts_table)
    stats = {"partition": part.name, "path": part.path, "rows": table.num_rows + len(malformed),
             "counts": dict(counts), "distinct_keys": counts_table.num_rows,
             "seconds": round(time.perf_counter() - t0, 3)}
    write_json_atomic(files["stats"], stats)
    metrics.count_many(STAGE, "transforms", _split_counts(counts)[1], "transform",
                       "filter: captions changed, by transformation")
    return stats, annotated.schema


# -- the global frequency (filters.frequency_counts: map in pass 1, reduce in filter-frequency tasks) -

def _reduce_buckets(fcfg: FilterConfig, distinct_keys: int) -> int:
    """A power of two: at least the configured reducers (or one per CPU), and enough that no
    reducer holds more than `keys_per_reducer` pairs."""
    wanted = max(fcfg.frequency_reducers or cluster_cpus(), math.ceil(distinct_keys / max(1, fcfg.keys_per_reducer)))
    return 1 << max(0, wanted - 1).bit_length()


# -- pass 2: the partition's output parts ----------------------------------------------------------

def _unified_schema(schemas: list[pa.Schema]) -> pa.Schema:
    distinct: list[pa.Schema] = []
    for s in schemas:
        if not any(s.equals(d) for d in distinct):
            distinct.append(s)
    try:
        return pa.unify_schemas(distinct, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # The same column with incompatible types in two inputs: written as text.
        fields: dict[str, pa.DataType] = {}
        for s in distinct:
            for f in s:
                prev = fields.get(f.name)
                fields[f.name] = f.type if prev is None or prev == f.type or pa.types.is_null(prev) else (
                    prev if pa.types.is_null(f.type) else pa.string())
        return pa.schema(list(fields.items()))


def output_schemas(annotated: pa.Schema) -> tuple[pa.Schema, pa.Schema]:
    """(kept, rejected) schemas of the outputs: the annotated one less the internal columns, and
    for kept rows also less the verdict columns."""
    rejected = annotated
    for c in INTERNAL_COLS:
        if c in rejected.names:
            rejected = rejected.remove(rejected.get_field_index(c))
    kept = rejected
    for c in REJECT_ONLY_COLS:
        if c in kept.names:
            kept = kept.remove(kept.get_field_index(c))
    return kept, rejected


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    if table.schema.equals(schema):
        return table
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


def _mark_too_frequent(t: pa.Table, frequent: pa.Array, max_occurrences: int) -> tuple[pa.Table, int]:
    """Kept rows whose caption key is too frequent become rejected rows; returns (table, moved)."""
    if not len(frequent) or not t.num_rows:
        return t, 0
    hit = pc.and_(pc.is_null(t[REASON_COL]), pc.fill_null(pc.is_in(t[KEY_COL], value_set=frequent), False))
    n = pc.sum(hit).as_py() or 0
    if n:
        t = t.set_column(t.column_names.index(REASON_COL), REASON_COL,
                         pc.if_else(hit, reasons.TOO_FREQUENT, t[REASON_COL]))
        t = t.set_column(t.column_names.index(DETAIL_COL), DETAIL_COL,
                         pc.if_else(hit, f"> {max_occurrences}", t[DETAIL_COL]))
    return t, n


def _part_still_there(directory: Path, entry: dict | None) -> bool:
    if entry is None:
        return True
    try:
        st = (directory / entry["file"]).stat()
    except OSError:
        return False
    return st.st_size == entry["size"] and st.st_mtime_ns == entry["mtime_ns"]


def _written_entry(directory: Path, part: shard_parts.Part) -> dict:
    st = (directory / part.file).stat()
    return {**asdict(part), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def write_partition(index: int, fp: str, work: str, output: str, frequent: pa.Array,
                    annotated_schema: pa.Schema, run: str, max_occurrences: int, counts: dict) -> dict:
    """Pass 2 of one partition: its part of OUT/kept/ and OUT/rejected/ (none when it has no row
    there), then the marker a rerun trusts while its run id and part files are unchanged."""
    files = _work_files(Path(work), fp)
    out = Path(output)
    kept_dir, rejected_dir = out / KEPT, out / REJECTED
    if files["written"].is_file():
        done = json.loads(files["written"].read_text())
        if (done.get("run") == run and done.get("index") == index
                and _part_still_there(kept_dir, done.get(KEPT))
                and _part_still_there(rejected_dir, done.get(REJECTED))):
            return done
    t = pq.read_table(files["rows"])
    t, moved = _mark_too_frequent(t, frequent, max_occurrences)
    t = _conform(t, annotated_schema)
    kept_schema, rejected_schema = output_schemas(annotated_schema)
    kept_mask = pc.is_null(t[REASON_COL])
    kept = _conform(t.filter(kept_mask).select(kept_schema.names), kept_schema)
    rejected = _conform(t.filter(pc.invert(kept_mask)).select(rejected_schema.names), rejected_schema)
    done = {"run": run, "index": index, "moved": moved, KEPT: None, REJECTED: None}
    for name, directory, table in ((KEPT, kept_dir, kept), (REJECTED, rejected_dir, rejected)):
        if table.num_rows:
            done[name] = _written_entry(directory, shard_parts.write_part(directory, index, table, SAMPLE_KEY_COL))
    write_json_atomic(files["written"], done)
    verdicts = _split_counts(counts)[0]
    verdicts = Counter(verdicts)
    verdicts[KEPT] -= moved
    verdicts[reasons.TOO_FREQUENT] += moved
    metrics.count_many(STAGE, "rows", {k: v for k, v in verdicts.items() if v > 0}, "reason",
                       "filter: rows by verdict (kept or the drop reason)")
    return done


# -- the driver ----------------------------------------------------------------------------------------

def _unpublish(output: Path) -> None:
    """A rerun may rewrite parts: nothing may look complete meanwhile (and legacy single files of
    an earlier version are replaced by the parts)."""
    for name in (KEPT, REJECTED):
        shard_parts.unpublish(output / name)
        (output / f"{name}.parquet").unlink(missing_ok=True)
        if (output / name).is_dir():
            remove_stale_temporaries(output / name)
    (output / STATS_FILE).unlink(missing_ok=True)


def _publish(output: Path, name: str, entries: list[dict], schema: pa.Schema, meta: dict) -> None:
    directory = output / name
    directory.mkdir(parents=True, exist_ok=True)
    found = [shard_parts.Part(e["file"], e["rows"], e["key_min"], e["key_max"]) for e in entries if e]
    if not found:  # no row at all: one empty part, so readers still see the columns
        found = [shard_parts.write_part(directory, 0, schema.empty_table())]
    shard_parts.write_manifest(directory, found, {"stage": STAGE, **meta})


def run_filter(inputs, output, cfg: WukongConfig, rules: str = "all") -> dict:
    """Filter `inputs` (tables with a caption column, or raw shard directories) into `output`.

    Writes kept/ and rejected/ (parts + manifest, `shards.parts`) and stats.json (the funnel);
    returns the stats.
    """
    import ray

    fcfg = cfg.filter
    text_rules = text_rules_for(fcfg, rules)  # validates `rules`
    problems = text_rule_problems(fcfg.text)
    if problems:
        raise InputError(problems[0])
    inputs = [str(i) for i in ([inputs] if isinstance(inputs, (str, Path)) else inputs)]
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    parts = plan(inputs, fcfg.caption_col, max(1, fcfg.rows_per_partition))
    digest = _config_digest(fcfg, rules)
    fps = [_fingerprint(p, fcfg, rules, digest) for p in parts]
    # What every marker of this run carries: the partitions and configuration (which decide the
    # too-frequent set and the schema); also recorded in stats.json once the output is complete.
    run = hashlib.sha256(json.dumps([fps, digest]).encode()).hexdigest()[:16]
    finished = _finished_output(output, run)
    if finished is not None:
        log.info("filter: %s already holds this run's complete output", output)
        return finished
    _unpublish(output)
    remove_stale_temporaries(output)
    work = output / WORK_DIR
    work.mkdir(exist_ok=True)
    remove_stale_temporaries(work)
    jieba_dir = fcfg.jieba_cache_dir or str(Path.cwd() / ".cache" / "jieba")
    t0 = time.perf_counter()

    init_ray(cfg.ray)
    task = ray.remote(filter_partition).options(name=STAGE)
    results = ray.get([task.remote(p, fcfg, rules, str(work), fp, jieba_dir) for p, fp in zip(parts, fps)])
    part_stats = [s for s, _ in results]
    readable = [i for i, (_, schema) in enumerate(results) if schema is not None]

    frequent = pa.array([], pa.uint64())
    if "frequency" in text_rules and readable:
        count_files = [str(_work_files(work, fps[i])["counts"]) for i in readable]
        buckets = _reduce_buckets(fcfg, sum(part_stats[i].get("distinct_keys", 0) for i in readable))
        reduce = ray.remote(frequent_keys).options(name=f"{STAGE}-frequency")
        chunks = ray.get([reduce.remote(count_files, b, buckets, fcfg.text.max_occurrences, fcfg.keys_per_reducer)
                          for b in range(buckets)])
        frequent = pa.concat_arrays([c.cast(pa.uint64()) for c in chunks])

    annotated_schema = _unified_schema([results[i][1] for i in readable]) if readable else \
        pa.schema([(fcfg.caption_col, pa.string()), (REASON_COL, pa.string()), (DETAIL_COL, pa.string())])
    write = ray.remote(write_partition).options(name=f"{STAGE}-write")
    frequent_ref = ray.put(frequent)
    written = ray.get([write.remote(i, fps[i], str(work), str(output), frequent_ref, annotated_schema, run,
                                    fcfg.text.max_occurrences, part_stats[i].get("counts", {}))
                       for i in readable])

    kept_schema, rejected_schema = output_schemas(annotated_schema)
    meta = {"inputs": inputs, "rules": rules, "partitions": len(parts)}
    _publish(output, KEPT, [w[KEPT] for w in written], kept_schema, meta)
    _publish(output, REJECTED, [w[REJECTED] for w in written], rejected_schema, meta)

    moved = Counter({reasons.TOO_FREQUENT: sum(w["moved"] for w in written)})
    counts: Counter = Counter()
    for s in part_stats:
        counts.update(s.get("counts", {}))
    counts.update(moved)
    counts[KEPT] -= sum(moved.values())
    stats = _funnel(counts, part_stats, len(frequent), inputs, rules, time.perf_counter() - t0)
    stats["run"] = run
    write_json_atomic(output / STATS_FILE, stats)
    _remove_work(work)
    log.info("filter: %d rows in, %d kept, %d rejected", stats["rows_in"], stats["kept"], stats["rejected"])
    return stats


def _finished_output(output: Path, run: str) -> dict | None:
    """The stats of a complete output of this very run (same partitions and configuration, both
    manifests and every part they list in place), else None: a rerun then has nothing to do."""
    try:
        stats = json.loads((output / STATS_FILE).read_text(encoding="utf-8"))
        if stats.get("run") != run:
            return None
        for name in (KEPT, REJECTED):
            listed = shard_parts.read_manifest(output / name)
            if not all(Path(p).is_file() for p in listed.paths()):
                return None
    except (OSError, ValueError):
        return None
    return stats


def _remove_work(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)


def _funnel(counts: Counter, part_stats: list[dict], n_frequent: int,
            inputs: list[str], rules: str, seconds: float) -> dict:
    drop_order = [reasons.MALFORMED_ROW, reasons.NO_CAPTION, reasons.IMAGE_UNDECODABLE,
                  reasons.IMAGE_TOO_SMALL, reasons.IMAGE_BAD_ASPECT, reasons.IMAGE_TOO_MANY_PIXELS,
                  reasons.BOILERPLATE, reasons.NO_CHINESE, reasons.TOO_SHORT, reasons.TOO_LONG,
                  reasons.SENSITIVE, reasons.TOO_FREQUENT, reasons.ERROR]
    by_reason = {r: int(counts.get(r, 0)) for r in drop_order if counts.get(r, 0)}
    transforms = {k: int(v) for k, v in sorted(counts.items())
                  if k not in by_reason and k not in drop_order and k != KEPT and v}
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
