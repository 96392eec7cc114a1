import pytest
from flytekit import CronSchedule, LaunchPlan, task, workflow


@task
def greet(name: str, punctuation: str) -> str:
    return f"Hello, {name}{punctuation}"


@workflow
def greeting(name: str, punctuation: str = "!") -> str:
    return greet(name=name, punctuation=punctuation)


def test_default_and_fixed_inputs():
    plan = LaunchPlan.get_or_create(
        greeting, name="polite", default_inputs={"name": "world"}, fixed_inputs={"punctuation": "."}
    )
    assert plan() == "Hello, world."
    assert plan(name="Flyte") == "Hello, Flyte."
    with pytest.raises(ValueError, match="fixed"):
        plan(punctuation="?")


def test_get_or_create_returns_the_same_plan():
    first = LaunchPlan.get_or_create(greeting, name="same", default_inputs={"name": "a"})
    assert LaunchPlan.get_or_create(greeting, name="same", default_inputs={"name": "a"}) is first
    with pytest.raises(ValueError, match="different settings"):
        LaunchPlan.get_or_create(greeting, name="same", default_inputs={"name": "b"})


def test_cron_schedules():
    assert CronSchedule("@daily").normalized == "0 0 * * *"
    with pytest.raises(ValueError, match="expected 5"):
        CronSchedule("0 0 *")
