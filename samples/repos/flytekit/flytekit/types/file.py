"""FlyteFile: a file that is uploaded after one task and downloaded before the next."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flytekit.core.type_engine import Literal, TypeEngine, TypeTransformer, TypeTransformerFailedError


class FlyteFile(os.PathLike):
    """A local path, plus the remote location it is stored at between tasks."""

    def __init__(self, path: str | os.PathLike[str], remote_path: str | None = None) -> None:
        self.path = os.fspath(path)
        self.remote_path = remote_path

    def __fspath__(self) -> str:
        return self.path

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FlyteFile):
            return NotImplemented
        return (self.path, self.remote_path) == (other.path, other.remote_path)

    def __hash__(self) -> int:
        return hash((self.path, self.remote_path))

    def __repr__(self) -> str:
        return f"FlyteFile({self.path!r}, remote_path={self.remote_path!r})"

    @property
    def extension(self) -> str:
        return Path(self.path).suffix.lstrip(".")

    def read_text(self, encoding: str = "utf-8") -> str:
        return Path(self.path).read_text(encoding=encoding)


class FlyteFileTransformer(TypeTransformer[FlyteFile]):
    """Files travel as their URI: the remote path when there is one, else the local path."""

    def __init__(self) -> None:
        super().__init__("blob", FlyteFile)

    def to_literal(self, value: Any, python_type: Any) -> Literal:
        if isinstance(value, (str, os.PathLike)) and not isinstance(value, FlyteFile):
            value = FlyteFile(value)
        if not isinstance(value, FlyteFile):
            raise TypeTransformerFailedError(f"expected a FlyteFile or a path, got {type(value).__name__}")
        return Literal("scalar", {"uri": value.remote_path or value.path, "local": value.path})

    def to_python_value(self, literal: Literal, expected_type: Any) -> FlyteFile:
        uri, local = literal.value["uri"], literal.value["local"]
        return FlyteFile(local, remote_path=uri if uri != local else None)


TypeEngine.register(FlyteFileTransformer())
