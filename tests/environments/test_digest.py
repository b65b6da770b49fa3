"""Stage output digests: equal exactly when the bytes, dtype and shape are."""

from __future__ import annotations

import numpy as np
import pytest

from dlspec_ray.environments.digest import output_digest

A = np.arange(12, dtype=np.float32).reshape(3, 4)


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        (A, A.copy(), True),
        (A, A.T.copy().T, True),  # a non-contiguous view hashes as its contiguous copy
        (A, A.astype(np.float64), False),  # same values, another dtype
        (A, A.reshape(4, 3), False),  # same bytes, another shape
        (A, np.nextafter(A, np.float32(np.inf)), False),  # one ulp apart
        ({"top_k": A, "output": A}, {"output": A, "top_k": A}, True),  # key order
        ({"top_k": A}, {"scores": A}, False),  # another key
    ],
)
def test_digests_are_equal_exactly_when_the_outputs_are(one, other, same):
    assert (output_digest(one) == output_digest(other)) is same


@pytest.mark.parametrize("value", [["a.jpg", "b.jpg"], None, {}, {"top_k": [1, 2]}, 3.0])
def test_what_is_not_an_array_has_no_digest(value):
    assert output_digest(value) is None


def test_an_empty_batch_has_a_digest():
    assert len(output_digest(np.zeros((0, 10), np.float32))) == 16
