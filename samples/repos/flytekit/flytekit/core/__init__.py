"""Core building blocks: tasks, workflows, promises, resources and the type engine."""
