"""Compute resources requested by a task, in Kubernetes quantity notation."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL_SUFFIXES = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_QUANTITY = re.compile(r"^(?P<number>\d+(\.\d+)?)(?P<suffix>[A-Za-z]*)$")
_K8S_NAMES = {
    "cpu": "cpu",
    "mem": "memory",
    "gpu": "nvidia.com/gpu",
    "ephemeral_storage": "ephemeral-storage",
}


def parse_memory(quantity: str) -> int:
    """Return the number of bytes in a memory quantity such as ``"500Mi"`` or ``"2G"``."""
    match = _QUANTITY.match(quantity.strip())
    if match is None:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    number = float(match["number"])
    suffix = match["suffix"]
    if suffix == "":
        return int(number)
    if suffix in _BINARY_SUFFIXES:
        return int(number * _BINARY_SUFFIXES[suffix])
    if suffix in _DECIMAL_SUFFIXES:
        return int(number * _DECIMAL_SUFFIXES[suffix])
    raise ValueError(f"unknown memory suffix {suffix!r} in {quantity!r}")


def parse_cpu(quantity: str) -> float:
    """Return the number of cores in a CPU quantity such as ``"2"`` or ``"500m"``."""
    text = quantity.strip()
    if text.endswith("m"):
        return int(text[:-1]) / 1000
    return float(text)


@dataclass(frozen=True)
class Resources:
    """CPU, memory, GPU and ephemeral storage for one task container.

    Every field is optional: ``None`` means "use the platform default".
    """

    cpu: str | None = None
    mem: str | None = None
    gpu: str | None = None
    ephemeral_storage: str | None = None

    def __post_init__(self) -> None:
        # Validate eagerly so a typo fails at import time, not when the task is scheduled.
        if self.cpu is not None:
            parse_cpu(self.cpu)
        if self.mem is not None:
            parse_memory(self.mem)
        if self.ephemeral_storage is not None:
            parse_memory(self.ephemeral_storage)
        if self.gpu is not None and not self.gpu.isdigit():
            raise ValueError(f"gpu must be a whole number, got {self.gpu!r}")

    def to_dict(self) -> dict[str, str]:
        """The fields that are set, keyed by their Kubernetes names."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {_K8S_NAMES[name]: value for name, value in values.items() if value is not None}

    def fits_within(self, limits: Resources) -> bool:
        """True when every quantity requested here is at most the corresponding limit."""
        if self.cpu and limits.cpu and parse_cpu(self.cpu) > parse_cpu(limits.cpu):
            return False
        if self.mem and limits.mem and parse_memory(self.mem) > parse_memory(limits.mem):
            return False
        return not (self.gpu and limits.gpu and int(self.gpu) > int(limits.gpu))
