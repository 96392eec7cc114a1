"""Secrets and PII: find them and replace them with fixed placeholders before anything is hashed or written.

Order in the pipeline: filters → **redact** → dedup/decontam → export. Redaction comes before dedup so
that content hashes and MinHash signatures never depend on a secret's value (two copies of a config that
differ only in a token are still duplicates), and so that no later stage — cache files included — ever
holds a secret.

What is found, and replaced by what:

- PEM and PGP private keys, the whole block from BEGIN to END (armor headers such as `Version:` and
  `Comment:` included; a block cut off before its END up to where the key text stops) →
  `<REDACTED_PRIVATE_KEY>` (a bare header string with no key body, e.g. a constant used to parse keys, is
  code and is kept). detect-secrets' PrivateKeyDetector only reports the header line, so it cannot say
  where a block ends: the block patterns here are our own.
- Tokens with a known shape → `<REDACTED_SECRET>`: AWS access key ids, GitHub tokens (ghp_/gho_/ghu_/ghs_/
  ghr_, github_pat_), Hugging Face tokens (hf_), Slack tokens and webhooks, Google API keys (AIza…),
  Google OAuth client secrets (GOCSPX-…) and access tokens (ya29.…) — our own patterns: detect-secrets has
  no plugin for them — plus the maintained detect-secrets plugins listed in `DETECT_SECRETS_PLUGINS`
  (Stripe, GitLab, npm, PyPI, OpenAI, SendGrid, Square, JWT, Azure storage, AWS secret keys, …) run through
  `detect_secrets.core.scan.scan_line` with its default false-positive filters.
- Passwords in URLs (`scheme://user:PASSWORD@host`, the user may be empty) and quoted values assigned to
  secret-like names (`password = "…"`, `api_key: '…'`) → `<REDACTED_SECRET>`, only when the value looks
  like a real secret: ≥ 8 characters, letters *and* digits, not a template (`${…}`, `{{…}}`, `<…>`) and
  no placeholder word (example, changeme, password, secret, dummy, test, …). A URL password may hold `/`
  (AWS secret keys do; detect-secrets' BasicAuthDetector stops at `/` and at `!$&'()*+,;=`, and has no
  host allow-list, so it is not used); then at least two digits and not `host:PORT/path@…`.
- Email addresses → `<EMAIL>`.
- File paths (`secret_paths`): a path holding any finding above — AWS's example keys included: a file
  named after a key is no useful code — is reported so the pipeline drops the file (`secret_in_path`);
  the `path` column is published as is.

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

Speed: detect-secrets works a line at a time in Python. First one RE2 pass (pyarrow, C++) over all
documents keeps only those that can hold a finding (`_RE2_GATE`); within those, only lines holding one of
the plugins' literal anchors (`_PLUGIN_ANCHORS`, which every match of the chosen plugins must contain) are
handed to detect-secrets.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc
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

# A key block: header, armor header lines (`Proc-Type: 4,ENCRYPTED`, PGP's `Version:`/`Comment: a <b@c>`,
# each to the end of its line), a body of base64 (possibly with "\n" escapes), footer. The body class
# excludes quotes and brackets, so a match never runs past the string it sits in.
_KEY_HEADERS = r"(?:(?:\\n|\r?\n)[A-Za-z][A-Za-z-]*: [^\r\n\"'\\]*)*"
_PEM = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY((?: BLOCK)?)-----" + _KEY_HEADERS
    + r"[A-Za-z0-9+/=\s\\:,.-]{40,}?-----END \1PRIVATE KEY\2-----"
)  # fmt: skip
_PEM_TRUNCATED = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----" + _KEY_HEADERS + r"[A-Za-z0-9+/=\s\\]{64,}"
)
# kind → (literals every match contains, pattern). The literals pick the lines the pattern runs on: a
# regex that starts with a character class scans 100 MB slowly, `str.find` of a literal does not.
_TOKENS = {
    "aws_access_key": (
        ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
        re.compile(r"(?<![A-Z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"),
    ),
    "github_token": (
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(r"(?<!\w)(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?!\w)"),
    ),
    "huggingface_token": (("hf_",), re.compile(r"(?<!\w)hf_[A-Za-z0-9]{30,}(?!\w)")),
    "slack_token": (
        ("xox", "hooks.slack.com"),
        re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/T\w+/B\w+/\w+"),
    ),
    # Google's shapes: API keys are AIza + 35 characters, client secrets GOCSPX- + 28 (20-60 taken, so a
    # variant of another length still goes whole), access tokens ya29. + any length.
    "google_api_key": (("AIza",), re.compile(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])")),
    "google_oauth_client_secret": (
        ("GOCSPX-",),
        re.compile(r"(?<![\w-])GOCSPX-[0-9A-Za-z_-]{20,60}(?![\w-])"),
    ),
    "google_oauth_token": (("ya29.",), re.compile(r"(?<![\w.-])ya29\.[0-9A-Za-z_-]{20,}")),
}
_ALLOWED_TOKENS = frozenset({"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"})

_URL_PASSWORD = re.compile(r"(://[^\s/:@'\"]*:)([^\s@'\"]+)(@)([^\s/:'\"@]+)")
_KEY_WORDS = ("password", "passwd", "passwort", "pwd", "secret", "token", "apikey", "api_key", "api-key",
              "access_key", "accesskey")  # fmt: skip
# name, assignment operator, quoted value; the name must contain a key word (checked in Python).
_ASSIGNMENT = re.compile(r"([A-Za-z_][\w.-]*)([\"']?[ \t]*(?::=|=|:)[ \t]*)([\"'])([^\"'\s]{8,200})\3")
# YAML-style `secret-key: value` with an unquoted value running to the end of the line (configs); at least
# 16 characters so that short settings (`token: none`) never qualify. Same name and value gates as above.
_BARE_YAML_ASSIGNMENT = re.compile(r"^([ \t-]*)([A-Za-z_][\w.-]*)([ \t]*:[ \t]+)([^\s\"'#]{16,200})([ \t]*)$")
_IDENTIFIER_LIKE = re.compile(r"[A-Za-z]+(?:[_.\-][A-Za-z0-9]+)+|[a-z]+[0-9]*|[A-Z_]+[0-9]*")
_PLACEHOLDER_WORDS = re.compile(
    r"example|changeme|password|passwd|secret|dummy|fake|test|sample|your|xxx|placeholder|redacted|"
    r"token|default|foo|bar|abc|1234|localhost|none|null|todo",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![\w-])")
_ALLOWED_EMAIL_DOMAIN = re.compile(
    r"(?:^|\.)(?:example\.(?:com|org|net)|[^.]+\.(?:example|test|invalid|localhost)|localhost|"
    r"users\.noreply\.github\.com)$",
    re.IGNORECASE,
)
_ALLOWED_HOST = re.compile(r"^(?:localhost|127\.0\.0\.1|0\.0\.0\.0)(?::\d+)?$|example\.(?:com|org|net)", re.I)
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_\-.+/=]*")

# One RE2 pattern (run by pyarrow over all documents at once, in C++) that every document holding any
# finding matches: a superset of the patterns above and of the plugins' regexes. Python's `re` then runs
# only on the few documents that pass (a few hundred of ~10k on the Flyte corpus).
_RE2_GATE = "|".join(
    f"(?:{g})"
    for g in (
        r"PRIVATE KEY",
        r"[A-Za-z0-9][A-Za-z0-9._%+-]*@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}",  # email
        r"://[^\s/:@'\"]*:[^\s@'\"]+@",  # password in a URL
        r"(?i:password|passwd|passwort|pwd|secret|token|apikey|api_key|api-key|access_key|accesskey)"
        r"[\w.-]*[\"']?[ \t]*(:=|=|:)[ \t]*[\"'][^\"'\s]{8,200}[\"']",  # assignment
        r"(?i:password|passwd|passwort|pwd|secret|token|apikey|api_key|api-key|access_key|accesskey)"
        r"[\w.-]*[ \t]*:[ \t]+[^\s\"'#]{16,200}[ \t]*(\n|$)",  # bare YAML assignment
        r"A3T|AKIA|ASIA|ABIA|ACCA",  # AWS key ids
        r"(?i:aws).{0,20}(?i:key|pwd|pw|pass|token).{0,20}['\"][0-9a-zA-Z/+]{40}['\"]",  # AWS plugin
        r"gh[pousr]_|github_pat_|hf_[A-Za-z0-9]{30}|(?i:xox|hooks\.slack\.com)",
        r"AccountKey=|gl(pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas)-|GR1348941|eyJ|_authToken|T3BlbkFJ",
        r"pypi-|SG\.|sq0csp-|k_live_",
        r"AIza|GOCSPX-|ya29\.",  # Google
    )
)


def looks_like_secret(value: str, min_digits: int = 2) -> bool:
    """Gate for assignment and URL passwords: real secrets mix letters and digits (assignments: at least
    two digits, which rules out names like `GlobalK8sAWSGCPVault`), are no template, no identifier
    (`flyte_at_1`, `MY_TOKEN_ENV`) and hold no placeholder word."""
    if len(value) < 8 or any(c in value for c in "${}<>%*()[]"):
        return False
    if not re.search(r"[A-Za-z]", value) or sum(c.isdigit() for c in value) < min_digits:
        return False
    return not (_IDENTIFIER_LIKE.fullmatch(value) or _PLACEHOLDER_WORDS.search(value))


def _email_allowed(address: str) -> bool:
    local, _, domain = address.partition("@")
    return bool(_ALLOWED_EMAIL_DOMAIN.search(domain)) or local.lower() in {"noreply", "no-reply", "git"}


def _line_spans(text: str, haystack: str, literals: Sequence[str]) -> list[tuple[int, int]]:
    """Sorted (start, end) of the lines of `text` where `haystack` (text, or its same-length lower-case
    copy) contains any of `literals`."""
    spans = set()
    for lit in literals:
        pos = haystack.find(lit)
        while pos != -1:
            start = text.rfind("\n", 0, pos) + 1
            end = text.find("\n", pos)
            end = len(text) if end == -1 else end
            spans.add((start, end))
            pos = haystack.find(lit, end)
    return sorted(spans)


def _on_lines(text: str, spans: list[tuple[int, int]], fn) -> str:
    if not spans:
        return text
    parts, last = [], 0
    for start, end in spans:
        parts += [text[last:start], fn(text[start:end])]
        last = end
    parts.append(text[last:])
    return "".join(parts)


def redact_text(text: str, allowed: frozenset[str] = _ALLOWED_TOKENS) -> tuple[str, Counter]:
    """Redacted text and the number of replacements by kind; tokens in `allowed` are kept. Call inside
    `scanner_settings()`."""
    counts: Counter = Counter()

    def sub(kind: str, pattern: re.Pattern, repl):
        def on_line(line: str) -> str:
            def one(m: re.Match) -> str:
                out = repl(m)
                if out != m.group(0):
                    counts[kind] += 1
                return out

            return pattern.sub(one, line)

        return on_line

    if "PRIVATE KEY" in text:  # multi-line: runs on the whole text
        text = sub("private_key", _PEM, lambda m: PRIVATE_KEY)(text)
        text = sub("private_key", _PEM_TRUNCATED, lambda m: PRIVATE_KEY)(text)
    for kind, (literals, pattern) in _TOKENS.items():
        redact = sub(kind, pattern, lambda m: m.group(0) if m.group(0) in allowed else SECRET)
        text = _on_lines(text, _line_spans(text, text, literals), redact)

    def url(m: re.Match) -> str:
        password = m.group(2)
        if "/" in password and (password.split("/")[0].isdigit() or not looks_like_secret(password)):
            return m.group(0)  # `host:PORT/path@ref`, or a path rather than a key
        if _ALLOWED_HOST.search(m.group(4)) or not looks_like_secret(password, min_digits=0):
            return m.group(0)
        return m.group(1) + SECRET + m.group(3) + m.group(4)

    text = _on_lines(text, _line_spans(text, text, ["://"]), sub("url_password", _URL_PASSWORD, url))

    def assignment(m: re.Match) -> str:
        name = m.group(1).lower()
        if not any(w in name for w in _KEY_WORDS) or not looks_like_secret(m.group(4)):
            return m.group(0)
        return m.group(1) + m.group(2) + m.group(3) + SECRET + m.group(3)

    lower = text.lower()
    haystack = lower if len(lower) == len(text) else text  # lower() can change the length of some unicode
    spans = _line_spans(text, haystack, _KEY_WORDS)
    text = _on_lines(text, spans, sub("password_assignment", _ASSIGNMENT, assignment))

    def bare(m: re.Match) -> str:
        name = m.group(2).lower()
        if not any(w in name for w in _KEY_WORDS) or not looks_like_secret(m.group(4)):
            return m.group(0)
        return m.group(1) + m.group(2) + m.group(3) + SECRET + m.group(5)

    spans = _line_spans(text, text.lower() if len(text.lower()) == len(text) else text, _KEY_WORDS)
    text = _on_lines(text, spans, sub("password_assignment", _BARE_YAML_ASSIGNMENT, bare))
    email = sub("email", _EMAIL, lambda m: m.group(0) if _email_allowed(m.group(0)) else EMAIL)
    text = _on_lines(text, _line_spans(text, text, ["@"]), email)
    return _scan_with_plugins(text, counts, allowed), counts


# "aws" in any of these spellings is the anchor of one pattern only, AWSKeyDetector's secret key
# `aws.{0,20}?(key|...).{0,20}?['"]([0-9a-zA-Z/+]{40})['"]`, which needs a run of 40 such characters.
# A line that merely says AWS (most of the lines the anchors pick in the Flyte repos) holds no such run
# and no other anchor, so no plugin can report anything on it: it skips detect-secrets' per-line scan.
_AWS_WORDS = ("aws", "AWS", "Aws")
_OTHER_ANCHORS = tuple(a for a in _PLUGIN_ANCHORS if a not in _AWS_WORDS)
_AWS_SECRET_RUN = re.compile(r"[0-9a-zA-Z/+]{40}")


def _scan_with_plugins(text: str, counts: Counter, allowed: frozenset[str]) -> str:
    def on_line(line: str) -> str:
        if not any(a in line for a in _OTHER_ANCHORS) and not _AWS_SECRET_RUN.search(line):
            return line
        for kind, value in sorted({(s.type, s.secret_value) for s in scan_line(line) if s.secret_value}):
            if value in allowed or value not in line:
                continue
            # Some plugin regexes end lazily (JWT stops before the signature): redact the whole token.
            tail = re.compile(re.escape(value) + _TOKEN_TAIL.pattern)
            line, n = tail.subn(SECRET, line)
            counts["detect_secrets:" + kind] += n
        return line

    return _on_lines(text, _line_spans(text, text, _PLUGIN_ANCHORS), on_line)


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
    # Documents the gate rules out cannot hold a finding: they skip the per-line Python work entirely.
    gate = pc.match_substring_regex(pa.array([r.content for r in records], pa.large_string()), _RE2_GATE)
    with scanner_settings():
        for rec, candidate in zip(records, gate.to_pylist(), strict=True):
            if not candidate:
                out.append(rec)
                continue
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
    report = {  # keys in sorted order: the manifest is written with sort_keys anyway
        "by_kind": dict(sorted(by_kind.items())),
        "by_repo": {repo: dict(sorted(c.items())) for repo, c in sorted(by_repo.items())},
        "files": files,
        "placeholders": {"email": EMAIL, "private_key": PRIVATE_KEY, "secret": SECRET},
        "total": sum(by_kind.values()),
    }
    return out, report


def secret_paths(paths: Sequence[str]) -> set[str]:
    """The paths that hold a secret or an e-mail address (no allow-listed example keys: a file named after
    one is no useful code). The `path` column is never redacted, so such files must be dropped."""
    # Names git could not decode hold lone surrogates, which Arrow rejects; "?" stands in for the gate.
    names = [p.encode("utf-8", "replace").decode("utf-8") for p in paths]
    gate = pc.match_substring_regex(pa.array(names, pa.large_string()), _RE2_GATE)
    flagged = set()
    with scanner_settings():
        for path, candidate in zip(paths, gate.to_pylist(), strict=True):
            if candidate and redact_text(path, allowed=frozenset())[1]:
                flagged.add(path)
    return flagged
