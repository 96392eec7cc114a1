"""ImageSpec: describe a task's container image in Python instead of writing a Dockerfile.

The image tag is derived from the spec's content, so the same spec always names the same image and
any change to packages or base image produces a new tag (and therefore a rebuild).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

DEFAULT_BASE_IMAGE = "python:3.11-slim"


@dataclass(frozen=True)
class ImageSpec:
    """A container image built from a base image plus Python and apt packages."""

    name: str = "flytekit"
    python_version: str = "3.11"
    base_image: str = DEFAULT_BASE_IMAGE
    packages: tuple[str, ...] = ()
    apt_packages: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    registry: str | None = None

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.lower():
            raise ValueError(f"image name must be non-empty and lowercase, got {self.name!r}")
        # Lists are accepted for convenience but stored as tuples so the spec stays hashable.
        object.__setattr__(self, "packages", tuple(self.packages))
        object.__setattr__(self, "apt_packages", tuple(self.apt_packages))

    @property
    def tag(self) -> str:
        """A short tag that changes whenever anything in the spec changes."""
        spec = asdict(self)
        spec.pop("registry")  # pushing the same image to another registry must not change its tag
        canonical = json.dumps(spec, sort_keys=True).encode()
        digest = hashlib.sha256(canonical).digest()
        return base64.b32encode(digest).decode().lower().rstrip("=")[:20]

    def image_name(self) -> str:
        """``[registry/]name:tag``, the reference a task container is started from."""
        prefix = f"{self.registry}/" if self.registry else ""
        return f"{prefix}{self.name}:{self.tag}"

    def with_packages(self, *packages: str) -> ImageSpec:
        """A copy with more Python packages; the original is left unchanged."""
        return replace(self, packages=(*self.packages, *packages))

    def with_apt_packages(self, *packages: str) -> ImageSpec:
        return replace(self, apt_packages=(*self.apt_packages, *packages))

    def to_dockerfile(self) -> str:
        """A Dockerfile equivalent to this spec, for builders that want one."""
        lines = [f"FROM {self.base_image}"]
        if self.apt_packages:
            apt = " ".join(sorted(self.apt_packages))
            lines.append(
                f"RUN apt-get update && apt-get install -y --no-install-recommends {apt} "
                "&& rm -rf /var/lib/apt/lists/*"
            )
        if self.packages:
            lines.append(f"RUN pip install --no-cache-dir {' '.join(sorted(self.packages))}")
        lines.extend(f"ENV {key}={value}" for key, value in sorted(self.env.items()))
        lines.append("WORKDIR /root")
        return "\n".join(lines) + "\n"
