"""The program the sandbox runs (training/evaluation/sandbox.py): load one example file, run its workflows.

Run as `python -s -B exec_runner.py SPEC` inside the box, never imported by the evaluator (stdlib only at
the top; flytekit is imported just before the guard). It reads and deletes SPEC, makes every mount but the
box read-only (when the sandbox gave it a mount namespace), sets its hard resource limits, installs an
audit hook that refuses writes outside the box, sockets, subprocesses and forks, then loads the example as
a module (its `if __name__ == "__main__":` block does not run) and calls each workflow the file defines
whose inputs all have defaults, with no arguments: what `pyflyte run FILE WORKFLOW` does locally with
default inputs. The outputs are made comparable (`canonical`) and written as JSON to the pipe the sandbox
gave it, the only channel it reports on.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import math
import os
import sys
import time
import traceback

MODULE_NAME = "flyte_example_under_test"
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
DENIED = {
    "socket.connect": "network",
    "socket.bind": "network",
    "socket.sendto": "network",
    "socket.sendmsg": "network",
    "socket.getaddrinfo": "network",
    "socket.gethostbyname": "network",
    "subprocess.Popen": "process",
    "os.system": "process",
    "os.exec": "process",
    "os.posix_spawn": "process",
    "os.spawn": "process",
    "os.fork": "process",
    "os.forkpty": "process",
    "os.killpg": "process",
}
# Events whose arguments name paths that get changed: (event, indices of the path arguments).
PATH_EVENTS = {
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.symlink": (1,),
    "os.link": (1,),
    "os.truncate": (0,),
    "os.utime": (0,),
    "shutil.rmtree": (0,),
    "shutil.copyfile": (1,),
    "shutil.copytree": (1,),
    "shutil.move": (0, 1),
}
blocked: list[str] = []
# Run by the runner itself (as root of its own user namespace, before any example code): the box stays
# writable, every other mount becomes read-only, /dev/shm an empty private tmpfs.
READ_ONLY_SCRIPT = r"""
box=$1
mount --bind "$box" "$box" || exit 3
mount -t tmpfs -o size=16m tmpfs /dev/shm 2>/dev/null
while read -r dev mountpoint rest; do
  case "$mountpoint" in /proc|/proc/*|"$box") continue;; esac
  mount -o remount,bind,ro "$mountpoint" 2>/dev/null
done < /proc/self/mounts
mount -o remount,bind,ro / || exit 4
"""


def read_only_outside(root: str) -> bool:
    """Make everything but `root` read-only in this mount namespace; True when / is now read-only."""
    import subprocess

    done = subprocess.run(["sh", "-c", READ_ONLY_SCRIPT, "sh", root], capture_output=True, timeout=30)
    return done.returncode == 0


def set_limits(limits: dict[str, int]) -> None:
    """Hard and soft limits: CPU seconds, address space, file size, open files; no core dumps."""
    import resource

    for kind, value in (
        (resource.RLIMIT_CPU, limits["cpu_s"]),
        (resource.RLIMIT_AS, limits["memory_bytes"]),
        (resource.RLIMIT_FSIZE, limits["file_bytes"]),
        (resource.RLIMIT_NOFILE, limits["open_files"]),
        (resource.RLIMIT_CORE, 0),
    ):
        _, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, value))


def install_guard(root: str) -> None:
    """An audit hook (it cannot be removed once added) that refuses what a task body has no business doing."""
    root = os.path.realpath(root)
    inside = (root, "/dev/null")

    def is_inside(path) -> bool:
        if isinstance(path, int):
            return True  # an already open descriptor
        try:
            real = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return real in inside or real.startswith(root + os.sep)

    def refuse(event: str, why: str) -> None:
        blocked.append(f"{why}:{event}")
        if os.environ.get("SANDBOX_DEBUG"):
            traceback.print_stack()
        raise PermissionError(f"sandbox: {event} is not allowed ({why})")

    def hook(event: str, args: tuple) -> None:
        if event in DENIED:
            refuse(event, DENIED[event])
        elif event == "os.kill" and args and args[0] != os.getpid():
            refuse(event, "process")
        elif event == "open":
            path, _, flags = (*tuple(args), None, None, 0)[:3]
            if isinstance(flags, int) and flags & WRITE_FLAGS and not is_inside(path):
                refuse(event, "write outside the box")
        elif event in PATH_EVENTS:
            for i in PATH_EVENTS[event]:
                if i < len(args) and args[i] is not None and not is_inside(args[i]):
                    refuse(event, "write outside the box")

    sys.addaudithook(hook)


def canonical(value, depth: int = 0):
    """A JSON value that two runs of a deterministic workflow produce identically (floats to 9 digits,
    files by content hash, frames as columns + rows); anything else raises TypeError."""
    if depth > 20:
        raise TypeError("output nested too deep to compare")
    kind = type(value)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return round(value, 9) if math.isfinite(value) else repr(value)
    if isinstance(value, bytes):
        return {"bytes_sha256": hashlib.sha256(value).hexdigest()}
    if isinstance(value, (list, tuple)):
        return [canonical(v, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((canonical(v, depth + 1) for v in value), key=repr)
    if isinstance(value, dict):
        return {str(k): canonical(v, depth + 1) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return {"dataclass": kind.__qualname__, "fields": canonical(dataclasses.asdict(value), depth + 1)}
    if hasattr(value, "_value_") and hasattr(value, "_name_"):  # an Enum member
        return {"enum": kind.__qualname__, "value": canonical(value._value_, depth + 1)}
    if name.startswith("pandas.") and hasattr(value, "to_dict"):
        frame = value.to_frame() if hasattr(value, "to_frame") and not hasattr(value, "columns") else value
        return {
            "frame": [str(c) for c in frame.columns],
            "rows": canonical(frame.astype(object).values.tolist(), depth + 1),
        }
    if name.startswith("numpy.") and hasattr(value, "tolist"):
        return canonical(value.tolist(), depth + 1)
    if kind.__qualname__ == "StructuredDataset":
        import pandas as pd

        return canonical(value.open(pd.DataFrame).all(), depth + 1)
    if kind.__qualname__ in ("FlyteFile", "FlyteDirectory") or isinstance(value, os.PathLike):
        return {"files": tree_hashes(os.fspath(value))}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = repr(value)
    if " at 0x" in text:
        raise TypeError(f"output of type {name} has no comparable form")
    return {"type": name, "repr": text}


def tree_hashes(path: str) -> dict[str, str] | str:
    """sha256 of a file, or {relative path: sha256} of a folder's files (paths differ between runs)."""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    found = {}
    for top, _, names in os.walk(path):
        for n in names:
            full = os.path.join(top, n)
            with open(full, "rb") as f:
                found[os.path.relpath(full, path)] = hashlib.sha256(f.read()).hexdigest()
    return dict(sorted(found.items()))


def workflows_of(module) -> list[tuple[str, object]]:
    """(name, workflow) for every flytekit workflow the file itself defines, in definition order."""
    from flytekit.core.workflow import WorkflowBase

    return [
        (attr, obj)
        for attr, obj in vars(module).items()
        if isinstance(obj, WorkflowBase) and obj.name.rsplit(".", 1)[0] == MODULE_NAME
    ]


def required_inputs(workflow) -> list[str]:
    interface = workflow.python_interface
    defaults = interface.default_inputs_as_kwargs
    return [k for k in interface.inputs if k not in defaults]


def run(spec: dict) -> dict:
    """Load the example and run its workflows; the report the sandbox reads."""
    report: dict = {"status": "ok", "workflows": {}}
    started = time.monotonic()
    path = os.path.join(os.getcwd(), spec["module"])
    try:
        loader_spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[MODULE_NAME] = module
        loader_spec.loader.exec_module(module)
    except ModuleNotFoundError as err:
        return {**report, "status": "import_error", "missing_module": err.name, "error": str(err)[:500]}
    except BaseException as err:  # the file itself fails to load: a syntax error, an exception, an exit
        return {**report, "status": "load_error", "error": _describe(err)}
    report["load_s"] = round(time.monotonic() - started, 3)
    wanted = spec.get("workflows")
    for name, workflow in workflows_of(module):
        if wanted is not None and name not in wanted:
            continue
        missing = required_inputs(workflow)
        if missing:
            report["workflows"][name] = {"skipped": "needs_inputs", "inputs": missing}
            continue
        t0 = time.monotonic()
        try:
            outputs = workflow()
        except BaseException as err:  # a task body may raise anything, SystemExit too
            report["workflows"][name] = {"error": _describe(err)}
            continue
        try:
            report["workflows"][name] = {"outputs": canonical(outputs), "s": round(time.monotonic() - t0, 3)}
        except BaseException as err:
            report["workflows"][name] = {"unrepresentable": _describe(err)}
    report["blocked"] = blocked
    return report


def _describe(err: BaseException) -> str:
    lines = traceback.format_exception_only(type(err), err)
    return "".join(lines).strip()[-800:]


def main() -> None:
    spec_path = sys.argv[1]
    with open(spec_path) as f:
        spec = json.load(f)
    os.remove(spec_path)
    root = os.path.dirname(os.path.realpath(spec_path))
    # The box, and the project roots its sibling imports need (`pyflyte run` from the project's root); never
    # the runner's own folder.
    sys.path[0] = root
    sys.path[1:1] = [os.path.join(root, folder) for folder in spec.get("sys_path") or []]
    read_only = bool(spec.get("private_mounts")) and read_only_outside(root)
    os.chdir(root)  # re-enter the box through its new (writable) mount, not the old read-only one
    set_limits(spec["limits"])
    out = os.fdopen(spec["result_fd"], "w")
    # The harness's own library, trusted: imported before the guard so its start-up probes pass.
    with contextlib.suppress(ImportError):
        import flytekit  # noqa: F401
    install_guard(root)
    report = run(spec)
    report["read_only_outside"] = read_only
    report["blocked"] = blocked
    out.write(json.dumps(report, default=str))
    out.flush()
    os._exit(0)  # no atexit handlers of the example's libraries: the report is all that counts


if __name__ == "__main__":
    main()
