"""Workflows

A workflow connects tasks by passing the outputs of one as the inputs of another. Flyte reads the
workflow body once to build a graph; tasks that do not depend on each other can then run in
parallel on the cluster.
"""

from flytekit import task, workflow


@task
def slope(x: list[int], y: list[int]) -> float:
    """Least-squares slope of y over x."""
    n = len(x)
    mean_x, mean_y = sum(x) / n, sum(y) / n
    covariance = sum((xi - mean_x) * (yi - mean_y) for xi, yi in zip(x, y, strict=True))
    variance = sum((xi - mean_x) ** 2 for xi in x)
    return covariance / variance


@task
def intercept(x: list[int], y: list[int], slope_value: float) -> float:
    """The intercept of the line through the means with the given slope."""
    return sum(y) / len(y) - slope_value * sum(x) / len(x)


@workflow
def simple_wf(x: list[int], y: list[int]) -> float:
    """`intercept` consumes the output of `slope`, so Flyte runs it second."""
    m = slope(x=x, y=y)
    return intercept(x=x, y=y, slope_value=m)


if __name__ == "__main__":
    print(simple_wf(x=[-3, 0, 3], y=[7, 4, -2]))
