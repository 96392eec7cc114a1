"""Types with special meaning to the SDK, such as files that move between tasks."""
