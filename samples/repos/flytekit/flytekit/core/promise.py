"""Promises: what calling a task returns while a workflow is being compiled.

Inside ``@workflow`` nothing runs. Each task call adds a node to the graph and hands back a
:class:`Promise` for each of the task's outputs; passing a promise to the next task call is how
data dependencies between nodes are recorded.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

START_NODE = "start-node"


@dataclass(frozen=True)
class Promise:
    """The future value of output ``var`` of node ``node_id``."""

    node_id: str
    var: str

    def __repr__(self) -> str:
        return f"Promise({self.node_id}.{self.var})"

    def __iter__(self) -> typing.NoReturn:
        # Iterating needs the list's length, which is only known at run time.
        raise TypeError(f"cannot iterate over {self!r} while the workflow compiles; use a map task")

    def __bool__(self) -> bool:
        # A promise has no value yet, so `if promise:` inside a workflow is always a bug.
        raise TypeError(
            f"{self!r} is not known while the workflow compiles; use a conditional node instead of `if`"
        )


@dataclass
class Node:
    """One call of a task (or sub-workflow) inside a workflow."""

    id: str
    entity: Any
    bindings: dict[str, Any] = field(default_factory=dict)

    @property
    def upstream(self) -> list[str]:
        """Ids of the nodes whose outputs this node consumes, in binding order, without repeats."""
        seen: list[str] = []
        for value in self.bindings.values():
            for promise in _promises_in(value):
                if promise.node_id != START_NODE and promise.node_id not in seen:
                    seen.append(promise.node_id)
        return seen


def _promises_in(value: Any) -> list[Promise]:
    if isinstance(value, Promise):
        return [value]
    if isinstance(value, (list, tuple)):
        return [p for item in value for p in _promises_in(item)]
    if isinstance(value, dict):
        return [p for item in value.values() for p in _promises_in(item)]
    return []


def resolve(value: Any, outputs: dict[str, dict[str, Any]]) -> Any:
    """Replace every promise in ``value`` by the concrete output it stands for."""
    if isinstance(value, Promise):
        try:
            return outputs[value.node_id][value.var]
        except KeyError:
            raise KeyError(f"{value!r} was used before its node produced it") from None
    if isinstance(value, list):
        return [resolve(item, outputs) for item in value]
    if isinstance(value, tuple):
        return tuple(resolve(item, outputs) for item in value)
    if isinstance(value, dict):
        return {key: resolve(item, outputs) for key, item in value.items()}
    return value


class CompilationState:
    """The graph under construction while a workflow function runs in compile mode."""

    _stack: ClassVar[list[CompilationState]] = []

    def __init__(self, prefix: str = "n") -> None:
        self.prefix = prefix
        self.nodes: list[Node] = []

    def __enter__(self) -> CompilationState:
        CompilationState._stack.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        CompilationState._stack.pop()

    @classmethod
    def current(cls) -> CompilationState | None:
        return cls._stack[-1] if cls._stack else None

    def add_node(self, entity: Any, bindings: dict[str, Any]) -> Node:
        node = Node(id=f"{self.prefix}{len(self.nodes)}", entity=entity, bindings=bindings)
        self.nodes.append(node)
        return node
