"""Effective rank and participation ratio from partial sums, against numpy on the whole matrix."""

import numpy as np
import pandas as pd

from udfs.diversity import measure, partial_sums, spectrum_measures


def test_partial_sums_in_any_split_give_the_whole_matrix_measures():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 24)) * np.linspace(0.2, 2.0, 24)  # anisotropic: rank between 1 and 24
    frame = pd.DataFrame({"label": "s", "vector": list(vectors)})
    split = pd.concat([partial_sums(frame.iloc[:1000]), partial_sums(frame.iloc[1000:2900]), partial_sums(frame.iloc[2900:])])
    result = measure(split).iloc[0]
    expected = spectrum_measures(np.linalg.eigvalsh(np.cov(vectors.T, bias=True)))
    assert result["n"] == 3000
    assert np.allclose((result["effective_rank"], result["participation_ratio"]), expected)
    assert 1 < expected[1] < expected[0] < 24


def test_extremes_one_direction_and_isotropic():
    rng = np.random.default_rng(1)
    line = np.outer(rng.normal(size=2000), rng.normal(size=16))
    assert np.allclose(spectrum_measures(np.linalg.eigvalsh(np.cov(line.T))), (1.0, 1.0), atol=1e-6)
    iso = rng.normal(size=(20000, 16))
    effective_rank, participation_ratio = spectrum_measures(np.linalg.eigvalsh(np.cov(iso.T)))
    assert effective_rank > 15.9 and participation_ratio > 15.8


def test_each_label_is_summed_apart():
    frame = pd.DataFrame({"label": ["a", "b", "a"], "vector": [np.ones(3), np.zeros(3), np.ones(3)]})
    sums = partial_sums(frame).set_index("label")
    assert sums.loc["a", "n"] == 2 and sums.loc["a", "total"] == [2.0, 2.0, 2.0]
    assert sums.loc["b", "gram"] == [0.0] * 9
