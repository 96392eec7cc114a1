"""Hostile inputs, secrets: Google keys, OAuth client secrets, PGP key blocks, credentials in URLs and
secrets in file paths must not reach any output of `python -m dataset_builder build`."""

from __future__ import annotations

import base64
import contextlib
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from gitrepos import GitRepo, write_config

from dataset_builder.__main__ import main
from dataset_builder.redact import PRIVATE_KEY, SECRET, redact_text, scanner_settings, secret_paths

# Assembled at run time so this file itself never holds a token-shaped string.
ALNUM = "aB3dE5fG7hJ9kL2mN4pQ6rS8tU0vW1xY"
GOOGLE_API_KEY = "AI" + "za" + "Sy" + ALNUM[:20] + "-_" + "Qw9eRt7Yu2i"  # 39 characters, "-" and "_" inside
GOOGLE_OAUTH = "GOCSPX" + "-" + ALNUM[:14] + "_-" + "Zx8cVb6Nm4Lk"  # 28 characters after the prefix
GOOGLE_TOKEN = "ya" + "29." + "a0AfH6SM" + ALNUM + "-_" + ALNUM
AWS_KEY = "AKIA" + "Q7XZ2W4R6T8Y0U3I"
AWS_SECRET = "q7Zt" + "/Kp2mVx9" + "+Lr4/Nw8sYb3" + "Jd6Fh1Gc5Tu0Ea7WiOo"  # 40 characters, "/" and "+"
REDIS_PASSWORD = "Xy7pQ2" + "/w9Lz!k4"
PGP_BODY = base64.b64encode(bytes(range(200, 256)) * 4).decode()
PGP_BODY_LINES = [PGP_BODY[i : i + 64] for i in range(0, len(PGP_BODY), 64)]
PGP_CHECKSUM = "=" + "Zk3q"
PGP_COMMENT = "Comment: Alice Lovelace <alice.lovelace@acme-corp.io>"
PGP = (
    "-----BEGIN PGP PRIVATE KEY BLOCK-----\n"
    f"Version: GnuPG v2\n{PGP_COMMENT}\n\n" + "\n".join(PGP_BODY_LINES) + f"\n{PGP_CHECKSUM}\n"
    "-----END PGP PRIVATE KEY BLOCK-----\n"
)
GITHUB = "ghp" + "_" + ALNUM + "zZ9q"
AWS_EXAMPLE_KEY = "AKIA" + "IOSFODNN7" + "EXAMPLE"  # AWS's documented example: allowed in content only

PREAMBLE = "import os\n\n# configuration\nDEBUG = False\nREGION = 'us-east-1'\n"
CONTENT = {
    "google/api.py": f'{PREAMBLE}MAPS_KEY = "{GOOGLE_API_KEY}"\n',
    "google/oauth.py": f'{PREAMBLE}CLIENT = ("1234-abc.apps.googleusercontent.com", "{GOOGLE_OAUTH}")\n',
    "google/token.py": f'{PREAMBLE}TOKEN = "{GOOGLE_TOKEN}"\n',
    "keys/signing.asc.md": f"# Release signing key\n\n```\n{PGP}```\n\nImport it with gpg.\n",
    "storage/s3.py": f'{PREAMBLE}URL = "https://{AWS_KEY}:{AWS_SECRET}@s3.amazonaws.com/b"\n',
    "storage/cache.yaml": f"cache:\n  url: redis://:{REDIS_PASSWORD}@cache.internal:6379/0\n",
    "ok/task.py": "from flytekit import task\n\n\n@task\ndef t() -> int:\n    return 1\n",
}
SECRET_PATHS = {
    f"keys/{AWS_KEY}.md": "aws key in the name\n",
    f"{GITHUB}.json": '{"note": "token in the name"}\n',
    f"conf/{GOOGLE_API_KEY}/settings.yaml": "name: flyte\n",
    f"keys/{AWS_EXAMPLE_KEY}.md": "example key in the name\n",
}
# Values that must never appear in any output, nor any 12-character piece of them (a kept prefix or tail).
LEAKS = {
    "google_api_key": [GOOGLE_API_KEY],
    "google_oauth_client_secret": [GOOGLE_OAUTH],
    "google_oauth_token": [GOOGLE_TOKEN],
    "private_key": [*PGP_BODY_LINES, PGP_CHECKSUM + "\n", "alice.lovelace", "GnuPG"],
    "url_password": [AWS_SECRET, REDIS_PASSWORD],
    "secret_in_path": [GITHUB, AWS_KEY, GOOGLE_API_KEY, AWS_EXAMPLE_KEY],
}


def _pieces(value: str, n: int = 12) -> list[str]:
    return [value] if len(value) <= n else [value[i : i + n] for i in range(len(value) - n + 1)]


