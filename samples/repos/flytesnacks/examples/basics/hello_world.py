"""Hello, World!

The smallest useful Flyte program: one task and one workflow that calls it.

A task is a Python function decorated with ``@task``. Its type annotations are not optional: Flyte
uses them to check, before anything runs, that every task receives the kind of data it expects.
"""

from flytekit import task, workflow


@task
def say_hello(name: str) -> str:
    """Return a greeting. Tasks are ordinary functions, so this can be unit-tested directly."""
    return f"Hello, {name}!"


@workflow
def hello_world_wf(name: str = "World") -> str:
    """A workflow wires tasks together. Inputs must be passed by keyword."""
    return say_hello(name=name)


if __name__ == "__main__":
    # Running the file executes the workflow locally, in this process.
    print(hello_world_wf())
    print(hello_world_wf(name="Flyte"))
