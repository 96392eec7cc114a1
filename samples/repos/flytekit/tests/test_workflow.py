import pytest
from flytekit import task, workflow
from flytekit.core.promise import Promise


@task
def square(x: int) -> int:
    return x * x


@task
def total(values: list[int]) -> int:
    return sum(values)


@workflow
def sum_of_squares(a: int, b: int) -> int:
    return total(values=[square(x=a), square(x=b)])


@workflow
def nested(a: int) -> int:
    return sum_of_squares(a=a, b=a)


def test_workflow_compiles_to_nodes_and_edges():
    assert [node.id for node in sum_of_squares.nodes] == ["n0", "n1", "n2"]
    assert sum_of_squares.edges() == [("n0", "n2"), ("n1", "n2")]
    assert sum_of_squares.output_bindings == {"o0": Promise("n2", "o0")}


def test_workflow_runs_locally():
    assert sum_of_squares(a=3, b=4) == 25


def test_sub_workflow_is_one_node():
    assert len(nested.nodes) == 1
    assert nested(a=2) == 8


def test_promises_cannot_be_used_as_booleans():
    with pytest.raises(TypeError, match="conditional"):

        @workflow
        def branchy(a: int) -> int:
            if square(x=a):
                return a
            return 0


def test_promises_cannot_be_iterated():
    with pytest.raises(TypeError, match="map task"):

        @workflow
        def fan_out(values: list[int]) -> int:
            return total(values=[square(x=v) for v in values])


def test_wrong_number_of_outputs():
    with pytest.raises(TypeError, match="declares no outputs"):

        @workflow
        def leaky(a: int) -> None:
            return square(x=a)
