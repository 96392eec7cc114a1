"""Converting Python values to literals and back.

Tasks run in separate containers, so every value that crosses a task boundary is turned into a
:class:`Literal` by a :class:`TypeTransformer` and turned back on the other side. The
:class:`TypeEngine` picks the transformer for a Python type.
"""

from __future__ import annotations

import dataclasses
import datetime
import types
import typing
from typing import Any, ClassVar, Generic, TypeVar

T = TypeVar("T")


def _is_union(python_type: Any) -> bool:
    # `Optional[int]` has origin typing.Union, `int | None` has types.UnionType.
    return typing.get_origin(python_type) in (typing.Union, types.UnionType)


@dataclasses.dataclass(frozen=True)
class Literal:
    """A language-neutral value: a scalar, a collection of literals or a map of literals."""

    kind: str  # "scalar" | "collection" | "map" | "none"
    value: Any


class TypeTransformerFailedError(TypeError):
    """A value does not match the type it was declared with."""


class TypeTransformer(Generic[T]):
    """Converts one Python type to and from literals."""

    def __init__(self, name: str, python_type: type[T]) -> None:
        self.name = name
        self.python_type = python_type

    def literal_type(self, python_type: Any) -> str:
        return self.name

    def to_literal(self, value: T, python_type: Any) -> Literal:
        raise NotImplementedError

    def to_python_value(self, literal: Literal, expected_type: Any) -> T:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


class SimpleTransformer(TypeTransformer[T]):
    """Scalars that need no conversion beyond a type check."""

    def to_literal(self, value: T, python_type: Any) -> Literal:
        # bool is a subclass of int, but a bool passed as an int is almost always a mistake.
        if not isinstance(value, self.python_type) or (self.python_type is int and isinstance(value, bool)):
            raise TypeTransformerFailedError(
                f"expected {self.python_type.__name__}, got {type(value).__name__}: {value!r}"
            )
        return Literal("scalar", value)

    def to_python_value(self, literal: Literal, expected_type: Any) -> T:
        return typing.cast(T, literal.value)


class FloatTransformer(SimpleTransformer[float]):
    """Floats also accept ints, as Python's numeric tower does."""

    def to_literal(self, value: float, python_type: Any) -> Literal:
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        return super().to_literal(value, python_type)


class ListTransformer(TypeTransformer[list]):
    def __init__(self) -> None:
        super().__init__("collection", list)

    def literal_type(self, python_type: Any) -> str:
        (item_type,) = typing.get_args(python_type) or (Any,)
        return f"collection({TypeEngine.literal_type(item_type)})"

    def to_literal(self, value: list, python_type: Any) -> Literal:
        if not isinstance(value, list):
            raise TypeTransformerFailedError(f"expected a list, got {type(value).__name__}")
        (item_type,) = typing.get_args(python_type)
        return Literal("collection", [TypeEngine.to_literal(item, item_type) for item in value])

    def to_python_value(self, literal: Literal, expected_type: Any) -> list:
        (item_type,) = typing.get_args(expected_type)
        return [TypeEngine.to_python_value(item, item_type) for item in literal.value]


class DictTransformer(TypeTransformer[dict]):
    def __init__(self) -> None:
        super().__init__("map", dict)

    def literal_type(self, python_type: Any) -> str:
        key_type, value_type = typing.get_args(python_type)
        if key_type is not str:
            raise TypeTransformerFailedError(f"map keys must be str, got {key_type}")
        return f"map({TypeEngine.literal_type(value_type)})"

    def to_literal(self, value: dict, python_type: Any) -> Literal:
        _, value_type = typing.get_args(python_type)
        return Literal("map", {str(k): TypeEngine.to_literal(v, value_type) for k, v in value.items()})

    def to_python_value(self, literal: Literal, expected_type: Any) -> dict:
        _, value_type = typing.get_args(expected_type)
        return {k: TypeEngine.to_python_value(v, value_type) for k, v in literal.value.items()}


class DataclassTransformer(TypeTransformer[Any]):
    """Dataclasses travel as a map of their fields, each converted by its own transformer."""

    def __init__(self) -> None:
        super().__init__("dataclass", object)

    def literal_type(self, python_type: Any) -> str:
        hints = typing.get_type_hints(python_type)
        inner = ", ".join(f"{name}: {TypeEngine.literal_type(tp)}" for name, tp in hints.items())
        return f"struct({inner})"

    def to_literal(self, value: Any, python_type: Any) -> Literal:
        if not isinstance(value, python_type):
            raise TypeTransformerFailedError(f"expected {python_type.__name__}, got {type(value).__name__}")
        hints = typing.get_type_hints(python_type)
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return Literal("map", {name: TypeEngine.to_literal(v, hints[name]) for name, v in fields.items()})

    def to_python_value(self, literal: Literal, expected_type: Any) -> Any:
        hints = typing.get_type_hints(expected_type)
        values = {name: TypeEngine.to_python_value(lit, hints[name]) for name, lit in literal.value.items()}
        return expected_type(**values)


class TypeEngine:
    """The registry of transformers, looked up by Python type."""

    _registry: ClassVar[dict[type, TypeTransformer[Any]]] = {}
    _dataclass_transformer: ClassVar[TypeTransformer[Any]] = DataclassTransformer()

    @classmethod
    def register(cls, transformer: TypeTransformer[Any]) -> None:
        if transformer.python_type in cls._registry:
            raise ValueError(f"a transformer for {transformer.python_type} is already registered")
        cls._registry[transformer.python_type] = transformer

    @classmethod
    def get_transformer(cls, python_type: Any) -> TypeTransformer[Any]:
        origin = typing.get_origin(python_type) or python_type
        if origin in cls._registry:
            return cls._registry[origin]
        if dataclasses.is_dataclass(origin):
            return cls._dataclass_transformer
        raise TypeTransformerFailedError(f"no transformer for type {python_type!r}; register one first")

    @classmethod
    def literal_type(cls, python_type: Any) -> str:
        if _is_union(python_type):
            return f"optional({cls.literal_type(cls._optional_inner(python_type))})"
        return cls.get_transformer(python_type).literal_type(python_type)

    @classmethod
    def to_literal(cls, value: Any, python_type: Any) -> Literal:
        if _is_union(python_type):
            return cls._optional_to_literal(value, python_type)
        return cls.get_transformer(python_type).to_literal(value, python_type)

    @classmethod
    def to_python_value(cls, literal: Literal, expected_type: Any) -> Any:
        if literal.kind == "none":
            return None
        if _is_union(expected_type):
            return cls.to_python_value(literal, cls._optional_inner(expected_type))
        return cls.get_transformer(expected_type).to_python_value(literal, expected_type)

    @classmethod
    def _optional_inner(cls, python_type: Any) -> Any:
        args = [t for t in typing.get_args(python_type) if t is not type(None)]
        if len(args) != 1:
            raise TypeTransformerFailedError(f"only Optional[X] unions are supported, got {python_type!r}")
        return args[0]

    @classmethod
    def _optional_to_literal(cls, value: Any, python_type: Any) -> Literal:
        if value is None:
            return Literal("none", None)
        return cls.to_literal(value, cls._optional_inner(python_type))


for _transformer in (
    SimpleTransformer("integer", int),
    FloatTransformer("float", float),
    SimpleTransformer("string", str),
    SimpleTransformer("boolean", bool),
    SimpleTransformer("datetime", datetime.datetime),
    SimpleTransformer("duration", datetime.timedelta),
    ListTransformer(),
    DictTransformer(),
):
    TypeEngine.register(_transformer)
