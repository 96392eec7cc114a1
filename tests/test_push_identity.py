"""A staged folder is pushed only to the repo its card names, and a model is versioned on its own (issue 17,
items 6 and 7). Offline: a recording fake of HfApi (tests/test_push.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_model_card import CODE_LLAMA, make_run
from test_push import FakeHub, make_dataset

import push
from model_card import identity
from model_card.identity import corpus_version, model_version, staged_version
from model_card.publish import PushError, publish
from model_card.stage import stage_model

STAGED_FOR = "unionai-oss/flyte-llama-corpus"
MODEL_ID = "flyte-test/flyte-llama-tiny"


def dataset_for(root: Path, hub_id: str = STAGED_FOR) -> Path:
    """A dataset folder whose card and manifest were rendered for `hub_id`, as dataset_builder writes them."""
    folder = make_dataset(root)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["config"] = {"hub_repo_id": hub_id}
    (folder / "manifest.json").write_text(json.dumps(manifest, sort_keys=True))
    readme = (folder / "README.md").read_text()
    readme += f'\n```python\nds = load_dataset("{hub_id}", revision="v1.0.0")\n```\n'
    (folder / "README.md").write_text(readme)
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("run"))


def stage(run: Path, out: Path, repo_id: str = MODEL_ID, manifest: Path | None = None) -> Path:
    return stage_model(
        run / "adapter",
        run / "eval_results.json",
        out,
        repo_id=repo_id,
        base_model_id=CODE_LLAMA,
        manifest_path=manifest,
    )


def push_main(capsys, *argv: str) -> tuple[int, str]:
    code = push.main(list(argv))
    return code, capsys.readouterr().err


# ---------------------------------------------------------------- item 6: the card matches --repo-id


@pytest.mark.parametrize("dry_run", [True, False])
def test_dataset_staged_for_another_repo_is_refused_with_the_fix(tmp_path, capsys, dry_run):
    folder = dataset_for(tmp_path / "ds")
    argv = ["dataset", "--folder", str(folder), "--repo-id", "me/flyte-llama-corpus"]
    code, err = push_main(capsys, *argv, *(["--dry-run"] if dry_run else []))
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err  # one line, not a traceback
    assert f"staged for {STAGED_FOR}, not --repo-id me/flyte-llama-corpus" in err
    assert "--set hub_repo_id=me/flyte-llama-corpus" in err  # how to fix it


def test_dataset_whose_card_alone_names_another_repo_is_refused(tmp_path):
    folder = dataset_for(tmp_path / "ds", "me/flyte-llama-corpus")
    readme = folder / "README.md"
    readme.write_text(readme.read_text() + f'\ntasks = load_dataset("{STAGED_FOR}", "infilling")\n')
    hub = FakeHub()
    with pytest.raises(PushError, match=f"staged for {STAGED_FOR}"):
        publish(folder, "me/flyte-llama-corpus", "dataset", api=hub, dry_run=True, echo=lambda _: None)
    assert hub.calls == []


def test_dataset_pushed_to_its_own_repo_passes(tmp_path):
    folder = dataset_for(tmp_path / "ds")
    hub = FakeHub()
    result = publish(
        folder,
        STAGED_FOR,
        "dataset",
        api=hub,
        tag="auto",
        echo=lambda _: None,
        online_check=lambda: None,
        token_getter=lambda: "hf_x",
    )
    assert result.commit and result.tag == "v1.0.0" and hub.tags == {"v1.0.0": result.head}


@pytest.mark.parametrize("dry_run", [True, False])
def test_model_staged_for_another_repo_is_refused_with_the_fix(run_dir, tmp_path, capsys, dry_run):
    folder = stage(run_dir, tmp_path / "hub")
    argv = ["model", "--folder", str(folder), "--repo-id", "me/flyte-llama-tiny"]
    code, err = push_main(capsys, *argv, *(["--dry-run"] if dry_run else []))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"staged for {MODEL_ID}, not --repo-id me/flyte-llama-tiny" in err
    assert "python -m model_card.stage --run RUN --repo-id me/flyte-llama-tiny" in err


def test_model_pushed_to_its_own_repo_passes_and_the_base_is_not_another_repo(run_dir, tmp_path, capsys):
    folder = stage(run_dir, tmp_path / "hub")
    readme = (folder / "README.md").read_text()
    assert f'from_pretrained("{CODE_LLAMA}"' in readme  # the card loads the base too: that is allowed
    code = push.main(["model", "--folder", str(folder), "--repo-id", MODEL_ID, "--dry-run"])
    assert code == 0 and "checks: OK" in capsys.readouterr().out


def test_model_card_may_load_other_repos_but_not_under_another_name(run_dir, tmp_path, capsys):
    folder = stage(run_dir, tmp_path / "hub")
    readme = folder / "README.md"
    # A link to a separate merged repo is another model, not a claim about this repo's id.
    readme.write_text(
        readme.read_text() + '\nAutoModelForCausalLM.from_pretrained("flyte-test/tiny-merged")\n'
    )
    assert push.main(["model", "--folder", str(folder), "--repo-id", MODEL_ID, "--dry-run"]) == 0
    capsys.readouterr()
    code, err = push_main(
        capsys, "model", "--folder", str(folder), "--repo-id", "flyte-test/renamed", "--dry-run"
    )
    assert code == 2 and f"staged for {MODEL_ID}, not --repo-id flyte-test/renamed" in err


# ---------------------------------------------------------------- item 7: the model's own version


def test_model_version_is_deterministic_and_changes_with_each_input():
    recipe = {"learning_rate": 0.001, "seed": 0, "dataset": "../corpus", "dataset_revision": None}
    v = model_version(recipe, "1.0.0", "c" * 64)
    assert v == model_version(dict(recipe), "1.0.0", "c" * 64)
    assert v["version"].startswith("v1.0.0-") and len(v["version"]) == len("v1.0.0-") + 8
    assert v["corpus_version"] == "1.0.0"
    # Where the data was read from is not what was trained: another layout or org, the same version.
    assert model_version({**recipe, "dataset": "me/flyte-llama-corpus"}, "1.0.0", "c" * 64) == v
    others = [
        model_version({**recipe, "learning_rate": 0.002}, "1.0.0", "c" * 64),  # retrained, same corpus
        model_version(recipe, "1.1.0", "c" * 64),
        model_version(recipe, "1.0.0", "d" * 64),  # the training code changed
    ]
    assert len({v["version"], *(o["version"] for o in others)}) == 4
    assert model_version(recipe, None, "c" * 64)["version"].startswith("dev-")


def test_corpus_version_comes_from_the_manifest_or_a_version_tag_the_run_recorded():
    assert corpus_version({"version": "2.0.0"}, None) == "2.0.0"
    log = {"summary": {"dataset": {"id": "o/c", "revision": "v1.2.0"}}}
    assert corpus_version(None, log) == "1.2.0"
    assert corpus_version(None, {"summary": {"dataset": {"revision": "a" * 40}}}) is None


def test_the_code_in_the_version_is_what_training_runs():
    code = identity.model_code()
    assert {"train.py", "pretrain.py", "data.py", "fim.py", "modeling.py", "config.py"} <= set(code)
    # Evaluation, completion and the parsers do not change the weights: editing them keeps the version.
    assert not {"evaluate.py", "complete.py", "options.py", "eval_config.py"} & set(code)
    assert len(identity.training_code_sha256()) == 64


def test_staging_records_the_version_and_the_corpus_version(run_dir, tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"name": "flyte-llama-corpus", "version": "1.0.0", "sources": []}))
    a = stage(run_dir, tmp_path / "a", manifest=manifest)
    b = stage(run_dir, tmp_path / "b", repo_id="other-org/flyte-llama-tiny", manifest=manifest)
    recorded = json.loads((a / "version.json").read_text())
    assert recorded["corpus_version"] == "1.0.0" and recorded["version"].startswith("v1.0.0-")
    assert (a / "version.json").read_bytes() == (b / "version.json").read_bytes()  # same run, any org
    assert staged_version(a, "model") == recorded["version"]
    card = (a / "README.md").read_text()
    assert f"this\none is `{recorded['version']}`, trained on corpus version 1.0.0" in card
    assert f'revision="{recorded["version"]}")' in card  # the usage code pins this very version


def test_a_retrained_model_on_the_same_corpus_publishes_under_a_new_tag(run_dir, tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"name": "flyte-llama-corpus", "version": "1.0.0", "sources": []}))
    hub = FakeHub()
    kw = dict(api=hub, tag="auto", echo=lambda _: None, online_check=lambda: None, token_getter=lambda: "x")
    first = publish(stage(run_dir, tmp_path / "first", manifest=manifest), MODEL_ID, "model", **kw)
    # Retrained on the same corpus with another learning rate: new weights, new recipe, new version.
    recipe_path = run_dir / "adapter" / "recipe.yaml"
    old_recipe = recipe_path.read_text()
    try:
        recipe_path.write_text(yaml.safe_dump({**yaml.safe_load(old_recipe), "learning_rate": 0.002}))
        second_dir = stage(run_dir, tmp_path / "second", manifest=manifest)
    finally:
        recipe_path.write_text(old_recipe)
    second = publish(second_dir, MODEL_ID, "model", **kw)
    assert first.tag != second.tag and set(hub.tags) == {first.tag, second.tag}
    assert first.tag.startswith("v1.0.0-") and second.tag.startswith("v1.0.0-")
    assert hub.tags[second.tag] == hub.head and len(hub.commits) == 2


def test_tag_auto_on_a_folder_without_a_version_says_how_to_fix(run_dir, tmp_path):
    folder = stage(run_dir, tmp_path / "hub")
    (folder / "version.json").unlink()
    with pytest.raises(PushError, match=r"records no version in version\.json: re-stage"):
        publish(folder, MODEL_ID, "model", api=FakeHub(), tag="auto", dry_run=True, echo=lambda _: None)
