"""Write files and folders so that readers never see a half-written one (shared by every stage).

Files: `write_text_atomic` / `write_bytes_atomic` (or `atomic_path` for writers that want a path, such as
Parquet) write a temp file beside the target, fsync it and `os.replace` it over the target, so a crash
leaves the old file or the new one, never a mix. The temp file is created with the umask's mode, like a
plain `open`, so a published file is as readable as any other.

Folders: `staging_dir` makes a temp folder beside its target, named after the process that owns it (host,
pid namespace, pid and start time), so that a later run can tell the leftovers of a killed build from the
folder of a build that is still running (`remove_stale` removes only the former); `replace_dir` swaps the
finished folder in; `staged_dir` is the whole sequence as one `with` block.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)
_PROC = Path("/proc")
_OWNER = r"(?P<owner>[A-Za-z0-9.-]+_\d+_\d+_\d+)-[a-z0-9_]+"  # staging_dir's name after ".tmp-"
_LEGACY = r"tmp-[a-z0-9_]{8}"  # plain mkdtemp names of earlier versions: their owner is unknown


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temp path beside `path` to write to; when the block ends without error it is fsynced and renamed
    over `path` (the block may check the file first and raise to keep the old one). On error it is removed.

    The name `.<name>.tmp-<random>` starts with a dot, so folder scans that skip hidden files skip it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a crash once the folder is synced
        _fsync(path.parent)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temp file beside it (never half-written, see atomic_path)."""
    with atomic_path(path) as tmp:
        # O_EXCL: the temp name is ours alone; mode 0o666 is narrowed by the umask, as open() does.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` through a temp file beside it (never half-written)."""
    write_bytes_atomic(path, text.encode("utf-8"))


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


@contextlib.contextmanager
def staged_dir(target: str | os.PathLike) -> Iterator[Path]:
    """`with staged_dir(out) as tmp:` write the folder into `tmp`; when the block ends without error it
    replaces `out` whole (replace_dir), on error it is removed. Leftovers of killed runs are removed first."""
    target = Path(target)
    remove_stale(target)
    tmp = staging_dir(target)
    try:
        yield tmp
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
