"""Every command answers bad input with one line that says what to do (exit 2), not a traceback."""

from __future__ import annotations

import pytest

from training.__main__ import main as training_main


def test_unknown_recipe(capsys):
    assert training_main(["train", "--recipe", "no-such-recipe"]) == 2
    err = capsys.readouterr().err
    assert "no recipe 'no-such-recipe': choose one of" in err and "tiny" in err
    assert "Traceback" not in err


def test_missing_dataset_folder(tmp_path, capsys):
    code = training_main(
        ["train", "--recipe", "tiny", "--dataset", str(tmp_path / "nope"), "--output-dir", str(tmp_path)]
    )
    assert code == 2
    assert "pass a local dataset folder with --dataset PATH" in capsys.readouterr().err
    assert not (tmp_path / "adapter").exists()


def test_traceback_on_request(tmp_path, monkeypatch):
    monkeypatch.setenv("FLYTE_LLAMA_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError, match="no recipe"):
        training_main(["train", "--recipe", "no-such-recipe"])
