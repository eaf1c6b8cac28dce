"""Diversity of an embedding set (FineVision section 3.3): how many directions its vectors spread over.

Both measures come from the eigenvalues of the vectors' covariance. Effective rank (Roy and
Vetterli) is exp of the entropy of the normalised spectrum; participation ratio is
(sum of eigenvalues)^2 / sum of their squares. Both run from 1 (every vector on one line) to the
dimension (isotropic). The covariance is built from per-batch sums, so no worker or driver ever
holds all the vectors: a batch contributes (n, sum of x, sum of x x^T), and partials add up.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PARTIAL_SCHEMA = "label string, n long, total array<double>, gram array<double>"
MEASURE_SCHEMA = "label string, n long, effective_rank double, participation_ratio double"


def partial_sums(batch: pd.DataFrame) -> pd.DataFrame:
    """(label, vector) rows -> one (label, n, sum x, flattened sum x x^T) row per label."""
    rows = []
    for label, group in batch.groupby("label", sort=True):
        vectors = np.stack(group["vector"].to_numpy()).astype(np.float64)
        rows.append({"label": label, "n": len(vectors), "total": vectors.sum(axis=0).tolist(),
                     "gram": (vectors.T @ vectors).ravel().tolist()})
    return pd.DataFrame(rows, columns=["label", "n", "total", "gram"])


def spectrum_measures(eigenvalues: np.ndarray) -> tuple[float, float]:
    """(effective rank, participation ratio) of a covariance spectrum."""
    spectrum = np.clip(eigenvalues, 0.0, None)
    mass = spectrum.sum()
    if mass <= 0:
        return 1.0, 1.0
    share = spectrum[spectrum > 0] / mass
    return float(np.exp(-(share * np.log(share)).sum())), float(mass**2 / (spectrum**2).sum())


def measure(partials: pd.DataFrame) -> pd.DataFrame:
    """All partial sums of one label -> its n, effective rank and participation ratio."""
    n = int(partials["n"].sum())
    total = np.sum(np.stack(partials["total"].to_numpy()), axis=0)
    dim = len(total)
    gram = np.sum(np.stack(partials["gram"].to_numpy()), axis=0).reshape(dim, dim)
    mean = total / n
    covariance = gram / n - np.outer(mean, mean)
    effective_rank, participation_ratio = spectrum_measures(np.linalg.eigvalsh(covariance))
    return pd.DataFrame({"label": [partials["label"].iloc[0]], "n": [n], "effective_rank": [effective_rank],
                         "participation_ratio": [participation_ratio]})
