"""Hostile inputs to staging and publishing: links, paths read from result files, malformed JSON, repo ids
the Hub rejects, local paths in published files, and reproducible adapter configs.

Every refusal is exit 2 with one `error: ...` line (no traceback), nothing is uploaded, and nothing is
written outside the output folder. Runs reuse test_model_card's tiny adapter (built once per module).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from test_model_card import CODE_LLAMA, make_run
from test_push import FakeHub, push_with

import push
from dataset_builder.__main__ import main as dataset_main
from model_card import stage
from model_card.publish import PushError

REPO = "flyte-test/flyte-llama-tiny"
SECRET = "root:x:0:0:not-for-the-hub\n"  # what a followed link would upload


@pytest.fixture(scope="module")
def built_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("hostile-run"))


@pytest.fixture
def run(built_run: Path, tmp_path: Path) -> Path:
    """A fresh copy of the run, laid out as job.py does: RUN/eval/eval_results.json beside its tasks file."""
    run = Path(shutil.copytree(built_run, tmp_path / "run"))
    (run / "eval").mkdir()
    for name in ("eval_results.json", "infilling_tasks.jsonl"):
        (run / name).rename(run / "eval" / name)
    config_path = run / "adapter" / "adapter_config.json"  # the copy's own base, as training records it
    config_path.write_text(
        json.dumps(json.loads(config_path.read_text()) | {"base_model_name_or_path": str(run / "base")})
    )
    return run


@pytest.fixture
def staged(run: Path, tmp_path: Path) -> Path:
    return stage.stage_model(
        run / "adapter",
        run / "eval" / "eval_results.json",
        tmp_path / "hub" / "m",
        repo_id=REPO,
        base_model_id=CODE_LLAMA,
    )


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single `error: ...` line a refused command printed (and that it printed nothing else wrong)."""
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "Traceback" not in captured.out + captured.err
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def push_dry_run(folder: Path, kind: str = "model", repo_id: str = REPO) -> int:
    return push.main([kind, "--folder", str(folder), "--repo-id", repo_id, "--dry-run"])


def stage_cli(run: Path, out: Path, *extra: str) -> int:
    argv = ["--run", str(run), "--repo-id", REPO, "--eval-results", str(run / "eval" / "eval_results.json")]
    return stage.main([*argv, "--out", str(out), "--base-model-id", CODE_LLAMA, *extra])


def assert_nothing_staged(out: Path) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no temp folder


# ---------------------------------------------------------------- push: links are refused, never followed


@pytest.mark.parametrize("link", ["file_outside", "dir_outside", "file_inside", "dangling"])
def test_push_refuses_any_symlink_in_the_folder(staged, tmp_path, capsys, link):
    outside = tmp_path / "system"
    outside.mkdir()
    (outside / "passwd").write_text(SECRET)
    if link == "file_outside":  # the reported case: recipe.yaml -> a system file
        (staged / "recipe.yaml").unlink()
        (staged / "recipe.yaml").symlink_to(outside / "passwd")
        name = "recipe.yaml"
    elif link == "dir_outside":
        (staged / "plots" / "more").symlink_to(outside, target_is_directory=True)
        name = "plots/more"
    elif link == "file_inside":  # even a link that stays inside: only regular files are published
        (staged / "tokenizer.json").unlink()
        (staged / "tokenizer.json").symlink_to(staged / "training_log.json")
        name = "tokenizer.json"
    else:
        (staged / "notes.txt").symlink_to(tmp_path / "nowhere")
        name = "notes.txt"
    assert push_dry_run(staged) == 2
    err = one_error_line(capsys)
    assert f"{staged / name} is a symbolic link" in err and "replace it with a copy" in err
    assert "upload" not in capsys.readouterr().out  # no plan was printed

    hub = FakeHub()
    with pytest.raises(PushError, match="symbolic link"):
        push_with(hub, staged)
    assert hub.calls == [] and SECRET.encode() not in b"".join(hub.files.values())


def test_push_refuses_a_fifo_instead_of_hanging_on_it(staged, capsys):
    (staged / "recipe.yaml").unlink()
    os.mkfifo(staged / "recipe.yaml")
    assert push_dry_run(staged) == 2
    assert "recipe.yaml is not a regular file" in one_error_line(capsys)


