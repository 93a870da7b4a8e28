"""Seeded stratified splits of a labelled set: single-label by class, multi-label by iterative
stratification (Sechidis, Tsoumakas and Vlahavas, 2011), so that every class or label keeps about
its share in each part, rare ones included.
"""

from __future__ import annotations

import numpy as np

__all__ = ["iterative_stratification", "stratified_split"]


def _counts(n: int, fractions: list[float]) -> np.ndarray:
    """How many of ``n`` items each part gets: rounded shares, the remainder to the first part, which
    gets at least one."""
    counts = np.floor(np.asarray(fractions) * n + 0.5).astype(np.int64)
    counts[0] = n - counts[1:].sum()
    while n and counts[0] < 1:  # train keeps one: a class that only validation has is never learnt
        counts[int(np.argmax(counts[1:])) + 1] -= 1
        counts[0] += 1
    return counts


def stratified_split(labels: np.ndarray, fractions: list[float], seed: int) -> list[np.ndarray]:
    """Indices of each part for class labels (N,): every class is split by ``fractions`` on its own
    (so a class of 20 gives 1 image to a 5% part), shuffled with ``seed``; each part sorted."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        bounds = np.cumsum(_counts(len(members), fractions))[:-1]
        for part, chunk in zip(parts, np.split(members, bounds), strict=True):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def iterative_stratification(labels: np.ndarray, fractions: list[float], seed: int) -> list[np.ndarray]:
    """Indices of each part for multi-hot labels (N, L). The rarest label still unplaced goes first:
    each of its images joins the part that most lacks that label (ties: the part that lacks most
    images overall, then at random), except that the first part gets the last one if it has none. Images
    with no label are split by size at the end."""
    rng = np.random.default_rng(seed)
    y = labels.astype(bool)
    n = len(y)
    order = rng.permutation(n)  # random tie-breaking among images of one label
    y = y[order]
    fractions_ = np.asarray(fractions, dtype=np.float64)
    want_total = fractions_ * n
    want_label = fractions_[:, None] * y.sum(0)[None, :]  # (parts, L)
    part_of = np.full(n, -1)
    left = y.copy()
    while left.any():
        remaining = left.sum(0)
        label = int(np.argmin(np.where(remaining > 0, remaining, np.iinfo(np.int64).max)))
        todo = np.flatnonzero(left[:, label])
        for i in todo:
            need = want_label[:, label]
            best = np.flatnonzero(need == need.max())
            if len(best) > 1:
                totals = want_total[best]
                best = best[totals == totals.max()]
            p = int(best[rng.integers(len(best))]) if len(best) > 1 else int(best[0])
            if i == todo[-1] and not y[part_of == 0, label].any():
                p = 0  # as in stratified_split: train keeps one image of every label
            part_of[i] = p
            want_label[p] -= y[i]
            want_total[p] -= 1
            left[i] = False
    for i in np.flatnonzero(part_of < 0):  # the images with no label at all
        p = int(np.argmax(want_total))
        part_of[i] = p
        want_total[p] -= 1
    return [np.sort(order[part_of == p]) for p in range(len(fractions))]
