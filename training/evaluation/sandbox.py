"""Run code a model wrote, never in the evaluator's process: one subprocess per run, boxed in.

Each run gets
- a fresh temporary working directory (also its HOME and TMPDIR), deleted afterwards;
- an environment built from nothing but PATH, locale and the box's own folders, so no token or credential
  (`HF_TOKEN`, `AWS_*`, `GITHUB_TOKEN`, …) can be read;
- resource limits (hard and soft) set by the runner before the code is loaded: CPU seconds, address space,
  size of any file written, open files (in the new user namespace the code cannot raise them again);
- a wall-clock timeout, after which the whole process group is killed (children included);
- where the OS allows (`unshare`, in a new user namespace so no privilege is needed): a new network
  namespace (no interface but a downed loopback: no connection can be made), a new mount namespace in which
  every mount but the box is read-only (nothing outside it can be written, native code included), and a
  new PID namespace (when the run ends, everything it started dies with it);
- inside the interpreter, an audit hook (training/evaluation/exec_runner.py, installed before the code is
  loaded) that refuses writes outside the box, sockets, subprocesses and forks.

The audit hook is Python-level defence in depth: the rlimits, the namespace and the deleted folder are what
hold when it is not enough. For untrusted models at scale, run the whole evaluation in a container too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

RUNNER = Path(__file__).with_name("exec_runner.py")
RESULT_FILE_ENV = "FLYTE_LLAMA_SANDBOX_RESULT_FD"
# What the child may see of the parent's environment: nothing secret, nothing that changes Python's path.
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TZ")


@dataclass(frozen=True)
class Limits:
    """Per-run limits. `timeout_s` is wall clock; `cpu_s` CPU time (RLIMIT_CPU); `memory_mb` address space
    (RLIMIT_AS: numpy and pandas need ~1 GB of it); `file_mb` the largest file the code may write."""

    timeout_s: float = 60.0
    cpu_s: int = 120
    memory_mb: int = 4096
    file_mb: int = 64
    open_files: int = 256


@dataclass
class RunResult:
    """What one sandboxed run did. `status`: "ok" (the runner reported), "timeout", "killed" (a signal,
    e.g. SIGXCPU / SIGXFSZ / SIGKILL), or "no_result" (the process ended without reporting: `os._exit`,
    a crash). `report` is the runner's JSON report when there is one."""

    status: str
    returncode: int | None
    wall_s: float
    report: dict[str, Any] | None = None
    stderr_tail: str = ""
    isolation: str = "none"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Tried in order: new user + network + mount + PID namespaces (the runner then makes every mount but the box
# read-only, and the run's PID 1 takes all its children down with it), then network only, then nothing.
ISOLATION_LEVELS = (
    ("full", ("--user", "--map-root-user", "--net", "--mount", "--pid", "--fork", "--kill-child")),
    ("network", ("--user", "--map-root-user", "--net")),
    ("network", ("--net",)),
)


@cache
def isolation() -> tuple[str, tuple[str, ...]]:
    """("full" | "network" | "none", the command prefix that gives it) on this machine, probed once."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return "none", ()
    for level, flags in ISOLATION_LEVELS:
        try:
            done = subprocess.run([unshare, *flags, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return level, (unshare, *flags)
    return "none", ()


def clean_env(box: Path) -> dict[str, str]:
    """The child's environment: a few harmless variables, HOME/TMPDIR inside the box, nothing else."""
    env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
    env.update(
        HOME=str(box),
        TMPDIR=str(box / "tmp"),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONHASHSEED="0",  # same hash order every run: outputs that iterate a set stay comparable
        MPLBACKEND="Agg",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        FLYTE_SDK_LOGGING_LEVEL="40",
    )
    return env


def run_files(files: dict[str, str], spec: dict[str, Any], limits: Limits = Limits()) -> RunResult:
    """Write `files` (relative name → text) into a fresh box, run the runner on `spec` there, delete the box.

    `spec` is the runner's instructions (exec_runner.py: which module to load, which workflows to call);
    it reaches the runner as a file it reads and deletes before any other code runs."""
    for name in files:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ValueError(f"sandbox file name {name!r} must stay inside the box")
    box = Path(tempfile.mkdtemp(prefix="flyte-llama-box-"))
    try:
        (box / "tmp").mkdir()
        for name, text in files.items():
            (box / name).parent.mkdir(parents=True, exist_ok=True)
            (box / name).write_text(text, encoding="utf-8")
        level, prefix = isolation()
        read_fd, write_fd = os.pipe()
        limits_spec = {
            "cpu_s": limits.cpu_s,
            "memory_bytes": limits.memory_mb * 2**20,
            "file_bytes": limits.file_mb * 2**20,
            "open_files": limits.open_files,
        }
        spec = {**spec, "result_fd": write_fd, "limits": limits_spec, "private_mounts": level == "full"}
        (box / ".spec.json").write_text(json.dumps(spec))
        # -s: no user site-packages; -B: no .pyc written. Not -I: it would also drop PYTHONHASHSEED, and the
        # environment is already this module's own (clean_env).
        command = [*prefix, sys.executable, "-s", "-B", str(RUNNER), str(box / ".spec.json")]
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                command,
                cwd=box,
                env=clean_env(box),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(write_fd,),
                start_new_session=True,  # its own process group: a timeout kills every child too
            )
        finally:
            os.close(write_fd)
        status, returncode, stderr, report_text = _wait(proc, read_fd, limits.timeout_s)
        wall = time.monotonic() - start
    finally:
        shutil.rmtree(box, ignore_errors=True)
    report = None
    if report_text:
        try:
            report = json.loads(report_text)
        except json.JSONDecodeError:
            report = None
    if status == "exited":
        status = "ok" if report is not None else "no_result"
    return RunResult(
        status=status,
        returncode=returncode,
        wall_s=round(wall, 3),
        report=report,
        stderr_tail=stderr[-2000:],
        isolation=level,
        extra={"box": str(box)},
    )


def _wait(proc: subprocess.Popen, read_fd: int, timeout_s: float) -> tuple[str, int | None, str, str]:
    """(status, return code, stderr, report text): waits for the run, killing its group at the timeout."""
    import threading

    chunks: list[bytes] = []

    def drain() -> None:
        with os.fdopen(read_fd, "rb") as pipe:
            while block := pipe.read(65536):
                if sum(map(len, chunks)) < 16 * 2**20:  # a report is small; never buffer without end
                    chunks.append(block)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        _, err = proc.communicate(timeout=timeout_s)
        status = "exited" if proc.returncode >= 0 else "killed"
    except subprocess.TimeoutExpired:
        status = "timeout"
        err = b""
    finally:
        _kill_group(proc)
    if status == "timeout":
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            err = b""
    reader.join(timeout=5)
    return status, proc.returncode, (err or b"").decode("utf-8", "replace"), b"".join(chunks).decode()


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the run's whole process group (anything it started, even after it exited itself)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