def test_a_folder_given_as_a_link_is_resolved_once_and_published_from_there(staged, tmp_path):
    alias = tmp_path / "alias"
    alias.symlink_to(staged, target_is_directory=True)
    hub = FakeHub()
    result, _ = push_with(hub, alias)
    assert result.commit and {op.path_in_repo for op in hub.commits[0]} >= {"README.md", "recipe.yaml"}
    staged_root = staged.resolve()
    assert all(Path(op.path_or_fileobj).resolve().is_relative_to(staged_root) for op in hub.commits[0])


# ---------------------------------------------------------------- paths read from eval_results.json


def _name_tasks_file(run: Path, tasks_file: str) -> None:
    path = run / "eval" / "eval_results.json"
    results = json.loads(path.read_text())
    results["infilling"]["tasks_file"] = tasks_file
    path.write_text(json.dumps(results))


@pytest.mark.parametrize("how", ["absolute", "dotdot", "link_out"])
def test_stage_refuses_a_tasks_file_outside_the_eval_folder(run, tmp_path, capsys, how):
    secret = tmp_path / "secret.jsonl"
    secret.write_text(SECRET)
    if how == "absolute":  # the reported case: an absolute tasks_file naming a system file
        _name_tasks_file(run, str(secret))
    elif how == "dotdot":
        _name_tasks_file(run, "../../secret.jsonl")
    else:
        (run / "eval" / "infilling_tasks.jsonl").unlink()
        (run / "eval" / "infilling_tasks.jsonl").symlink_to(secret)
    out = tmp_path / "hub" / "m"
    out.parent.mkdir()
    assert stage_cli(run, out) == 2
    err = one_error_line(capsys)
    assert "infilling.tasks_file" in err and "beside eval_results.json" in err
    assert_nothing_staged(out)


@pytest.mark.parametrize("how", ["absolute", "dotdot", "link_out"])
def test_add_infilling_refuses_a_tasks_file_outside_the_eval_folder(run, tmp_path, capsys, how):
    secret = tmp_path / "secret.jsonl"
    secret.write_text(SECRET)
    if how == "absolute":
        _name_tasks_file(run, str(secret))
    elif how == "dotdot":
        _name_tasks_file(run, "../../secret.jsonl")
    else:
        (run / "eval" / "infilling_tasks.jsonl").unlink()
        (run / "eval" / "infilling_tasks.jsonl").symlink_to(secret)
    folder = tmp_path / "corpus"
    folder.mkdir()
    argv = [
        "add-infilling",
        "--folder",
        str(folder),
        "--eval-results",
        str(run / "eval" / "eval_results.json"),
    ]
    assert dataset_main(argv) == 2
    err = one_error_line(capsys)
    assert "infilling.tasks_file" in err and "beside eval_results.json" in err
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "corpus",
        "run",
        "secret.jsonl",
    ]


# ---------------------------------------------------------------- malformed JSON: one line, exit 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "adapter_config.json is not valid JSON"),
        ("[1, 2]", "must hold a JSON object, not a list"),
        ('{"r": 4}', "has no base_model_name_or_path"),
        ('{"base_model_name_or_path": 7}', "has no base_model_name_or_path"),
        (b"\xff\xfe\x00", "is not UTF-8 text"),
    ],
)
def test_push_refuses_a_malformed_adapter_config(staged, capsys, content, expected):
    path = staged / "adapter_config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert push_dry_run(staged) == 2
    assert expected in one_error_line(capsys)
    assert (
        push.main(["model", "--folder", str(staged), "--repo-id", REPO]) == 2
    )  # before any token or network
    assert expected in one_error_line(capsys)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{", "eval_results.json is not valid JSON"),
        ('"just a string"', "must hold a JSON object, not a str"),
        ('{"perplexity": 5}', "perplexity must be an object, not a int"),
        ('{"perplexity": {"base": {"by_repo": []}}}', "perplexity.base.by_repo must be an object"),
    ],
)
def test_push_refuses_a_malformed_eval_results(staged, capsys, content, expected):
    (staged / "eval_results.json").write_text(content)
    assert push_dry_run(staged) == 2
    assert expected in one_error_line(capsys)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{", "is not valid JSON"),
        ("[]", "must hold a JSON object, not a list"),
        ('{"schema_version": 1, "dataset": 3}', "dataset must be an object, not a int"),
        ('{"schema_version": 1, "models": {"base": []}}', "models.base must be an object"),
        ('{"schema_version": 1}', "does not follow docs/ARCHITECTURE.md"),
        ('{"schema_version": 1, "infilling": {"tasks_file": 3}}', "infilling.tasks_file must be a file name"),
    ],
)
def test_stage_refuses_a_malformed_eval_results(run, tmp_path, capsys, content, expected):
    (run / "eval" / "eval_results.json").write_text(content)
    out = tmp_path / "hub" / "m"
    out.parent.mkdir()
    assert stage_cli(run, out) == 2
    assert expected in one_error_line(capsys)
    assert_nothing_staged(out)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("adapter_config.json", "[]", "must hold a JSON object"),
        ("adapter_config.json", '{"target_modules": 3}', "target_modules must be a module name"),
        ("training_log.json", '{"log_history": {}}', "log_history must be a list of objects"),
        (
            "training_log.json",
            '{"summary": {"train_tokens": "many"}}',
            "summary.train_tokens must be a number",
        ),
        ("recipe.yaml", "a: [", "recipe.yaml is not valid YAML"),
    ],
)
def test_stage_refuses_malformed_run_files(run, tmp_path, capsys, name, content, expected):
    (run / "adapter" / name).write_text(content)
    out = tmp_path / "hub" / "m"
    out.parent.mkdir()
    assert stage_cli(run, out) == 2
    assert expected in one_error_line(capsys)
    assert_nothing_staged(out)


