"""Dataclasses

Group related inputs into a dataclass instead of passing a long list of arguments. Flyte converts
each field with the transformer for its type, so nested lists, maps and files all work.
"""

from dataclasses import dataclass, field

from flytekit import task, workflow


@dataclass
class Hyperparameters:
    learning_rate: float = 3e-4
    batch_size: int = 32
    epochs: int = 3
    layers: list[int] = field(default_factory=lambda: [128, 64])


@dataclass
class TrainingResult:
    final_loss: float
    steps: int


@task
def train(params: Hyperparameters, dataset_size: int) -> TrainingResult:
    """A stand-in for a real training loop: the loss decays with every step."""
    steps = params.epochs * (dataset_size // params.batch_size)
    loss = 2.0
    for _ in range(steps):
        loss *= 1 - params.learning_rate * 10
    return TrainingResult(final_loss=round(loss, 4), steps=steps)


@workflow
def training_wf(dataset_size: int = 1024) -> TrainingResult:
    return train(params=Hyperparameters(), dataset_size=dataset_size)


if __name__ == "__main__":
    print(training_wf())