def _texts(root: Path) -> dict[str, str]:
    """Every file under `root` as text: raw bytes, and for Parquet every decoded cell too."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            text = p.read_bytes().decode("latin-1")
            if p.suffix == ".parquet":
                text += json.dumps(pq.read_table(p).to_pylist(), default=str)
            out[str(p.relative_to(root))] = text
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("hostile")
    train = GitRepo.init(root / "work" / "trainrepo")
    train.commit({**CONTENT, **SECRET_PATHS})
    test = GitRepo.init(root / "work" / "testrepo")
    test.commit({"examples/hello.py": "from flytekit import workflow\n\nX = 1\n"})
    mirrors = root / "mirrors"
    train.clone_bare(mirrors / "trainrepo.git")
    test.clone_bare(mirrors / "testrepo.git")
    config = write_config(root / "corpus.yaml", {"trainrepo": train.head(), "testrepo": test.head()})
    out = root / "out" / "corpus"
    argv = ["build", "--config", str(config), "--mirrors", str(mirrors), "--out", str(out)]
    argv += ["--cache-dir", str(root / "out" / "cache"), "--no-progress"]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(argv)
    texts = _texts(root / "out")
    texts["<stdout/stderr>"] = stdout.getvalue() + stderr.getvalue()
    manifest = json.loads((out / "manifest.json").read_text())
    return {"rc": rc, "out": out, "texts": texts, "manifest": manifest, "root": root}


@pytest.mark.parametrize("kind", sorted(LEAKS))
def test_secret_reaches_no_output(built: dict, kind: str) -> None:
    assert built["rc"] == 0
    assert {"README.md", "manifest.json"} <= {Path(k).name for k in built["texts"]}
    for value in LEAKS[kind]:
        for piece in _pieces(value):
            hits = [name for name, text in built["texts"].items() if piece in text]
            assert not hits, (kind, piece, hits)
    logs = built["texts"]["<stdout/stderr>"]
    assert "secret_in_path" in logs and "Traceback" not in logs  # the summary was captured, and is clean


def test_redactions_and_path_drops_are_counted_by_kind(built: dict) -> None:
    m = built["manifest"]
    assert m["redactions"]["by_kind"] == {
        "aws_access_key": 1,  # the URL's user name
        "google_api_key": 1,
        "google_oauth_client_secret": 1,
        "google_oauth_token": 1,
        "private_key": 1,
        "url_password": 2,
    }
    assert m["drops"]["filter"]["secret_in_path"] == len(SECRET_PATHS)
    card = (built["out"] / "README.md").read_text()
    assert "| filter | secret_in_path | 4 |" in card and "| google_api_key | 1 |" in card
    rows = {
        r["path"]: r for p in (built["out"] / "data").glob("*.parquet") for r in pq.read_table(p).to_pylist()
    }
    assert set(rows) == set(CONTENT) | {"examples/hello.py"}  # kept files, none under a secret name
    doc = rows["keys/signing.asc.md"]["content"]
    assert doc == f"# Release signing key\n\n```\n{PRIVATE_KEY}\n```\n\nImport it with gpg.\n"
    assert (
        rows["storage/s3.py"]["content"]
        == f'{PREAMBLE}URL = "https://{SECRET}:{SECRET}@s3.amazonaws.com/b"\n'
    )
    assert f"redis://:{SECRET}@cache.internal:6379/0" in rows["storage/cache.yaml"]["content"]
    assert rows["google/api.py"]["content"] == f'{PREAMBLE}MAPS_KEY = "{SECRET}"\n'
    assert rows["google/oauth.py"]["content"].endswith(f'.apps.googleusercontent.com", "{SECRET}")\n')


def test_nothing_outside_the_output_folders(built: dict) -> None:
    tops = sorted(p.name for p in built["root"].iterdir())
    assert tops == ["corpus.yaml", "mirrors", "out", "work"]
    assert sorted(p.name for p in (built["root"] / "out").iterdir()) == ["cache", "corpus"]
    assert not [p for p in built["root"].rglob("*") if ".tmp" in p.name or p.name.endswith(".partial")]


def test_secret_paths_unit() -> None:
    paths = [*SECRET_PATHS, *CONTENT, "docs/contact@example.com", "pkg/foo@v1.2.3/x.go", "keys/AKIA.md"]
    assert secret_paths(paths) == set(SECRET_PATHS)
    assert secret_paths(["people/jane.roe@acme-corp.io.md"]) == {"people/jane.roe@acme-corp.io.md"}


@pytest.mark.parametrize(
    "benign",
    [
        'HEADER = "-----BEGIN PGP PRIVATE KEY BLOCK-----"\nFOOTER = "-----END PGP PRIVATE KEY BLOCK-----"\n',
        "image: docker://ghcr.io:443/flyteorg/flytekit@sha256:0123abcd\n",
        "see http://localhost:30080/console/projects/flytesnacks@v1.2\n",
        'DB = "postgres://postgres:postgres@localhost:5432/db"\n',
        'pip install "git+https://github.com/flyteorg/flytekit@master"\n',
        f'URL = "https://{AWS_EXAMPLE_KEY}:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY@s3.example.com/b"\n',
        "AIzaMethodName = 1\nGOCSPX-short\n",
    ],
)
def test_benign_look_alikes_are_kept(benign: str) -> None:
    with scanner_settings():
        text, counts = redact_text(benign)
    assert (text, dict(counts)) == (benign, {})


def test_truncated_pgp_block_is_removed_to_its_end() -> None:
    block = PGP.split("-----END")[0]  # no footer: a cut-off paste
    with scanner_settings():
        text, counts = redact_text(f"KEY = '''{block}'''\n")
    assert text == f"KEY = '''{PRIVATE_KEY}'''\n" and dict(counts) == {"private_key": 1}


def test_service_account_json_and_encrypted_pem_lose_the_whole_block() -> None:
    body = "\n".join(PGP_BODY_LINES)
    pem = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
    account = json.dumps({"type": "service_account", "private_key": pem, "project_id": "p"})  # "\n" escaped
    encrypted = (
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0A1B2C3D4E5F6071\n\n"
        f"{body}\n-----END RSA PRIVATE KEY-----\n"
    )
    with scanner_settings():
        redacted = [redact_text(t) for t in (account, encrypted)]
    assert redacted[0][0] == json.dumps(
        {"type": "service_account", "private_key": PRIVATE_KEY + "\n", "project_id": "p"}
    )
    assert redacted[1][0] == PRIVATE_KEY + "\n"
    assert [dict(c) for _, c in redacted] == [{"private_key": 1}] * 2
