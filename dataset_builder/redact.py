"""Secrets and PII: find them and replace them with fixed placeholders before anything is hashed or written.

Order in the pipeline: filters → **redact** → dedup/decontam → export. Redaction comes before dedup so
that content hashes and MinHash signatures never depend on a secret's value (two copies of a config that
differ only in a token are still duplicates), and so that no later stage — cache files included — ever
holds a secret.

What is found, and replaced by what:

- PEM private keys, the whole block from BEGIN to END → `<REDACTED_PRIVATE_KEY>` (a bare header string with
  no key body, e.g. a constant used to parse keys, is code and is kept).
- Tokens with a known shape → `<REDACTED_SECRET>`: AWS access key ids, GitHub tokens (ghp_/gho_/ghu_/ghs_/
  ghr_, github_pat_), Hugging Face tokens (hf_), Slack tokens and webhooks — our own patterns — plus the
  maintained detect-secrets plugins listed in `DETECT_SECRETS_PLUGINS` (Stripe, GitLab, npm, PyPI, OpenAI,
  SendGrid, Square, JWT, Azure storage, AWS secret keys, …) run through `detect_secrets.core.scan.scan_line`
  with its default false-positive filters.
- Passwords in URLs (`scheme://user:PASSWORD@host`) and quoted values assigned to secret-like names
  (`password = "…"`, `api_key: '…'`) → `<REDACTED_SECRET>`, only when the value looks like a real secret:
  ≥ 8 characters, letters *and* digits, not a template (`${…}`, `{{…}}`, `<…>`) and no placeholder word
  (example, changeme, password, secret, dummy, test, …).
- Email addresses → `<EMAIL>`.

Not used: detect-secrets' entropy detectors and KeywordDetector (on code they flag hashes, ids and every
`token = "..."` constant), IPPublicDetector (an IP is not a secret), and the plugins without a literal
anchor that are slow on 100 MB and irrelevant here (Artifactory, Cloudant, IBM, SoftLayer, Discord,
Telegram, Mailchimp, Twilio).

Allow-list (documented fixtures, kept as they are):
- emails at the reserved example domains (example.com/.org/.net, *.example, *.test, *.invalid,
  *.localhost, localhost), GitHub noreply addresses (users.noreply.github.com), noreply@/no-reply@ any
  domain, and `git@host` SSH remotes (git@github.com is a URL, not a person);
- AWS's documented example keys (AKIAIOSFODNN7EXAMPLE, wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY);
- passwords in URLs whose host is localhost, 127.0.0.1, 0.0.0.0 or an example domain.

Speed: detect-secrets works a line at a time in Python. Only lines holding one of the plugins' literal
anchors (`_PLUGIN_ANCHORS`, which every match of the chosen plugins must contain) are handed to it; on the
Flyte corpus that is a few hundred lines out of millions.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import replace

from detect_secrets.core.scan import scan_line
from detect_secrets.settings import get_settings, transient_settings

from dataset_builder.record import Record, count_lines

SECRET = "<REDACTED_SECRET>"
PRIVATE_KEY = "<REDACTED_PRIVATE_KEY>"
EMAIL = "<EMAIL>"

DETECT_SECRETS_PLUGINS = (
    "AWSKeyDetector",
    "AzureStorageKeyDetector",
    "GitHubTokenDetector",
    "GitLabTokenDetector",
    "JwtTokenDetector",
    "NpmDetector",
    "OpenAIDetector",
    "PypiTokenDetector",
    "SendGridDetector",
    "SlackDetector",
    "SquareOAuthDetector",
    "StripeDetector",
)
# Literals that every match of the plugins above contains (read off their denylist regexes); a line
# without any of them cannot produce a finding, so it never reaches the slow per-line scan.
_PLUGIN_ANCHORS = (
    "AKIA", "ASIA", "ABIA", "ACCA", "A3T", "aws", "AWS", "Aws", "AccountKey=", "ghp_", "gho_", "ghu_",
    "ghs_", "ghr_", "glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "glcbt-", "glimt-", "glptt-",
    "glagent-", "gloas-", "GR1348941", "eyJ", "_authToken", "T3BlbkFJ", "pypi-", "SG.", "xox",
    "hooks.slack.com", "sq0csp-", "k_live_",
)  # fmt: skip

# A key block: header, a body of base64 (possibly with "\n" escapes, Proc-Type headers), footer. The
# body class excludes quotes and brackets, so a match never runs past the string it sits in.
_PEM = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[A-Za-z0-9+/=\s\\:,.-]{40,}?-----END \1PRIVATE KEY-----"
)
_PEM_TRUNCATED = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[A-Za-z0-9+/=\s\\]{64,}")
_TOKENS = {
    "aws_access_key": re.compile(r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"),
    "github_token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
    "huggingface_token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "slack_token": re.compile(
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/T\w+/B\w+/\w+"
    ),
}
_ALLOWED_TOKENS = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}

_URL_PASSWORD = re.compile(r"(://[^\s/:@'\"]+:)([^\s/@'\"]+)(@)([^\s/:'\"]+)")
_KEY_NAME = (
    r"[A-Za-z_][\w.-]*?(?:password|passwd|passwort|pwd|secret|token|api_?key|apikey|access_?key)[\w-]*"
)
_ASSIGNMENT = re.compile(rf"({_KEY_NAME}[\"']?\s*(?::=|=|:)\s*)([\"'])([^\"'\s]{{8,200}})\2", re.IGNORECASE)
_PLACEHOLDER_WORDS = re.compile(
    r"example|changeme|password|passwd|secret|dummy|fake|test|sample|your|xxx|placeholder|redacted|"
    r"token|default|foo|bar|abc|1234|localhost|none|null|todo",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"\b[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")
_ALLOWED_EMAIL_DOMAIN = re.compile(
    r"(?:^|\.)(?:example\.(?:com|org|net)|[^.]+\.(?:example|test|invalid|localhost)|localhost|"
    r"users\.noreply\.github\.com)$",
    re.IGNORECASE,
)
_ALLOWED_HOST = re.compile(r"^(?:localhost|127\.0\.0\.1|0\.0\.0\.0)(?::\d+)?$|example\.(?:com|org|net)", re.I)


def looks_like_secret(value: str) -> bool:
    """Gate for assignment and URL passwords: real secrets mix letters and digits and are no template."""
    if len(value) < 8 or any(c in value for c in "${}<>%*()[]"):
        return False
    if not (re.search(r"[A-Za-z]", value) and re.search(r"\d", value)):
        return False
    return not _PLACEHOLDER_WORDS.search(value)


def _email_allowed(address: str) -> bool:
    local, _, domain = address.partition("@")
    return bool(_ALLOWED_EMAIL_DOMAIN.search(domain)) or local.lower() in {"noreply", "no-reply", "git"}


def redact_text(text: str) -> tuple[str, Counter]:
    """Redacted text and the number of replacements by kind. Call inside `scanner_settings()`."""
    counts: Counter = Counter()

    def sub(kind: str, pattern: re.Pattern, text: str, repl) -> str:
        def one(m: re.Match) -> str:
            out = repl(m)
            if out != m.group(0):
                counts[kind] += 1
            return out

        return pattern.sub(one, text)

    if "PRIVATE KEY" in text:
        text = sub("private_key", _PEM, text, lambda m: PRIVATE_KEY)
        text = sub("private_key", _PEM_TRUNCATED, text, lambda m: PRIVATE_KEY)
    for kind, pattern in _TOKENS.items():
        text = sub(kind, pattern, text, lambda m: m.group(0) if m.group(0) in _ALLOWED_TOKENS else SECRET)
    if "://" in text:
        text = sub(
            "url_password",
            _URL_PASSWORD,
            text,
            lambda m: (
                m.group(0)
                if _ALLOWED_HOST.search(m.group(4)) or not looks_like_secret(m.group(2))
                else m.group(1) + SECRET + m.group(3) + m.group(4)
            ),
        )
    text = sub(
        "password_assignment",
        _ASSIGNMENT,
        text,
        lambda m: (
            m.group(1) + m.group(2) + SECRET + m.group(2) if looks_like_secret(m.group(3)) else m.group(0)
        ),
    )
    if "@" in text:
        text = sub("email", _EMAIL, text, lambda m: m.group(0) if _email_allowed(m.group(0)) else EMAIL)
    return _scan_with_plugins(text, counts), counts


def _scan_with_plugins(text: str, counts: Counter) -> str:
    anchors = [a for a in _PLUGIN_ANCHORS if a in text]
    if not anchors:
        return text
    lines = text.split("\n")
    for n, line in enumerate(lines):
        if not any(a in line for a in anchors):
            continue
        for secret in sorted({(s.type, s.secret_value) for s in scan_line(line) if s.secret_value}):
            kind, value = secret
            if value in _ALLOWED_TOKENS or value not in line:
                continue
            counts["detect_secrets:" + kind] += line.count(value)
            line = line.replace(value, SECRET)
        lines[n] = line
    return "\n".join(lines)


class scanner_settings:
    """detect-secrets' settings are process-global: enable exactly our plugins (and its default
    filters) for the duration of the block, and restore whatever was there before."""

    def __enter__(self) -> None:
        self._ctx = transient_settings({"plugins_used": [{"name": p} for p in DETECT_SECRETS_PLUGINS]})
        settings = self._ctx.__enter__()
        settings.disable_plugins(
            *[p for p in list(get_settings().plugins) if p not in DETECT_SECRETS_PLUGINS]
        )

    def __exit__(self, *exc) -> None:
        self._ctx.__exit__(*exc)


def redact_records(records: Sequence[Record]) -> tuple[list[Record], dict]:
    """New records with secrets/PII replaced (`redactions` set, bytes/lines updated) and the report for
    manifest["redactions"]: totals by kind and by repo, and how many files were touched. Pure:
    the input records are not modified."""
    out: list[Record] = []
    by_kind: Counter = Counter()
    by_repo: dict[str, Counter] = defaultdict(Counter)
    files = 0
    with scanner_settings():
        for rec in records:
            text, counts = redact_text(rec.content)
            if not counts:
                out.append(rec)
                continue
            files += 1
            by_kind.update(counts)
            by_repo[rec.repo].update(counts)
            n = sum(counts.values())
            out.append(
                replace(
                    rec,
                    content=text,
                    bytes=len(text.encode("utf-8", "surrogatepass")),
                    lines=count_lines(text),
                    redactions=rec.redactions + n,
                )
            )
    report = {
        "placeholders": {"secret": SECRET, "private_key": PRIVATE_KEY, "email": EMAIL},
        "files": files,
        "total": sum(by_kind.values()),
        "by_kind": dict(sorted(by_kind.items())),
        "by_repo": {repo: dict(sorted(c.items())) for repo, c in sorted(by_repo.items())},
    }
    return out, report