# ---------------------------------------------------------------- repo ids the Hub rejects

BAD_IDS = ["org/x--y", "org/x..y", "org/x.git", "org/-x", "org/x-", "org/.x", "org/x.", "o/" + "a" * 97]
BAD_IDS += ["org/a b", "org/é", "no-org", "a/b/c", ""]


@pytest.mark.parametrize("repo_id", BAD_IDS)
def test_push_dry_run_refuses_repo_ids_the_hub_rejects(staged, capsys, repo_id):
    assert push_dry_run(staged, repo_id=repo_id) == 2
    err = one_error_line(capsys)
    assert "--repo-id" in err and ("ORG/NAME" in err)
    assert capsys.readouterr().out == ""  # refused before the plan


@pytest.mark.parametrize("repo_id", ["org/x--y", "org/x.git", "no-org"])
def test_stage_refuses_repo_ids_the_hub_rejects(run, tmp_path, capsys, repo_id):
    out = tmp_path / "hub" / "m"
    out.parent.mkdir()
    argv = [
        "--run",
        str(run),
        "--repo-id",
        repo_id,
        "--eval-results",
        str(run / "eval" / "eval_results.json"),
    ]
    assert stage.main([*argv, "--out", str(out)]) == 2
    assert "--repo-id" in one_error_line(capsys)
    assert stage_cli(run, out, "--dataset-id", "org/corpus..v2") == 2
    assert "--dataset-id" in one_error_line(capsys)
    assert_nothing_staged(out)


# ---------------------------------------------------------------- no absolute local paths are published


