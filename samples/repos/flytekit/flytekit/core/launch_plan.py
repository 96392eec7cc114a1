"""Launch plans: a workflow plus the inputs and schedule it is launched with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from flytekit.core.workflow import WorkflowBase

_CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
_CRON_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
}


@dataclass(frozen=True)
class CronSchedule:
    """A five-field cron expression, or one of the aliases such as ``@daily``."""

    expression: str
    kickoff_time_input: str | None = None

    def __post_init__(self) -> None:
        parts = self.normalized.split()
        if len(parts) != len(_CRON_FIELDS):
            raise ValueError(
                f"cron expression {self.expression!r} has {len(parts)} fields; expected {len(_CRON_FIELDS)} "
                f"({', '.join(_CRON_FIELDS)})"
            )

    @property
    def normalized(self) -> str:
        return _CRON_ALIASES.get(self.expression, self.expression)


@dataclass
class LaunchPlan:
    """Runs ``workflow`` with ``default_inputs`` (overridable) and ``fixed_inputs`` (not overridable)."""

    name: str
    workflow: WorkflowBase
    default_inputs: dict[str, Any] = field(default_factory=dict)
    fixed_inputs: dict[str, Any] = field(default_factory=dict)
    schedule: CronSchedule | None = None

    _cache: ClassVar[dict[str, LaunchPlan]] = {}

    def __post_init__(self) -> None:
        declared = set(self.workflow.interface.inputs)
        for kind, values in (("default", self.default_inputs), ("fixed", self.fixed_inputs)):
            unknown = sorted(set(values) - declared)
            if unknown:
                raise ValueError(f"launch plan {self.name}: {kind} inputs {unknown} are not workflow inputs")
        kickoff = self.schedule.kickoff_time_input if self.schedule else None
        if kickoff is not None and kickoff not in declared:
            raise ValueError(f"launch plan {self.name}: kickoff input {kickoff!r} is not a workflow input")

    @classmethod
    def get_or_create(
        cls,
        workflow: WorkflowBase,
        name: str | None = None,
        default_inputs: dict[str, Any] | None = None,
        fixed_inputs: dict[str, Any] | None = None,
        schedule: CronSchedule | None = None,
    ) -> LaunchPlan:
        """Return the launch plan called ``name``, creating it on first use.

        Asking again for an existing name with different settings is an error, because two
        definitions of one launch plan would race each other at registration.
        """
        name = name or workflow.name
        plan = cls(name, workflow, dict(default_inputs or {}), dict(fixed_inputs or {}), schedule)
        existing = cls._cache.get(name)
        if existing is None:
            cls._cache[name] = plan
            return plan
        if existing != plan:
            raise ValueError(f"launch plan {name!r} already exists with different settings")
        return existing

    def __call__(self, **kwargs: Any) -> Any:
        overridden = sorted(set(kwargs) & set(self.fixed_inputs))
        if overridden:
            raise ValueError(f"launch plan {self.name}: inputs {overridden} are fixed, not overridable")
        return self.workflow(**{**self.default_inputs, **kwargs, **self.fixed_inputs})
