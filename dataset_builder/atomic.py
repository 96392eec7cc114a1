"""Move a finished folder into place so readers never see a half-written one (shared by every stage).

Temp folders are made beside their target by `staging_dir`, named after the process that owns them (host,
pid namespace, pid and start time), so that a later run can tell the leftovers of a killed build from the
folder of a build that is still running: `remove_stale` removes only the former.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)
_PROC = Path("/proc")
_OWNER = r"(?P<owner>[A-Za-z0-9.-]+_\d+_\d+_\d+)-[a-z0-9_]+"  # staging_dir's name after ".tmp-"
_LEGACY = r"tmp-[a-z0-9_]{8}"  # plain mkdtemp names of earlier versions: their owner is unknown


def replace_dir(new: Path, target: Path) -> None:
    """Swap the complete folder `new` into `target` with renames on the same filesystem.

    An existing `target` is renamed aside first and deleted only after `new` is in place, so a crash at any
    point leaves either the old folder or the new one at `target` (or the old one beside it), never a mix.
    """
    new, target = Path(new), Path(target)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{new.name}")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    new.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _start_time(pid: int) -> int | None:
    """Start time of a live process (clock ticks since boot, /proc/PID/stat field 22); None if it is gone."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name in parentheses may hold spaces
    if not fields or fields[0] in ("Z", "X"):  # a zombie is dead, only not reaped yet
        return None
    return int(fields[19])


def _where() -> str:
    """Which pid space a pid belongs to: host name and pid namespace (containers share hosts and disks)."""
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:63] or "host"
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{host}_{namespace}"


def owner_tag(pid: int | None = None) -> str:
    """`host_namespace_pid_starttime` of a process (default: this one), as staging_dir names it."""
    pid = os.getpid() if pid is None else pid
    return f"{_where()}_{pid}_{_start_time(pid) or 0}"


def _owner_gone(owner: str) -> bool:
    """True only when the owner is certainly dead: same pid space, and its pid is free or now names a
    process started at another time. Owners on other hosts or in other containers count as alive."""
    where, pid, start = owner.rsplit("_", 2)
    if where != _where():
        return False
    if _PROC.is_dir():
        now = _start_time(int(pid))
        return now is None or (start != "0" and now != int(start))
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def staging_dir(target: Path) -> Path:
    """A new empty folder beside `target` (same filesystem, so replace_dir can rename it into place),
    named after this process so that remove_stale never takes it for a leftover while we run."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{owner_tag()}-", dir=target.parent))


def remove_stale(target: Path) -> list[Path]:
    """Remove the temp folders beside `target` that builds which no longer run left behind, and return them.

    Only this project's names count (`.<name>.tmp-<owner>-*` and replace_dir's `.<name>.old-*`), and only
    when their owner is certainly gone, so a concurrent build's folder is never touched. An old copy whose
    swap was cut short between its two renames is the only copy of `target`: it is put back, not removed.
    Each action is logged; folders of earlier versions (no owner in the name) are only reported.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return []
    name = re.escape(target.name)
    tmp_re = re.compile(rf"\.{name}\.tmp-{_OWNER}")
    old_re = re.compile(rf"\.{name}\.old-\.{name}\.tmp-{_OWNER}")
    legacy_re = re.compile(rf"\.{name}\.(?:old-\.{name}\.)?{_LEGACY}")
    entries = sorted(p for p in target.parent.iterdir() if p.is_dir() and not p.is_symlink())
    removed: list[Path] = []
    for path in entries:  # old copies first: one of them may have to become `target` again
        match = old_re.fullmatch(path.name)
        if match is None or not _owner_gone(match["owner"]):
            continue
        if not target.exists() and not target.is_symlink():
            path.rename(target)
            log.warning("restored %s from %s, left by a build stopped while replacing it", target, path)
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    for path in entries:
        match = tmp_re.fullmatch(path.name)
        if match is not None and _owner_gone(match["owner"]):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    for path in removed:
        if path.exists():
            log.warning("could not remove %s, left by a build that no longer runs: remove it by hand", path)
        else:
            log.warning("removed %s, left by a build that no longer runs", path)
    for path in entries:
        if legacy_re.fullmatch(path.name):
            log.warning("%s looks left over from an earlier build: remove it if no build is running", path)
    return [p for p in removed if not p.exists()]
