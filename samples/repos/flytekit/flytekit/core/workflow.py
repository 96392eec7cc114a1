"""The ``@workflow`` decorator: a function whose body describes a graph of task calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flytekit.core.interface import (
    DEFAULT_OUTPUT,
    Interface,
    bundle_outputs,
    check_inputs,
    interface_from_function,
)
from flytekit.core.promise import START_NODE, CompilationState, Node, Promise, resolve


class WorkflowBase:
    """A compiled workflow: its interface, its nodes and the promises that make its outputs."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.name = f"{fn.__module__}.{fn.__qualname__}"
        self.interface: Interface = interface_from_function(fn)
        self.nodes: list[Node] = []
        self.output_bindings: dict[str, Any] = {}
        self._compile()

    def __repr__(self) -> str:
        return f"Workflow({self.name}, nodes={[n.id for n in self.nodes]})"

    def _compile(self) -> None:
        inputs = {name: Promise(START_NODE, name) for name in self.interface.inputs}
        with CompilationState() as state:
            returned = self.fn(**inputs)
        self.nodes = state.nodes
        names = self.interface.output_names
        if not names:
            if returned is not None:
                raise TypeError(f"{self.name} returns a value but declares no outputs")
            return
        values = returned if len(names) > 1 else (returned,)
        if not isinstance(values, tuple) or len(values) != len(names):
            raise TypeError(f"{self.name} must return {len(names)} values, one per declared output")
        self.output_bindings = dict(zip(names, values, strict=True))

    def edges(self) -> list[tuple[str, str]]:
        """(upstream, downstream) node id pairs, in node order."""
        return [(up, node.id) for node in self.nodes for up in node.upstream]

    def __call__(self, **kwargs: Any) -> Any:
        state = CompilationState.current()
        if state is not None:
            # Called from another workflow: becomes one sub-workflow node there.
            node = state.add_node(self, check_inputs(self.name, self.interface, kwargs))
            promises = [Promise(node.id, name) for name in self.interface.output_names]
            return bundle_outputs(self.interface, promises)
        return self.execute(**kwargs)

    def execute(self, **kwargs: Any) -> Any:
        """Run the nodes locally in the order they were declared; that order is already topological."""
        outputs: dict[str, dict[str, Any]] = {START_NODE: check_inputs(self.name, self.interface, kwargs)}
        for node in self.nodes:
            result = node.entity.execute(**resolve(node.bindings, outputs))
            names = node.entity.interface.output_names
            if len(names) == 1:
                result = (result,)
            outputs[node.id] = dict(zip(names, result or (), strict=True))
        values = [resolve(self.output_bindings[name], outputs) for name in self.interface.output_names]
        if not values:
            return None
        if self.interface.output_names == [DEFAULT_OUTPUT]:
            return values[0]
        return tuple(values)


def workflow(fn: Callable[..., Any]) -> WorkflowBase:
    """Compile ``fn`` into a workflow. Its body runs once, at decoration time, to record the graph."""
    return WorkflowBase(fn)
