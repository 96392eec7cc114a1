from __future__ import annotations

import base64
import json

from detect_secrets.settings import get_settings

from dataset_builder.record import Record, record_id
from dataset_builder.redact import (
    EMAIL,
    PRIVATE_KEY,
    SECRET,
    looks_like_secret,
    redact_records,
    redact_text,
    scanner_settings,
)

# Secrets are assembled at run time so this file itself never holds a token-shaped string.
ALNUM = "aB3dE5fG7hJ9kL2mN4pQ6rS8tU0vW1xY"
AWS_KEY = "AKIA" + "Q7XZ2W4R6T8Y0U3I"
GITHUB = "ghp" + "_" + ALNUM + "zZ9q"
GITHUB_PAT = "github" + "_pat_" + "11ABCDEFG0" + ALNUM
HF = "hf" + "_" + ALNUM + "Qw"
SLACK = "xox" + "b-123456789012-1234567890123-" + "abcdefghijklmnopqrstuvwx"
STRIPE = "sk" + "_live_" + ALNUM[:24]
PASSWORD = "Zq8vT2mX9pLw"
URL_PASSWORD = "Pa55w0rdXyz"
EMAIL_ADDR = "john.doe@acme-corp.io"
KEY_BODY = base64.b64encode(bytes(range(256)) * 2).decode()
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + "\n".join(KEY_BODY[i : i + 64] for i in range(0, len(KEY_BODY), 64))
    + "\n-----END RSA PRIVATE KEY-----"
)


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


JWT = (
    _b64({"alg": "HS256", "typ": "JWT"})
    + "."
    + _b64({"sub": "1234567890", "name": "x"})
    + ".SflKxwRJSMeKKF2QT4fw"
)

SECRETS = [
    AWS_KEY,
    GITHUB,
    GITHUB_PAT,
    HF,
    SLACK,
    STRIPE,
    PASSWORD,
    URL_PASSWORD,
    EMAIL_ADDR,
    KEY_BODY[:64],
    JWT,
]

PLANTED = f'''import os
KEY = """{PEM}"""
aws_access_key_id = "{AWS_KEY}"
gh = "{GITHUB}"  # and {GITHUB_PAT}
HF_TOKEN = "{HF}"
SLACK = "{SLACK}"
stripe.api_key = "{STRIPE}"
db_password = "{PASSWORD}"
DB = "postgres://admin:{URL_PASSWORD}@db.internal:5432/app"
# Maintainer: John Doe <{EMAIL_ADDR}>
auth = "Bearer {JWT}"
'''

BENIGN = """HEADER = "-----BEGIN RSA PRIVATE KEY-----"
docs_key = "AKIAIOSFODNN7EXAMPLE"
password = get_password()
token = "MY_TOKEN_ENV"
accessTokenCookieName = "flyte_at_1"
admin_password = "changeme123"
local = "postgres://postgres:postgres@localhost:5432/db"
contact = ["user@example.com", "12345+bot@users.noreply.github.com", "no-reply@flyte.org"]
remote = "git@github.com:flyteorg/flyte.git"
@task
def f(x: int) -> int:
    return x
"""


def rec(repo: str, path: str, content: str) -> Record:
    return Record(
        id=record_id(repo, path), repo=repo, path=path, language="python", content=content,
        bytes=len(content.encode()), lines=content.count("\n"), commit_sha="0" * 40, blob_sha="0" * 40,
        license="Apache-2.0", split="train", is_test=False, is_doc=False, is_notebook=False, parses=True,
    )  # fmt: skip


