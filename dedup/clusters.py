"""Connected components of duplicate edges (union-find), vectorised with scipy's csgraph.

Only nodes that appear in an edge enter the graph, so a 100M-node problem with a few million
edges builds a graph of a few million nodes (`edge_components` never allocates per node). Every node's label is the smallest node index in its
component, so labels do not depend on edge order.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def component_roots(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For nodes 0..n-1 and undirected edges (a[i], b[i]): the smallest node of each one's component."""
    roots = np.arange(n, dtype=np.int64)
    nodes, labels = edge_components(a, b)
    roots[nodes] = labels
    return roots


def edge_components(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct nodes that have an edge, the smallest node of each one's component), for
    undirected edges (a[i], b[i]) between any int64 node ids: memory follows the edges only."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    nodes = np.sort(np.concatenate([a, b]))
    keep = np.ones(nodes.size, dtype=bool)
    keep[1:] = nodes[1:] != nodes[:-1]
    nodes = nodes[keep]  # sorted distinct nodes that have an edge
    la = np.searchsorted(nodes, a)
    lb = np.searchsorted(nodes, b)
    m = nodes.size
    graph = coo_matrix((np.ones(la.size, dtype=np.int8), (la, lb)), shape=(m, m))
    _, labels = connected_components(graph, directed=False)
    # Smallest member per component: nodes are sorted, so a stable sort by label puts each
    # component's smallest node first.
    order = np.argsort(labels, kind="stable")
    lab = labels[order]
    start = np.ones(m, dtype=bool)
    start[1:] = lab[1:] != lab[:-1]
    first = np.empty(labels.max() + 1, dtype=np.int64)
    first[lab[start]] = nodes[order[start]]
    return nodes, first[labels]


def group_edges(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges joining every member of a group (equal non-negative code) to the group's first member."""
    codes = np.asarray(codes, dtype=np.int64)
    idx = np.flatnonzero(codes >= 0)
    if idx.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = idx[np.argsort(codes[idx], kind="stable")]
    c = codes[order]
    start = np.ones(c.size, dtype=bool)
    start[1:] = c[1:] != c[:-1]
    head = order[np.maximum.accumulate(np.where(start, np.arange(c.size), 0))]
    member = ~start
    return head[member], order[member]
