"""Named outputs

By default a task's single output is called ``o0``. Returning a ``NamedTuple`` gives every output
a meaningful name, which shows up in the UI and makes workflows easier to read.
"""

from typing import NamedTuple

from flytekit import task, workflow


class Summary(NamedTuple):
    minimum: float
    maximum: float
    mean: float


@task
def summarize(values: list[float]) -> Summary:
    """Three outputs, each addressable by name downstream."""
    return Summary(minimum=min(values), maximum=max(values), mean=sum(values) / len(values))


@task
def spread(low: float, high: float) -> float:
    return high - low


@workflow
def summary_wf(values: list[float]) -> float:
    stats = summarize(values=values)
    return spread(low=stats.minimum, high=stats.maximum)


if __name__ == "__main__":
    print(summary_wf(values=[2.5, 9.0, 4.0]))
