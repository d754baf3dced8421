"""Retrieval metrics on embedding matrices (pure NumPy, no model), checked against brute force in tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RECALL_CUTOFFS = (1, 5, 10)
PRECISION_CUTOFF = 10


def relevance_matrix(query_keys: Sequence, gallery_keys: Sequence) -> np.ndarray:
    """(queries, gallery) bool, True where the keys are equal (e.g. the normalised title)."""
    ids: dict = {}
    query = np.asarray([ids.setdefault(key, len(ids)) for key in query_keys])
    gallery = np.asarray([ids.setdefault(key, len(ids)) for key in gallery_keys])
    return query[:, None] == gallery[None, :]


def ranking(similarity: np.ndarray) -> np.ndarray:
    """(queries, gallery) -> gallery indices by decreasing similarity (stable, so ties keep gallery order)."""
    return np.argsort(-similarity, axis=1, kind="stable")


def retrieval_metrics(similarity: np.ndarray, relevant: np.ndarray) -> dict[str, float]:
    """R@1/5/10 (percent), median and mean rank of the first relevant item, mAP@10 (percent).

    AP@10 of a query = sum over k <= 10 of precision@k * rel_k, divided by min(10, number of relevant items).
    """
    order = ranking(similarity)
    relevant_in_order = np.take_along_axis(relevant, order, axis=1)  # (queries, gallery)
    if not relevant_in_order.any(axis=1).all():
        raise ValueError("every query needs at least one relevant gallery item")
    first_rank = relevant_in_order.argmax(axis=1) + 1  # 1-based
    metrics = {f"R@{k}": float((first_rank <= k).mean() * 100) for k in RECALL_CUTOFFS}
    metrics["medr"] = float(np.median(first_rank))
    metrics["meanr"] = float(first_rank.mean())
    top = relevant_in_order[:, :PRECISION_CUTOFF].astype(np.float64)
    precision_at_k = np.cumsum(top, axis=1) / np.arange(1, top.shape[1] + 1)
    denominator = np.minimum(relevant.sum(axis=1), PRECISION_CUTOFF)
    metrics[f"mAP@{PRECISION_CUTOFF}"] = float(
        ((precision_at_k * top).sum(axis=1) / denominator).mean() * 100
    )
    return metrics


def precision_at_k(
    similarity: np.ndarray, query_labels: Sequence, gallery_labels: Sequence, k: int = PRECISION_CUTOFF
) -> float:
    """Share of the top k gallery items whose label equals the query's (a fraction in 0..1)."""
    same = relevance_matrix(query_labels, gallery_labels)
    top = ranking(similarity)[:, :k]
    return float(np.take_along_axis(same, top, axis=1).mean())


def precision_ceiling(query_labels: Sequence, gallery_labels: Sequence, k: int = PRECISION_CUTOFF) -> float:
    """Best precision@k any ranking could reach: min(k, gallery items with the query's label) / k."""
    same = relevance_matrix(query_labels, gallery_labels)
    return float((np.minimum(same.sum(axis=1), k) / k).mean())
