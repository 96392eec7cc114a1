import datetime
import typing

import pytest
from flytekit import Resources, task
from flytekit.core.task import TaskMetadata


@task
def add(a: int, b: int = 1) -> int:
    return a + b


@task(retries=3, timeout=datetime.timedelta(minutes=5), requests=Resources(cpu="1", mem="1Gi"))
def describe(name: str, tags: list[str]) -> str:
    return f"{name}: {', '.join(tags)}"


class Stats(typing.NamedTuple):
    mean: float
    count: int


@task
def stats(values: list[float]) -> Stats:
    return Stats(mean=sum(values) / len(values), count=len(values))


def test_task_runs_locally_with_defaults():
    assert add(a=2) == 3
    assert add(a=2, b=5) == 7


def test_task_interface_is_read_from_the_signature():
    assert add.interface.inputs == {"a": int, "b": int}
    assert add.interface.outputs == {"o0": int}
    assert add.interface.defaults == {"b": 1}
    assert stats.interface.output_names == ["mean", "count"]


def test_task_metadata_and_resources():
    assert describe.metadata.retries == 3
    assert describe.requests.to_dict() == {"cpu": "1", "memory": "1Gi"}
    assert describe(name="job", tags=["a", "b"]) == "job: a, b"


def test_wrong_input_type_is_rejected():
    with pytest.raises(TypeError, match="expected int"):
        add(a="two")


def test_unknown_and_missing_inputs_name_the_task():
    with pytest.raises(TypeError, match="unexpected inputs"):
        add(a=1, c=2)
    with pytest.raises(TypeError, match="missing inputs"):
        describe(name="x")


def test_positional_arguments_are_not_allowed():
    with pytest.raises(TypeError):
        add(1)


def test_cache_needs_a_version():
    with pytest.raises(ValueError, match="cache_version"):
        TaskMetadata(cache=True)


def test_requests_above_limits_fail_at_definition():
    with pytest.raises(ValueError, match="exceed limits"):

        @task(requests=Resources(cpu="4"), limits=Resources(cpu="2"))
        def greedy() -> None: ...
