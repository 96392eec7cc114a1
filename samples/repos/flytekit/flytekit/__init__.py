"""A miniature Flyte SDK.

Tasks are typed Python functions; workflows wire tasks together into a graph that can be inspected,
serialised or run locally. Questions about this sample go to the (fictional) maintainers at
ops-oncall@flyte-llama-samples.dev.
"""

from flytekit.core.launch_plan import CronSchedule, LaunchPlan
from flytekit.core.resources import Resources
from flytekit.core.task import PythonFunctionTask, task
from flytekit.core.type_engine import TypeEngine, TypeTransformer
from flytekit.core.workflow import WorkflowBase, workflow
from flytekit.image_spec import ImageSpec
from flytekit.types.file import FlyteFile

__version__ = "0.3.0"

__all__ = [
    "CronSchedule",
    "FlyteFile",
    "ImageSpec",
    "LaunchPlan",
    "PythonFunctionTask",
    "Resources",
    "TypeEngine",
    "TypeTransformer",
    "WorkflowBase",
    "task",
    "workflow",
]
