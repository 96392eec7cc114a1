"""The ``@task`` decorator: a typed Python function that runs in its own container."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from flytekit.core.interface import Interface, bundle_outputs, check_inputs, interface_from_function
from flytekit.core.promise import CompilationState, Promise
from flytekit.core.resources import Resources
from flytekit.core.type_engine import TypeEngine

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class TaskMetadata:
    """Execution settings that do not change what the task computes."""

    retries: int = 0
    timeout: datetime.timedelta | None = None
    cache: bool = False
    cache_version: str = ""
    interruptible: bool = False

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if self.cache and not self.cache_version:
            # Without a version, changing the code would silently keep serving stale cached outputs.
            raise ValueError("cache=True needs a cache_version")


class PythonFunctionTask:
    """A task backed by a plain Python function."""

    def __init__(
        self,
        fn: Callable[..., Any],
        metadata: TaskMetadata,
        requests: Resources | None = None,
        limits: Resources | None = None,
        container_image: str | None = None,
    ) -> None:
        self.fn = fn
        self.name = f"{fn.__module__}.{fn.__qualname__}"
        self.metadata = metadata
        self.requests = requests or Resources()
        self.limits = limits or Resources()
        self.container_image = container_image
        self.interface: Interface = interface_from_function(fn)
        if limits is not None and not self.requests.fits_within(self.limits):
            raise ValueError(f"{self.name}: requests {self.requests} exceed limits {self.limits}")
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"PythonFunctionTask({self.name})"

    def __call__(self, **kwargs: Any) -> Any:
        state = CompilationState.current()
        if state is not None:
            return self._compile_call(state, kwargs)
        return self.execute(**kwargs)

    def _compile_call(self, state: CompilationState, kwargs: dict[str, Any]) -> Any:
        bindings = check_inputs(self.name, self.interface, kwargs)
        node = state.add_node(self, bindings)
        promises = [Promise(node.id, name) for name in self.interface.output_names]
        return bundle_outputs(self.interface, promises)

    def execute(self, **kwargs: Any) -> Any:
        """Run locally. Values go through the type engine, as they would between containers."""
        inputs = check_inputs(self.name, self.interface, kwargs)
        native = {}
        for name, value in inputs.items():
            python_type = self.interface.inputs[name]
            native[name] = TypeEngine.to_python_value(TypeEngine.to_literal(value, python_type), python_type)
        return self.fn(**native)


@overload
def task(_fn: F) -> PythonFunctionTask: ...


@overload
def task(
    _fn: None = None,
    *,
    retries: int = 0,
    timeout: datetime.timedelta | None = None,
    cache: bool = False,
    cache_version: str = "",
    interruptible: bool = False,
    requests: Resources | None = None,
    limits: Resources | None = None,
    container_image: str | None = None,
) -> Callable[[F], PythonFunctionTask]: ...


def task(
    _fn: Callable[..., Any] | None = None,
    *,
    retries: int = 0,
    timeout: datetime.timedelta | None = None,
    cache: bool = False,
    cache_version: str = "",
    interruptible: bool = False,
    requests: Resources | None = None,
    limits: Resources | None = None,
    container_image: str | None = None,
) -> PythonFunctionTask | Callable[[Callable[..., Any]], PythonFunctionTask]:
    """Turn a typed function into a task. Usable bare (``@task``) or with settings (``@task(retries=3)``)."""
    metadata = TaskMetadata(
        retries=retries,
        timeout=timeout,
        cache=cache,
        cache_version=cache_version,
        interruptible=interruptible,
    )

    def wrap(fn: Callable[..., Any]) -> PythonFunctionTask:
        return PythonFunctionTask(
            fn, metadata, requests=requests, limits=limits, container_image=container_image
        )

    return wrap(_fn) if _fn is not None else wrap
