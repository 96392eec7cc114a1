"""The KubeCon 2023 demo: a learning-rate sweep that fans out one task per rate."""

import math

from flytekit import Resources, task, workflow


@task(requests=Resources(cpu="500m", mem="256Mi"), retries=2)
def score(learning_rate: float) -> float:
    """A stand-in for training + validation: the loss is lowest near a learning rate of 3e-4."""
    return (math.log10(learning_rate) + 3.5) ** 2


@task
def best(rates: list[float], losses: list[float]) -> float:
    """The rate with the smallest loss; ties go to the smaller rate."""
    return min(zip(losses, rates, strict=True))[1]


# The fan-out is decided when the workflow compiles, so the rates are a constant here; a workflow
# input would need a map task, because its length is only known at run time.
RATES = [1e-4, 3e-4, 1e-3, 3e-3]


@workflow
def sweep() -> float:
    losses = [score(learning_rate=rate) for rate in RATES]
    return best(rates=RATES, losses=losses)


if __name__ == "__main__":
    print(sweep())