def _record_local_paths(run: Path) -> Path:
    """What runs wrote before they recorded relative locations: this machine's absolute paths everywhere."""
    dataset = run.parent / "corpus"
    dataset.mkdir()
    path = run / "eval" / "eval_results.json"
    results = json.loads(path.read_text())
    results["dataset"]["id"] = str(dataset)
    results["models"]["base"]["id"] = str(run / "base")
    results["models"]["adapter"]["id"] = str(run / "adapter")
    results["settings"]["infill"]["tasks_from"] = str(dataset)
    path.write_text(json.dumps(results))
    log = json.loads((run / "adapter" / "training_log.json").read_text())
    log["summary"]["dataset"] = {"id": str(dataset), "revision": None}
    (run / "adapter" / "training_log.json").write_text(json.dumps(log))
    recipe = {"name": "tiny", "dataset": str(dataset), "output_dir": str(run / "checkpoints"), "seed": 0}
    (run / "adapter" / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return dataset


def test_staging_rewrites_local_paths_to_hub_ids_or_run_relative_ones(run, tmp_path, capsys):
    _record_local_paths(run)
    out = tmp_path / "hub" / "m"
    assert stage_cli(run, out, "--dataset-id", "flyte-test/flyte-llama-corpus") == 0
    for name, data in _files(out).items():
        assert str(tmp_path).encode() not in data, name
    results = json.loads((out / "eval_results.json").read_text())
    assert (
        results["dataset"]["id"]
        == results["settings"]["infill"]["tasks_from"]
        == "flyte-test/flyte-llama-corpus"
    )
    assert results["models"]["base"]["id"] == CODE_LLAMA and results["models"]["adapter"]["id"] == REPO
    summary = json.loads((out / "training_log.json").read_text())["summary"]
    assert summary["dataset"]["id"] == "flyte-test/flyte-llama-corpus"
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["dataset"] == "flyte-test/flyte-llama-corpus" and recipe["output_dir"] == "./checkpoints"
    capsys.readouterr()
    assert push_dry_run(out) == 0 and "checks: OK" in capsys.readouterr().out


def test_a_local_demo_stage_names_local_places_relatively_and_the_push_refuses_it(run, tmp_path, capsys):
    _record_local_paths(run)
    out = tmp_path / "hub" / "m"
    argv = ["--run", str(run), "--repo-id", REPO, "--eval-results", str(run / "eval" / "eval_results.json")]
    assert stage.main([*argv, "--out", str(out), "--allow-local-dataset"]) == 0
    readme = (out / "README.md").read_text()
    assert str(tmp_path) not in readme and "`./base`" in readme
    results = json.loads((out / "eval_results.json").read_text())
    assert results["dataset"]["id"] == "../../corpus" and results["models"]["base"]["id"] == "../base"
    # The one absolute path kept: the local base in adapter_config.json, so the demo folder loads here.
    leaking = [n for n, data in _files(out).items() if str(tmp_path).encode() in data]
    assert leaking == ["adapter_config.json"]
    capsys.readouterr()
    assert push_dry_run(out) == 2
    assert "the base model is a local path" in one_error_line(capsys)


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        ("eval_results.json", lambda d, p: d["dataset"].update(id=p)),
        ("training_log.json", lambda d, p: d["summary"].update(hardware=p)),
        ("recipe.yaml", lambda d, p: d.update(output_dir=p)),
        ("README.md", None),
    ],
)
def test_push_refuses_a_hand_edited_folder_holding_a_local_path(staged, capsys, name, edit):
    local = str(staged / "adapter_model.safetensors")
    path = staged / name
    if name == "README.md":
        path.write_text(path.read_text() + f"\nTrained from `{local}`.\n")
    elif name.endswith(".yaml"):
        data = yaml.safe_load(path.read_text())
        edit(data, local)
        path.write_text(yaml.safe_dump(data))
    else:
        data = json.loads(path.read_text())
        edit(data, local)
        path.write_text(json.dumps(data))
    assert push_dry_run(staged) == 2
    err = one_error_line(capsys)
    assert f"holds a local path, {name}:" in err and local in err and "python -m model_card.stage" in err


# ---------------------------------------------------------------- reproducible adapter_config.json


def test_staged_adapter_config_is_byte_reproducible_whatever_the_set_order(run, tmp_path):
    config_path = run / "adapter" / "adapter_config.json"
    outs = []
    for i, order in enumerate((["v_proj", "q_proj", "k_proj"], ["k_proj", "q_proj", "v_proj"])):
        config = json.loads(config_path.read_text())
        config["target_modules"] = order
        # keys in another order too, and compact formatting: the staged file must not care
        config_path.write_text(json.dumps(dict(reversed(list(config.items())))))
        outs.append(
            stage.stage_model(
                run / "adapter",
                run / "eval" / "eval_results.json",
                tmp_path / f"hub{i}" / "m",
                repo_id=REPO,
                base_model_id=CODE_LLAMA,
            )
        )
    first, second = ((o / "adapter_config.json").read_bytes() for o in outs)
    assert first == second
    staged_config = json.loads(first)
    assert staged_config["target_modules"] == ["k_proj", "q_proj", "v_proj"]
    assert list(staged_config) == sorted(staged_config) and first.endswith(b"}\n")


def test_a_recipe_whose_only_local_path_is_the_dataset_gets_the_hub_id(run, tmp_path):
    dataset = tmp_path / "corpus"
    dataset.mkdir()
    (run / "adapter" / "recipe.yaml").write_text(yaml.safe_dump({"dataset": str(dataset), "seed": 0}))
    out = tmp_path / "hub" / "m"
    assert stage_cli(run, out, "--dataset-id", "flyte-test/flyte-llama-corpus") == 0
    assert yaml.safe_load((out / "recipe.yaml").read_text()) == {
        "dataset": "flyte-test/flyte-llama-corpus",
        "seed": 0,
    }
