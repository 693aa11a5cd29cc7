"""The filter job on real Ray: tables and raw shard dirs in, kept/rejected parts and the funnel out."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipelines.config import WukongConfig, load_config
from pipelines.filter_job import run_filter
from shards.format import RAW_INDEX_SCHEMA
from shards.parts import open_parts


def _rows(out, name: str) -> list[dict]:
    """Every row of output `name` (kept/rejected), in part order."""
    paths = open_parts(out, name).paths()
    return [r for p in paths for r in pq.read_table(p).to_pylist()]


def _cfg(tmp_path, *sets) -> WukongConfig:
    return load_config(None, [f"ray.temp_dir={tmp_path}/ray", *sets])


def _real_image_size(w: int, h: int, corrupt: bool = False) -> tuple[int | None, int | None]:
    """Encode a real JPEG of (w, h) and read its size back as ingest would."""
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (120, 80, 200)).save(buf, "JPEG")
    data = buf.getvalue()
    if corrupt:
        data = data[:20]
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im.size
    except Exception:
        return None, None


def _raw_shard(dirpath, sizes):
    rows = []
    for i, (w, h, status, caption, corrupt) in enumerate(sizes):
        ow, oh = _real_image_size(w, h, corrupt) if status == "success" else (None, None)
        rows.append({"key": f"000{i:09d}", "url": f"http://127.0.0.1/{i}.jpg", "caption": caption,
                     "status": status, "error": None if status == "success" else "http_404",
                     "error_message": None, "width": None, "height": None, "original_width": ow,
                     "original_height": oh, "phash": None, "sha256": None, "bytes": None,
                     "format": "JPEG", "source_file": "x.csv", "source_row": i})
    dirpath.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=RAW_INDEX_SCHEMA), dirpath / "00000.parquet")
    (dirpath / "stats.json").write_text("{}")


def test_image_rules_on_raw_shards_edge_sizes(ray_local, tmp_path):
    raw = tmp_path / "raw"
    _raw_shard(raw, [
        (200, 200, "success", "二百见方的图片", False),
        (201, 201, "success", "刚好够大的图片", False),
        (900, 300, "success", "三比一的横幅", False),
        (903, 300, "success", "超过三比一的横幅", False),
        (300, 903, "success", "超过三比一的竖幅", False),
        (400, 400, "success", "坏掉的图片文件", True),
        (400, 400, "failed", "下载失败的图片", False),
    ])
    stats = run_filter([str(raw)], tmp_path / "out", _cfg(tmp_path), rules="image")
    kept = _rows(tmp_path / "out", "kept")
    rejected = {r["caption"]: r["reason"] for r in _rows(tmp_path / "out", "rejected")}
    assert sorted(r["caption"] for r in kept) == ["三比一的横幅", "刚好够大的图片"]
    assert rejected == {"二百见方的图片": "image_too_small", "超过三比一的横幅": "image_bad_aspect",
                        "超过三比一的竖幅": "image_bad_aspect", "坏掉的图片文件": "image_undecodable"}
    assert stats["rows_in"] == 6  # the failed download is not a sample
    assert set(kept[0]) >= set(RAW_INDEX_SCHEMA.names) | {"caption_original"}


def test_tables_global_frequency_privacy_and_funnel(ray_local, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    # "夕阳下的海滩" 11 times over three files and several partitions: no partition sees more than 10.
    csv_rows = ["url,caption,shop"] + [f"http://127.0.0.1/a{i}.jpg,夕阳下的海滩,s{i}" for i in range(4)]
    csv_rows += ["http://127.0.0.1/b.jpg,記者王曉明攝影作品,s9", 'http://127.0.0.1/bad.jpg,"x",1,2,3',
                 "http://127.0.0.1/c.jpg,Beautiful sunset,s8", "http://127.0.0.1/d.jpg,查看源网页,s7"]
    (inp / "a.csv").write_text("\n".join(csv_rows) + "\n", encoding="utf-8")
    jl = [json.dumps({"url": f"http://127.0.0.1/j{i}.jpg", "caption": "夕阳下的海滩"}, ensure_ascii=False)
          for i in range(4)]
    jl += ["{not json", json.dumps({"url": "http://127.0.0.1/k.jpg", "caption": "联系电话13800138000 二手自行车"},
                                   ensure_ascii=False)]
    (inp / "b.jsonl").write_text("\n".join(jl) + "\n", encoding="utf-8")
    pq.write_table(pa.table({"url": [f"http://127.0.0.1/p{i}.jpg" for i in range(5)],
                             "caption": ["夕阳下的海滩"] * 3 + ["秋天的枫叶", None]}), inp / "c.parquet")
    cfg = _cfg(tmp_path, "filter.rows_per_partition=3")
    out = tmp_path / "out"
    stats = run_filter([str(inp)], out, cfg)

    kept = _rows(out, "kept")
    rejected = _rows(out, "rejected")
    assert stats["partitions"] >= 5
    by_caption = {}
    for r in rejected:
        by_caption.setdefault(r["caption_original"], []).append(r["reason"])
    assert by_caption["夕阳下的海滩"] == ["too_frequent"] * 11
    assert by_caption["Beautiful sunset"] == ["no_chinese"]
    assert by_caption["查看源网页"] == ["boilerplate"]
    assert sorted(r["reason"] for r in rejected if r["caption_original"] is None) == [
        "malformed_row", "malformed_row", "no_caption"]
    kept_caps = sorted(r["caption"] for r in kept)
    assert kept_caps == sorted(["联系电话<电话> 二手自行车", "秋天的枫叶", "记者<人名>摄影作品"])
    # Every input column is kept; no name or phone number in any written text.
    assert {"url", "caption", "caption_original", "shop"} <= set(kept[0])
    for name in ("kept", "rejected"):
        text = json.dumps(_rows(out, name), ensure_ascii=False)
        for secret in ("王曉明", "王晓明", "13800138000"):
            assert secret not in text
    assert stats["by_reason"]["too_frequent"] == 11
    assert stats["rows_in"] == stats["kept"] + stats["rejected"] == len(kept) + len(rejected)
    assert stats["transforms"]["masked_name"] == 1
    saved = json.loads((out / "stats.json").read_text())
    assert saved["funnel"][0] == {"step": "input", "rows": stats["rows_in"]}
    assert saved["funnel"][-1]["rows_left"] == stats["kept"]


def test_rerun_resumes_from_finished_partitions(ray_local, tmp_path):
    from filters.tables import plan
    from pipelines import filter_job

    src = tmp_path / "c.parquet"
    pq.write_table(pa.table({"caption": ["秋天的枫叶", "冬天的雪人", "春天的樱花", "夏天的西瓜"]}), src)
    cfg = _cfg(tmp_path, "filter.rows_per_partition=2")
    out = tmp_path / "out"
    work = out / filter_job.WORK_DIR
    work.mkdir(parents=True)
    # A run that died after its first partition: that part is on disk, the second is not.
    part = plan([str(src)], "caption", 2)[0]
    fp = filter_job._fingerprint(part, cfg.filter, "all")
    done, _schema = filter_job.filter_partition(part, cfg.filter, "all", str(work), fp, str(tmp_path / "jieba"))
    assert done["rows"] == 2
    # Mark the finished part so the test can tell it was reused, not recomputed.
    t = pq.read_table(work / f"{fp}.parquet")
    t = t.set_column(t.column_names.index("caption"), "caption", pa.array(["已完成", "已完成"]))
    pq.write_table(t, work / f"{fp}.parquet")
    stats = run_filter([str(src)], out, cfg)
    assert stats["kept"] == 4
    assert sorted(r["caption"] for r in _rows(out, "kept")) == sorted(
        ["已完成", "已完成", "春天的樱花", "夏天的西瓜"])
    assert not work.exists()


@pytest.mark.parametrize("args, message", [
    (["nope.csv"], "input not found"),
    (["{nocap}"], "no 'caption' column"),
    (["{good}", "--set", "filter.text.rules=[normalize, bogus]"], "unknown text rule"),
])
def test_cli_refuses_unusable_input(tmp_path, args, message):
    nocap, good = tmp_path / "nocap.csv", tmp_path / "good.csv"
    nocap.write_text("url,text\nhttp://127.0.0.1/a.jpg,hi\n")
    good.write_text("url,caption\nhttp://127.0.0.1/a.jpg,小猫\n")
    args = [a.format(nocap=nocap, good=good) for a in args]
    proc = subprocess.run([sys.executable, "-m", "pipelines", "filter", *args, "--output", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
