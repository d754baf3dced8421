"""The halfvec column that every product vector is written through."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from pgvector.django import HalfVectorField as PgvectorHalfVectorField


@cache
def _half_texts() -> np.ndarray:
    """The text of each of the 65,536 half-precision values, indexed by its bits: exactly what pgvector's
    own formatting writes for that value."""
    values = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    return np.array([repr(float(value)) for value in values], dtype=object)


def halfvec_literal(vector: np.ndarray) -> str:
    """`[v1,v2,...]` for a NumPy vector, rounded to half precision as pgvector rounds it. Formatting
    each number in Python was the largest cost of writing a batch of vectors; a table lookup is not."""
    bits = np.ascontiguousarray(vector, dtype=np.float16).ravel().view(np.uint16)
    return "[" + ",".join(_half_texts()[bits].tolist()) + "]"


class HalfVectorField(PgvectorHalfVectorField):
    """pgvector's halfvec field; NumPy vectors are written through `halfvec_literal`."""

    def get_prep_value(self, value: Any) -> str | None:
        if isinstance(value, np.ndarray):
            return halfvec_literal(value)
        return super().get_prep_value(value)
