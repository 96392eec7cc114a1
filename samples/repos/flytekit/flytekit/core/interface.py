"""Typed interfaces of tasks and workflows, read from Python signatures."""

from __future__ import annotations

import collections
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_OUTPUT = "o0"


@dataclass(frozen=True)
class Interface:
    """Named, typed inputs and outputs. Outputs of a single-valued function are named ``o0``."""

    inputs: dict[str, type]
    outputs: dict[str, type]
    defaults: dict[str, Any]

    @property
    def output_names(self) -> list[str]:
        return list(self.outputs)


def _is_named_tuple(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


def interface_from_function(fn: Callable[..., Any]) -> Interface:
    """Build an :class:`Interface` from ``fn``'s type hints; every parameter must be annotated."""
    hints = typing.get_type_hints(fn)
    signature = inspect.signature(fn)
    inputs: dict[str, type] = {}
    defaults: dict[str, Any] = {}
    for name, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{fn.__qualname__}: *args and **kwargs cannot be typed inputs")
        if name not in hints:
            raise TypeError(f"{fn.__qualname__}: input {name!r} needs a type annotation")
        inputs[name] = hints[name]
        if param.default is not param.empty:
            defaults[name] = param.default

    returns = hints.get("return", type(None))
    if returns is type(None):
        outputs: dict[str, type] = {}
    elif _is_named_tuple(returns):
        outputs = dict(typing.get_type_hints(returns))
    else:
        outputs = {DEFAULT_OUTPUT: returns}
    return Interface(inputs=inputs, outputs=outputs, defaults=defaults)


def check_inputs(name: str, interface: Interface, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and reject unknown or missing inputs with a message that names the entity."""
    unknown = sorted(set(kwargs) - set(interface.inputs))
    if unknown:
        raise TypeError(f"{name} got unexpected inputs {unknown}; it takes {sorted(interface.inputs)}")
    merged = {**interface.defaults, **kwargs}
    missing = sorted(set(interface.inputs) - set(merged))
    if missing:
        raise TypeError(f"{name} is missing inputs {missing}")
    return merged


def bundle_outputs(interface: Interface, values: list[Any]) -> Any:
    """What a call returns at compile time: nothing, one value, or a named tuple of several.

    The named tuple lets workflow code write ``stats.minimum`` just as it would with real values.
    """
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    outputs = collections.namedtuple("Outputs", interface.output_names)
    return outputs(*values)
