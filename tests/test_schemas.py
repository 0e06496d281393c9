"""Every artifact's Arrow layout and pandera model agree: the same columns with compatible types."""

import numpy as np
import pyarrow as pa
import pytest

from schemas import ARTIFACTS


def expected_dtype(t: pa.DataType) -> str:
    """The pandas dtype a pandera model declares for an Arrow column (nested values are Python objects)."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "str"
    if pa.types.is_boolean(t):
        return "bool"
    for arrow_type, np_type in ((pa.int32(), np.int32), (pa.int64(), np.int64), (pa.float64(), np.float64)):
        if t == arrow_type:
            return str(np.dtype(np_type))
    return "object"


def declared_dtype(column) -> str:
    dtype = str(column.dtype)
    return {"float64": "float64", "str": "str", "string": "str", "object": "object"}.get(dtype, dtype)


@pytest.mark.parametrize("artifact", ARTIFACTS, ids=lambda a: a.name)
def test_arrow_and_pandera_agree(artifact):
    model = artifact.model.to_schema()
    assert sorted(model.columns) == sorted(artifact.arrow.names), "the same columns"
    for field in artifact.arrow:
        assert declared_dtype(model.columns[field.name]) == expected_dtype(field.type), field.name
    assert model.strict is True, "a column the Arrow layout lacks must fail the check"


@pytest.mark.parametrize("artifact", ARTIFACTS, ids=lambda a: a.name)
def test_an_empty_table_of_the_layout_passes_its_model(artifact):
    artifact.model.validate(artifact.arrow.empty_table().to_pandas(), lazy=True)
