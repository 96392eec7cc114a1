"""The proxy base's pretraining text holds no Flyte: no Flyte package, no file that mentions Flyte."""

from __future__ import annotations

import pytest

from training import pretrain_corpus
from training.pretrain import corpus_files, load_pretrain_config


def _package(root, name: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_files_that_mention_flyte_are_dropped_and_counted(tmp_path, monkeypatch):
    _package(
        tmp_path,
        "plainpkg",
        {
            "__init__.py": "x = 1\n",
            "core.py": "def f():\n    return 2\n",
            "uses.py": "from flytekit import task\n",
            "doc.py": '"""Works with FLYTE too."""\n',
            "idl.py": "import flyteidl.core\n",
            "tests/test_core.py": "def test(): pass\n",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    dropped: dict[str, int] = {}
    files, roots = pretrain_corpus.package_files(["plainpkg"], 10_000, ["tests"], 100_000, dropped)
    assert sorted(rel for rel, _ in files) == [
        "site-packages/plainpkg/__init__.py",
        "site-packages/plainpkg/core.py",
    ]
    assert dropped == {"mentions_flyte": 3}
    assert roots == {"plainpkg": str(tmp_path / "plainpkg")}
    # deterministic, and a missing package is reported rather than guessed
    names = ["plainpkg", "not_installed_pkg"]
    again, roots = pretrain_corpus.package_files(names, 10_000, ["tests"], 100_000)
    assert again == files and roots["not_installed_pkg"] is None


@pytest.mark.parametrize("name", ["flytekit", "flyteidl", "flytekitplugins", "FlyteSomething"])
def test_flyte_packages_are_refused_when_the_recipe_loads(name):
    with pytest.raises(ValueError, match="Flyte's code cannot be"):
        load_pretrain_config("mini-pretrain", {"packages": ["numpy", name]})
    with pytest.raises(ValueError, match="Flyte's own code"):
        pretrain_corpus.package_files([name], 1000, [], 1000)


def test_the_recipe_names_no_flyte_package_and_its_text_never_mentions_flyte():
    """The real recipe on this machine (flytekit is installed here, as the `flyte` extra): a slice of its
    budget, to stay fast, read with the recipe's own packages and exclusions."""
    recipe = load_pretrain_config("mini-pretrain")
    assert recipe.packages and not pretrain_corpus.flyte_packages(recipe.packages)
    config = load_pretrain_config("mini-pretrain", {"stdlib_bytes": 200_000, "package_bytes": 400_000})
    train, heldout, info = corpus_files(config)
    texts = [text for _, text in train + heldout]
    assert texts and not any("flyte" in text.lower() for text in texts)
    pkg_files = [rel for rel, _ in train if rel.startswith(pretrain_corpus.PACKAGE_PREFIX)]
    assert len({rel.split("/")[1] for rel in pkg_files}) >= 3  # the budget mixes packages
    assert info["package_bytes"] <= 400_000 and info["stdlib_bytes"] <= 200_000
    installed = {name for name, entry in info["packages"].items() if entry["path"]}
    assert "numpy" in installed
    for name in installed:
        assert "flyte" not in (info["packages"][name]["path"] or "").lower()
