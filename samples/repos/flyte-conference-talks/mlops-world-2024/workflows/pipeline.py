"""The pipeline from "Reproducible training pipelines" (MLOps World 2024).

Every step is cached and every input that determines the result is explicit, so running the
workflow twice with the same inputs does the work once.
"""

import hashlib
import random
from dataclasses import dataclass

from flytekit import task, workflow

CACHE_VERSION = "2024.06"


@dataclass
class Split:
    train: list[float]
    test: list[float]


@task(cache=True, cache_version=CACHE_VERSION)
def load(revision: str, size: int) -> list[float]:
    """Pretend to download a pinned dataset revision; the revision seeds the data."""
    if not revision:
        raise ValueError("a dataset revision is required: pass a commit SHA or snapshot id")
    seed = int(hashlib.sha256(revision.encode()).hexdigest()[:8], 16)
    rng = random.Random(seed)
    return [rng.gauss(0.0, 1.0) for _ in range(size)]


@task(cache=True, cache_version=CACHE_VERSION)
def split(values: list[float], test_fraction: float) -> Split:
    """Deterministic split: the last fraction of the rows is the test set."""
    cut = int(len(values) * (1 - test_fraction))
    return Split(train=values[:cut], test=values[cut:])


@task(cache=True, cache_version=CACHE_VERSION)
def fit_mean(data: Split) -> float:
    """The simplest model there is: predict the training mean."""
    return sum(data.train) / len(data.train)


@task
def evaluate(data: Split, prediction: float) -> float:
    """Mean squared error on the test set."""
    return sum((x - prediction) ** 2 for x in data.test) / len(data.test)


@workflow
def pipeline(revision: str, size: int = 1000, test_fraction: float = 0.2) -> float:
    data = split(values=load(revision=revision, size=size), test_fraction=test_fraction)
    return evaluate(data=data, prediction=fit_mean(data=data))


if __name__ == "__main__":
    print(pipeline(revision="3f2a9c1"))
