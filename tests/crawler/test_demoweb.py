"""The demo web: generation, ground truth, images that show their captions, the server, the evalset."""

from __future__ import annotations

import hashlib
import io
import json
import time
import urllib.error
import urllib.request

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from skimage.measure import label

from crawler.config import DemoWebConfig
from crawler.demoweb import content as C
from crawler.demoweb.evalset import generate_evalset
from crawler.demoweb.generate import (GROUND_TRUTH_FILE, ROUTES_FILE, SHARES, generate_demo_web, hamming)
from crawler.demoweb.server import DemoWebServer
from pipelines.cli import main

CFG = DemoWebConfig(pairs=160, seed=3)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "wukong_demo_web_160"
    generate_demo_web(root, CFG)
    return root


def fetch(url: str):
    try:
        with _OPENER.open(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def ground_truth(root):
    return pq.read_table(root / GROUND_TRUTH_FILE).to_pandas()


def served_bytes(root, path: str) -> bytes:
    routes = json.loads((root / ROUTES_FILE).read_text())
    return (root / "files" / routes[path]["file"]).read_bytes()


def shape_components(img: Image.Image, colour: str) -> int:
    """Blobs of the labelled colour, large enough to be a drawn shape."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    target = np.array(C.COLOURS[colour]["rgb"], dtype=np.float32)
    mask = np.sqrt(((arr - target) ** 2).sum(-1)) < 60
    lab = label(mask, connectivity=2)
    sizes = np.bincount(lab.ravel())[1:]
    return int((sizes > 0.004 * min(img.size) ** 2).sum())


def test_generation_is_deterministic_and_reused(tmp_path):
    small = DemoWebConfig(pairs=30, seed=3)
    one, two = tmp_path / "one", tmp_path / "two"
    generate_demo_web(one, small)
    generate_demo_web(two, small)
    cols = ["pair_id", "category", "image_path", "page_path", "caption", "phash", "markup", "query"]
    assert ground_truth(one)[cols].equals(ground_truth(two)[cols])
    assert (one / ROUTES_FILE).read_bytes() == (two / ROUTES_FILE).read_bytes()
    before = (two / GROUND_TRUTH_FILE).stat().st_mtime_ns
    generate_demo_web(two, small)
    assert (two / GROUND_TRUTH_FILE).stat().st_mtime_ns == before
    changed = generate_demo_web(two, DemoWebConfig(pairs=30, seed=4))
    assert changed["settings"]["config"]["seed"] == 4
    assert not ground_truth(two)[cols].equals(ground_truth(one)[cols])


def test_categories_follow_the_configured_shares(demo_site):
    gt = ground_truth(demo_site)
    counts = gt.category.value_counts().to_dict()
    for field, cat in SHARES.items():
        assert counts.get(cat, 0) == round(CFG.pairs * getattr(CFG, field)), cat
    pairs = gt[gt.kind != "chrome"]
    assert len(pairs) == CFG.pairs and pairs.pair_id.is_unique and gt.image_path.is_unique
    assert set(gt.expected_action) <= {"keep", "drop", "rewrite"}
    assert not gt[gt.category.isin(["robots_disallowed", "opted_out"])].discoverable.any()
    assert gt[gt.category == "robots_disallowed"].page_path.str.startswith("/private/").all()
    # Every kept-as-is pair is discoverable and Chinese-captioned with class labels.
    good = gt[gt.category == "good"]
    assert good.discoverable.all() and good.expected_stage.isna().all()
    assert (good.kind.isin(["shape", "photo"])).all()
    assert good["shape"].notna().sum() + good["object"].notna().sum() == len(good)
    assert good.caption.map(lambda s: any("\u4e00" <= ch <= "\u9fff" for ch in s)).all()
    assert good.caption.value_counts().max() <= 4
    assert gt.markup.nunique() >= 7


def test_images_show_what_the_labels_say(demo_site):
    gt = ground_truth(demo_site)
    good = gt[gt.category.isin(["good", "slow"])]
    checked = 0
    for row in good.itertuples():
        img = Image.open(io.BytesIO(served_bytes(demo_site, row.image_path)))
        assert img.width > 200 and img.height > 200 and max(img.size) / min(img.size) <= 3
        assert img.format == row.format and (img.width, img.height) == (row.width, row.height)
        if row.kind == "shape":
            assert shape_components(img, row.colour) == row.count, (row.pair_id, row.caption)
            checked += 1
        else:
            # A part of the photo with content, not a flat corner of it.
            source = C._photo_array(C.PHOTOS[row.object]["source"])
            assert np.asarray(img).std() > 0.5 * source.std(), (row.pair_id, row.caption)
    assert checked >= 20
    small = gt[gt.category == "too_small"]
    thin = gt[gt.category == "too_thin"]
    assert (np.minimum(small.width, small.height) <= 200).all()
    assert ((np.maximum(thin.width, thin.height) / np.minimum(thin.width, thin.height)) > 3).all()
    assert (np.minimum(thin.width, thin.height) > 200).all()


def test_duplicates_and_distinct_images(demo_site):
    gt = ground_truth(demo_site).set_index("pair_id")
    sha = {pid: hashlib.sha256(served_bytes(demo_site, r.image_path)).hexdigest()
           for pid, r in gt.iterrows() if r.category in ("good", "exact_dup_of", "near_dup_of")}
    exact = gt[gt.category == "exact_dup_of"]
    near = gt[gt.category == "near_dup_of"]
    assert len(exact) and len(near)
    for pid, r in exact.iterrows():
        assert sha[pid] == sha[int(r.dup_of)] and r.image_path != gt.loc[int(r.dup_of)].image_path
        assert gt.loc[int(r.dup_of)].category == "good"
    for pid, r in near.iterrows():
        assert sha[pid] != sha[int(r.dup_of)]
        assert hamming(int(r.phash, 16), int(gt.loc[int(r.dup_of)].phash, 16)) <= CFG.near_dup_max_distance
    good = [int(h, 16) for h in gt[gt.category == "good"].phash]
    closest = min(hamming(a, b) for i, a in enumerate(good) for b in good[i + 1:])
    assert closest > 4  # dedup's radius: no good image is a near duplicate of another


def test_server_answers_like_the_web(demo_site):
    gt = ground_truth(demo_site)
    routes = json.loads((demo_site / ROUTES_FILE).read_text())
    with DemoWebServer(demo_site) as server:
        o = server.origin
        assert o.startswith("http://127.0.0.1:")
        status, _, body = fetch(o + "/robots.txt")
        assert status == 200 and b"Disallow: /private/" in body
        served = ground_truth(demo_site)
        assert (served.url == o + served.image_path).all() and (served.page_url == o + served.page_path).all()
        first = lambda cat: gt[gt.category == cat].iloc[0].image_path  # noqa: E731
        assert fetch(o + first("broken_link"))[0] == 404
        assert fetch(o + first("http_500"))[0] == 500
        status, headers, body = fetch(o + first("opted_out_image"))
        assert status == 200 and headers["X-Robots-Tag"] in ("noai", "noimageai")
        status, headers, body = fetch(o + first("not_image"))
        assert status == 200 and b"<html>" in body.lower()
        with pytest.raises(Exception):
            Image.open(io.BytesIO(fetch(o + first("corrupt"))[2])).load()
        t = time.monotonic()
        assert fetch(o + first("slow"))[0] == 200 and time.monotonic() - t >= CFG.slow_seconds * 0.9
        flaky = [p for p, r in routes.items() if r["fail_first"]]
        assert flaky and fetch(o + flaky[0])[0] == 500 and fetch(o + flaky[0])[0] == 200
        q = gt[gt.in_search]["query"].value_counts().index[0]
        listed = gt[gt.in_search & (gt["query"] == q)]
        seen = []
        for page in range(1, 50):
            _, _, body = fetch(f"{o}/api/search?q={urllib.parse.quote(q)}&page={page}")
            results = json.loads(body)["data"]["results"]
            if not results:
                break
            assert len(results) <= CFG.results_per_page
            seen += [r["image_url"] for r in results]
        assert set(listed.image_path) <= set(seen) and len(seen) == len(set(seen))
        status, _, body = fetch(f"{o}/search?q={urllib.parse.quote(q)}&page=1")
        assert status == 200 and body.decode().count('class="result"') == min(CFG.results_per_page, len(seen))
        assert fetch(o + "/no/such/page.html")[0] == 404


def test_evalset_one_folder_per_class(tmp_path):
    root = generate_evalset(tmp_path, "count", per_class=4, seed=0)
    names = [line.split("\t") for line in (root / "classnames.tsv").read_text(encoding="utf-8").splitlines()]
    assert [n[0] for n in names] == ["1", "2", "3", "4"] and names[1][1] == "两个"
    meta = json.loads((root / "classnames.json").read_text(encoding="utf-8"))
    assert meta["task"] == "count" and all("{}" in t for t in meta["templates"])
    for folder, _ in names:
        files = sorted((root / folder).glob("*.jpg"))
        assert len(files) == 4
    shapes = generate_evalset(tmp_path, "shape", per_class=2, seed=0)
    assert sorted(p.name for p in shapes.iterdir() if p.is_dir()) == sorted(C.SHAPES)
    obj = generate_evalset(tmp_path, "object", per_class=1, seed=0)
    assert len([p for p in obj.iterdir() if p.is_dir()]) == len(C.PHOTOS)
    with pytest.raises(ValueError):
        generate_evalset(tmp_path, "texture")


def test_evalset_images_show_their_class(tmp_path):
    root = generate_evalset(tmp_path, "colour", per_class=3, seed=1)
    for colour in C.COLOURS:
        for f in (root / colour).glob("*.jpg"):
            assert shape_components(Image.open(f), colour) >= 1


def test_cli_generate_only(tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["demo-web", "--output", str(out), "--generate-only", "--set", "demo_web.pairs=40",
                 "--evalset", str(tmp_path / "eval"), "--set", "demo_web.eval_images_per_class=1"]) == 0
    assert (out / GROUND_TRUTH_FILE).exists() and (tmp_path / "eval" / "object" / "classnames.tsv").exists()
    assert main(["demo-web", "--output", str(out), "--generate-only", "--set", "demo_web.share_good=1"]) == 2
    assert main(["demo-web", "--output", str(out), "--generate-only", "--set", "demo_web.share_corrupt=0.95"]) == 2