def test_every_planted_secret_is_replaced_and_counted():
    records = [rec("flytekit", "secrets.py", PLANTED), rec("flyte", "benign.py", BENIGN)]
    before = get_settings().json()
    out, report = redact_records(records)
    assert get_settings().json() == before  # detect-secrets' global settings restored
    text = out[0].content
    for secret in SECRETS:
        assert secret not in text, secret
    assert text.count(PRIVATE_KEY) == 1 and "-----BEGIN" not in text
    assert f"Maintainer: John Doe <{EMAIL}>" in text
    assert f'auth = "Bearer {SECRET}"' in text  # the whole JWT, signature included
    assert "postgres://admin:" + SECRET + "@db.internal:5432/app" in text
    assert report["by_kind"] == {
        "aws_access_key": 1,
        "detect_secrets:JSON Web Token": 1,
        "detect_secrets:Stripe Access Key": 1,
        "email": 1,
        "github_token": 2,
        "huggingface_token": 1,
        "password_assignment": 1,
        "private_key": 1,
        "slack_token": 1,
        "url_password": 1,
    }
    assert out[0].redactions == 11 == report["total"]
    assert report["files"] == 1 and list(report["by_repo"]) == ["flytekit"]
    assert out[0].bytes == len(text.encode()) and out[0].lines == text.count("\n")
    assert records[0].content == PLANTED and records[0].redactions == 0  # input untouched


def test_allow_listed_fixtures_and_code_are_untouched():
    records = [rec("flyte", "benign.py", BENIGN)]
    out, report = redact_records(records)
    assert out[0] is records[0]
    assert report["total"] == 0 and report["by_kind"] == {} and report["files"] == 0


def test_secret_gate():
    assert looks_like_secret("Zq8vT2mX9pLw")
    assert not looks_like_secret("GlobalK8sAWSGCPVault")  # one digit: a name, not a key
    assert not looks_like_secret("flyte_at_1") and not looks_like_secret("MY_TOKEN_ENV_2")
    assert not looks_like_secret("${DB_PASSWORD_123}") and not looks_like_secret("changeme123")


def test_deterministic_report():
    records = [rec("flytekit", "secrets.py", PLANTED), rec("flyte", "benign.py", BENIGN)]
    a = redact_records(records)
    b = redact_records(records)
    assert a == b
    assert json.dumps(a[1]) == json.dumps(a[1], sort_keys=True)


def test_unquoted_yaml_secret_is_redacted_but_settings_are_not():
    value = "fAk3" + "s4mPl3+s3cr3t/k3yN0tR34l0nlyF0rT3sts"
    text = f"storage:\n  secret-key: {value}\n  token: none\n  secret_name: my-k8s-secret-name-2\n"
    out, report = redact_records([rec("flyteadmin", "config.yaml", text)])
    assert value not in out[0].content and f"  secret-key: {SECRET}\n" in out[0].content
    assert "token: none" in out[0].content and "secret_name: my-k8s-secret-name-2" in out[0].content
    assert report["by_kind"] == {"password_assignment": 1}


def test_lines_that_only_say_aws_skip_the_plugin_scan_without_changing_anything(monkeypatch):
    # A line whose only anchor is "aws"/"AWS"/"Aws" and that holds no 40-character key run cannot match
    # any detect-secrets plugin, so it is not scanned; one with another anchor (a JWT) still is.
    from dataset_builder import redact

    run40 = "q7Zt" + "/Kp2mVx9" + "+Lr4/Nw8sYb3" + "Jd6Fh1Gc5Tu0Ea7WiOo"
    text = (
        f'AWS_SESSION = "Bearer {JWT}"\n'
        'region = "us-east-1"  # the AWS region\n'
        f'aws_pw = "{run40}"\n'
        "import aws_cdk as Aws\n"
    )
    scanned: list[str] = []
    real = redact.scan_line
    monkeypatch.setattr(redact, "scan_line", lambda line: scanned.append(line) or real(line))
    with scanner_settings():
        gated, gated_counts = redact_text(text)
    assert [line.split(" =")[0] for line in scanned] == ["AWS_SESSION", "aws_pw"]
    assert f'AWS_SESSION = "Bearer {SECRET}"' in gated and gated_counts["detect_secrets:JSON Web Token"] == 1
    monkeypatch.setattr(redact, "_OTHER_ANCHORS", redact._PLUGIN_ANCHORS)  # every anchored line scanned
    with scanner_settings():
        assert redact_text(text) == (gated, gated_counts)
