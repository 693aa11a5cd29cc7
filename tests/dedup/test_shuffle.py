"""The pieces of the distributed dedup on hand-made inputs: digests, cluster ids, shuffle files,
exact-group edges over hash and sample nodes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dedup.digest import bucket_bounds, cluster_ids, digest128, mix64
from dedup.exact import KIND_SHA, KIND_URL, exact_edges
from dedup.routing import labels, node_ids, sample_ids
from dedup.runfiles import gather, write_sorted


def test_digests_ids_and_buckets():
    hi, lo = digest128(["a", "", None, "a", "b"])
    assert (hi[1], lo[1]) == (0, 0) and (hi[2], lo[2]) == (0, 0)
    assert (hi[0], lo[0]) == (hi[3], lo[3]) and hi[0] != hi[4]
    hi, lo = digest128(pa.array(["", "x"]), missing_empty=False)
    assert hi[0] != 0  # an empty caption is a value
    assert cluster_ids(["000000000042", "001000000007"]).tolist() == [42, 1000000007]
    ids = cluster_ids(["k1", "000000000042", "k1"])
    assert ids[1] == 42 and ids[0] == ids[2] and ids[0] >= 0
    b = bucket_bounds(3)
    assert b[0][0] == 0 and b[-1][1] == 2**64 - 1 and all(b[i][1] + 1 == b[i + 1][0] for i in range(2))
    m = mix64(np.arange(1000))
    assert np.unique(m).size == 1000 and (m < np.uint64(2**63)).sum() in range(400, 600)


def test_gather_reads_one_range_from_each_file(tmp_path):
    paths = []
    for i in range(3):
        t = pa.table({"b": np.array([9, 1, 5, 7, 3], dtype=np.uint64) + np.uint64(i), "i": [i] * 5})
        write_sorted(tmp_path / f"{i}.arrow", t, "b")
        paths.append(tmp_path / f"{i}.arrow")
    got = gather(paths, "b", 3, 6, t.schema)
    assert got["b"].to_pylist() == [3, 5, 4, 6, 3, 5]  # 1 3 5 7 9 | 2 4 6 8 10 | 3 5 7 9 11
    assert got["i"].to_pylist() == [0, 0, 1, 1, 2, 2]
    assert gather(paths, "b", 100, 200, t.schema).num_rows == 0


def test_exact_edges_join_distinct_nodes_only():
    unique = np.array([10, 20, 30], dtype=np.uint64)
    # Rows: (kind, digest, phash or none, sid). Group A (url 1): hashes 20, 20, 10 and a sample
    # without a hash; group B (sha 1, same digest but another kind): one row; group C: 30, 30.
    kind = np.array([KIND_URL, KIND_URL, KIND_URL, KIND_URL, KIND_SHA, KIND_SHA, KIND_SHA], dtype=np.uint8)
    d_hi = np.array([1, 1, 1, 1, 1, 2, 2], dtype=np.uint64)
    d_lo = np.array([5, 5, 5, 5, 5, 6, 6], dtype=np.uint64)
    phash = np.array([20, 20, 10, 0, 30, 30, 30], dtype=np.uint64)
    has = np.array([True, True, True, False, True, True, True])
    sid = sample_ids(1, np.arange(7))
    a, b = exact_edges(kind, d_hi, d_lo, phash, has, sid, unique)
    nodes = node_ids(phash, has, sid, unique)
    assert nodes[3] == 3 + sid[3]
    assert sorted(zip(a.tolist(), b.tolist())) == [(0, 1), (0, int(nodes[3]))]
    # Labels: node 2 (hash 30) has no edge but two samples hold it; node of row 3 has an edge.
    edge_nodes = np.array([0, 1, nodes[3]], dtype=np.int64)
    lab, multi = labels(nodes, phash, has, edge_nodes, np.zeros(3, dtype=np.int64), np.array([20, 30], dtype=np.uint64))
    assert lab.tolist() == [0, 0, 0, 0, 2, 2, 2] and multi.all()
    lab, multi = labels(nodes[4:5], phash[4:5], has[4:5], edge_nodes, np.zeros(3, dtype=np.int64),
                        np.empty(0, dtype=np.uint64))
    assert not multi.any()
