"""Graph nodes of samples and the cluster label of every sample, from what the driver computed.

Nodes: a sample with a pHash is the node of its hash, numbered by its position in the sorted
distinct hashes `unique` (identical hashes are one node, as in the near search); a sample without
one is a node of its own, `len(unique) + sid` with `sid = partition << 32 | row` (unique, and
above every hash node). Edges (near pairs, exact groups) join nodes into components; a
component's label is its smallest node. A sample is in a cluster of two or more samples iff its
node has an edge or its hash is held by more than one sample.
"""

from __future__ import annotations

import numpy as np

from dedup.near import positions

SID_ROW_BITS = 32


def sample_ids(partition: int, rows: np.ndarray) -> np.ndarray:
    return (np.int64(partition) << np.int64(SID_ROW_BITS)) | np.asarray(rows, dtype=np.int64)


def node_ids(phash: np.ndarray, has_phash: np.ndarray, sid: np.ndarray, unique: np.ndarray) -> np.ndarray:
    """Node of each sample (see the module docstring)."""
    nodes = positions(unique, phash)
    return np.where(has_phash, nodes, np.int64(unique.size) + sid)


def in_sorted(values: np.ndarray, sorted_set: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is each value in `sorted_set`, its position there where it is)."""
    if sorted_set.size == 0:
        return np.zeros(values.shape, dtype=bool), np.zeros(values.shape, dtype=np.int64)
    pos = np.minimum(positions(sorted_set, values), sorted_set.size - 1)
    return sorted_set[pos] == values, pos


def labels(nodes: np.ndarray, phash: np.ndarray, has_phash: np.ndarray, edge_nodes: np.ndarray,
           edge_roots: np.ndarray, repeated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cluster label, in a multi-sample cluster) per sample. `edge_nodes` (sorted) are the nodes
    that have an edge and `edge_roots` their component labels; `repeated` (sorted) the hashes more
    than one sample holds."""
    has_edge, pos = in_sorted(nodes, edge_nodes)
    label = np.where(has_edge, edge_roots[pos] if edge_roots.size else nodes, nodes)
    multi = has_edge | (has_phash & in_sorted(phash, repeated)[0])
    return label, multi
