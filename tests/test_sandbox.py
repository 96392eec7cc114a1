"""The sandbox that runs generated task bodies: the reference passes, and every hostile or broken body fails
that task only: it never reads a token, writes outside its box, starts a process, or outlives its timeout."""

from __future__ import annotations

import json
import os
import time

import pytest

from flyte_llama_common.schemas import Task
from training.evaluation import execution, sandbox

EXAMPLE = '''from flytekit import task, workflow


@task
def square(x: int) -> int:
    """Square it."""
    y = x * x
    return y


@workflow
def wf(x: int = 7) -> int:
    return square(x=x)
'''
BODY = "    y = x * x\n    return y\n"
SECRET = "hf_do_not_leak_0123456789"


def square_task() -> Task:
    lo = EXAMPLE.index(BODY)
    hi = lo + len(BODY)
    return Task(
        "exec-0000", "r", "a.py", "python", execution.KIND, EXAMPLE[:lo], EXAMPLE[hi:], BODY,
        (7, 8), (lo, hi), (0, len(EXAMPLE)), function="square", reference_outputs=json.dumps({"wf": 49}),
    )  # fmt: skip


def body(*lines: str) -> str:
    return "".join(f"    {line}\n" for line in lines)


@pytest.mark.slow
def test_hostile_and_broken_bodies_fail_their_task_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    outside = tmp_path / "escaped.txt"
    fills = {
        "reference": BODY,
        "writes_inside_its_box": body("open('scratch.txt', 'w').write('ok')", "return x * x"),
        "checks_the_token_is_absent": body("import os", "return 49 if 'HF_TOKEN' not in os.environ else 0"),
        "pass": body("pass"),
        "syntax_error": body("return x *"),
        "infinite_loop": body("while True:", "    pass", "return x"),
        "reads_the_token": body("import os", "return len(os.environ['HF_TOKEN']) * 0 + 49"),
        "writes_outside": body(f"open({str(outside)!r}, 'w').write('x')", "return 49"),
        "removes_outside": body(f"import shutil; shutil.rmtree({str(tmp_path)!r})", "return 49"),
        "exits_the_interpreter": body("import os", "os._exit(0)", "return 49"),
        "raises_system_exit": body("import sys", "sys.exit(0)", "return 49"),
        "forks": body("import os", "os.fork()", "return 49"),
        "starts_a_process": body("import subprocess", "subprocess.run(['true'])", "return 49"),
        "fills_the_disk": body("open('big.bin', 'wb').write(b'0' * (80 * 2**20))", "return 49"),
        "uses_the_network": body(
            "import socket", "socket.create_connection(('1.1.1.1', 53), 2)", "return 49"
        ),
    }
    task = square_task()
    settings = execution.ExecSettings(timeout_s=25, file_mb=16, workers=2, cache_dir=str(tmp_path / "c"))
    started = time.monotonic()
    rows = execution.run_fills(
        [task] * len(fills), {("r", "a.py"): EXAMPLE}, list(fills.values()), settings, "hostile"
    )
    elapsed = time.monotonic() - started
    verdicts = dict(zip(fills, rows, strict=True))
    passed = {name for name, r in verdicts.items() if r["pass_at_1"]}
    assert passed == {"reference", "writes_inside_its_box", "checks_the_token_is_absent"}
    assert verdicts["infinite_loop"]["exec_status"] == "timeout"
    assert verdicts["exits_the_interpreter"]["exec_status"] == "no_result"
    assert verdicts["syntax_error"]["exec_status"] == "load_error"
    assert not outside.exists() and tmp_path.is_dir()
    # The loop was stopped at its timeout, not waited on: the whole batch took about one timeout.
    assert elapsed < 25 * 3


@pytest.mark.slow
def test_a_run_sees_no_secret_and_leaves_no_box(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    probe = EXAMPLE.replace(BODY, body("import os", "print(dict(os.environ))", "return 49"))
    result = sandbox.run_files({"example.py": probe}, {"module": "example.py"}, sandbox.Limits(timeout_s=30))
    assert result.status == "ok" and result.report["workflows"]["wf"]["outputs"] == 49
    assert SECRET not in json.dumps(result.to_dict())
    box = result.extra["box"]
    assert "flyte-llama-box-" in box and not os.path.exists(box)  # the box was deleted


def test_clean_env_keeps_nothing_secret(tmp_path, monkeypatch):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "GITHUB_TOKEN", "AWS_ACCESS_KEY_ID", "PYTHONPATH"):
        monkeypatch.setenv(name, SECRET)
    env = sandbox.clean_env(tmp_path)
    assert SECRET not in json.dumps(env)
    assert env["HOME"] == str(tmp_path) and env["TMPDIR"].startswith(str(tmp_path))


def test_file_names_cannot_leave_the_box():
    with pytest.raises(ValueError, match="inside the box"):
        sandbox.run_files({"../x.py": ""}, {"module": "x.py"})
    with pytest.raises(ValueError, match="inside the box"):
        sandbox.run_files({"/tmp/x.py": ""}, {"module": "x.py"})


def test_isolation_is_probed_and_named():
    level, prefix = sandbox.isolation()
    assert level in ("full", "network", "none")
    assert (level == "none") == (prefix == ())
