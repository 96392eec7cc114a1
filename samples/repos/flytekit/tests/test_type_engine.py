import dataclasses
import datetime

import pytest
from flytekit import FlyteFile, TypeEngine
from flytekit.core.type_engine import Literal, TypeTransformerFailedError


@dataclasses.dataclass
class TrainingConfig:
    learning_rate: float
    epochs: int
    layers: list[int]
    notes: str | None = None


def roundtrip(value, python_type):
    return TypeEngine.to_python_value(TypeEngine.to_literal(value, python_type), python_type)


@pytest.mark.parametrize(
    ("value", "python_type"),
    [
        (3, int),
        (2.5, float),
        ("hello", str),
        (True, bool),
        ([1, 2, 3], list[int]),
        ({"a": [1.0], "b": []}, dict[str, list[float]]),
        (datetime.timedelta(seconds=90), datetime.timedelta),
        (None, int | None),
    ],
)
def test_roundtrip(value, python_type):
    assert roundtrip(value, python_type) == value


def test_dataclass_roundtrip_and_literal_type():
    config = TrainingConfig(learning_rate=1e-3, epochs=2, layers=[64, 64])
    assert roundtrip(config, TrainingConfig) == config
    assert TypeEngine.literal_type(TrainingConfig).startswith("struct(learning_rate: float, epochs: integer")


def test_int_is_accepted_as_float_but_bool_is_not_int():
    assert TypeEngine.to_literal(1, float) == Literal("scalar", 1.0)
    with pytest.raises(TypeTransformerFailedError):
        TypeEngine.to_literal(True, int)


def test_nested_literal_types():
    assert TypeEngine.literal_type(list[dict[str, int]]) == "collection(map(integer))"


def test_unknown_type_has_a_clear_error():
    class Opaque:
        pass

    with pytest.raises(TypeTransformerFailedError, match="register one first"):
        TypeEngine.to_literal(Opaque(), Opaque)


def test_flyte_file_travels_as_uri(tmp_path):
    path = tmp_path / "model.bin"
    literal = TypeEngine.to_literal(FlyteFile(path, remote_path="s3://bucket/model.bin"), FlyteFile)
    assert literal.value["uri"] == "s3://bucket/model.bin"
    restored = TypeEngine.to_python_value(literal, FlyteFile)
    assert restored.remote_path == "s3://bucket/model.bin"
    assert restored.extension == "bin"
