"""constraints.txt: one file of exact pins, shared by the Flyte image and the README's install.

It must pin every distribution exactly, satisfy what pyproject.toml declares (a floor raised without
`make constraints` fails here), and be what the image installs, line for line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11, the version the pins are resolved for

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints.txt"
REGENERATE = "run `make constraints` (uv pip compile) instead of editing constraints.txt by hand"
# The platform the file is resolved for (Makefile `constraints`): the Flyte image's.
IMAGE_ENV = {**default_environment(), "python_version": "3.11", "python_full_version": "3.11.0",
             "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"}  # fmt: skip


def requirement_lines(text: str) -> list[str]:
    """The requirement lines of a requirements file: no comments (uv's `# via` notes), no blanks."""
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def pins() -> dict[str, Version]:
    found: dict[str, Version] = {}
    for line in requirement_lines(CONSTRAINTS.read_text()):
        req = Requirement(line)
        (spec,) = req.specifier  # exactly one specifier, checked in the test below
        found[canonicalize_name(req.name)] = Version(spec.version)
    return found


def declared(exclude: tuple[str, ...] = ("dev",)) -> list[Requirement]:
    """pyproject's direct dependencies + every extra but `exclude` (dev tools never go into the image)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {k: v for k, v in project["optional-dependencies"].items() if k not in exclude}
    deps = [*project["dependencies"], *(d for extra in extras.values() for d in extra)]
    return [Requirement(d) for d in deps]


def test_every_line_is_an_exact_pin_and_names_are_unique():
    lines = requirement_lines(CONSTRAINTS.read_text())
    assert len(lines) > 50, "constraints.txt looks truncated: " + REGENERATE
    names = []
    for line in lines:
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{line!r} is not `name==version`: {REGENERATE}"
        assert "*" not in specs[0].version and not req.marker and not req.extras and not req.url, line
        names.append(canonicalize_name(req.name))
    assert len(names) == len(set(names)), "a distribution is pinned twice: " + REGENERATE


def test_the_header_says_how_to_regenerate():
    head = CONSTRAINTS.read_text().splitlines()[:8]
    assert any("make constraints" in line for line in head)
    assert any("Python 3.11" in line for line in head)


def test_every_declared_dependency_has_a_pin_inside_its_specifier():
    pinned = pins()
    problems = []
    for req in declared():
        if req.marker and not req.marker.evaluate(IMAGE_ENV):
            continue  # e.g. tomli on Python < 3.11: not on the image's Python
        name = canonicalize_name(req.name)
        if name not in pinned:
            problems.append(f"{req} has no pin")
        elif not req.specifier.contains(pinned[name], prereleases=True):
            problems.append(f"{req} is not satisfied by the pin {name}=={pinned[name]}")
    assert not problems, "; ".join(problems) + ": " + REGENERATE


def test_torch_is_pinned_to_the_version_the_tests_run_on():
    # The CPU wheel installed here is 2.13.0+cpu; the image gets PyPI's 2.13.0 (CUDA) from the same pin.
    assert pins()["torch"] == Version("2.13.0")


# --- the image ----------------------------------------------------------------------------------------------
def test_the_image_installs_exactly_the_pins(tmp_path):
    pytest.importorskip("flytekit")
    pytest.importorskip("flytekitplugins.kfpytorch")
    from flytekit.image_spec.default_builder import prepare_python_install

    import workflows

    assert Path(workflows.IMAGE.requirements) == CONSTRAINTS
    assert not workflows.IMAGE.packages, "unpinned packages beside constraints.txt would drift"
    assert workflows.IMAGE.python_version == "3.11"
    # What flytekit's default builder hands to `uv pip install --requirement` inside the image.
    command = prepare_python_install(workflows.IMAGE, tmp_path)
    assert "--requirement requirements_uv.txt" in command
    installed = requirement_lines((tmp_path / "requirements_uv.txt").read_text())
    assert sorted(installed) == sorted(requirement_lines(CONSTRAINTS.read_text()))


def test_a_changed_pin_changes_the_image_tag(tmp_path):
    pytest.importorskip("flytekit")
    pytest.importorskip("flytekitplugins.kfpytorch")
    import dataclasses

    import workflows

    text = CONSTRAINTS.read_text()
    bumped = tmp_path / "constraints.txt"
    bumped.write_text(re.sub(r"(?m)^tqdm==\S+", "tqdm==0.0.1", text))
    assert bumped.read_text() != text
    same = tmp_path / "same.txt"
    same.write_text(text)
    tag = workflows.IMAGE.tag
    assert dataclasses.replace(workflows.IMAGE, requirements=str(same)).tag == tag
    assert dataclasses.replace(workflows.IMAGE, requirements=str(bumped)).tag != tag


def test_local_installs_use_the_same_file():
    makefile = (ROOT / "Makefile").read_text()
    setup = [line for line in makefile.splitlines() if 'pip install --quiet -e ".[' in line]
    assert setup and all("-c constraints.txt" in line for line in setup)
    assert re.search(r'pip install -e "\.\[[a-z,]+\]" -c constraints\.txt', (ROOT / "README.md").read_text())
