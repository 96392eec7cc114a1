"""What counts as a commit SHA, a Hub repo id and a local path: decided here once for every stage."""

from __future__ import annotations

import re
from pathlib import Path

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
# The Hub's own rule (huggingface_hub.utils.validate_repo_id) plus what it checks only on the server:
# no "--" or "..", no ".git" suffix, names start and end with a letter or digit, at most 96 characters.
_HUB_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_HUB_ID = re.compile(rf"^(?:{_HUB_NAME}/)?{_HUB_NAME}$")


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_safe_name(value: object) -> bool:
    """A corpus or repo name that can become one file/folder name: letters, digits, '.', '_', '-', starting
    with a letter or digit, never '..' (so it cannot climb out of the folder it is joined to)."""
    return isinstance(value, str) and bool(_NAME.match(value)) and ".." not in value


def is_sha(value: object) -> bool:
    """A full 40-hex lowercase git commit SHA."""
    return isinstance(value, str) and bool(SHA_RE.match(value))


def hub_id_problem(value: str, *, namespaced: bool = True) -> str | None:
    """Why `value` is not a Hub repo id the Hub accepts (None when it is)."""
    if not isinstance(value, str) or not value:
        return "is empty"
    if namespaced and value.count("/") != 1:
        return "must be ORG/NAME (one '/')"
    if "--" in value or ".." in value:
        return "may not contain '--' or '..'"
    if value.endswith(".git"):
        return "may not end in '.git'"
    if not _HUB_ID.match(value):
        return (
            "may use only letters, digits, '-', '_' and '.', start and end each part with a letter or digit, "
            "and be at most 96 characters per part"
        )
    return None


def is_local_path(value: object) -> bool:
    """An existing file or folder on this machine (what a Hub id never is)."""
    return isinstance(value, str | Path) and bool(str(value)) and Path(str(value)).expanduser().exists()


def is_hub_id(value: object) -> bool:
    """A Hub repo id (ORG/NAME or a bare legacy NAME) that is not also an existing local path."""
    return (
        isinstance(value, str)
        and not is_local_path(value)
        and hub_id_problem(value, namespaced="/" in value) is None
    )
