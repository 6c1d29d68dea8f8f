"""Secret redaction applied to session transcripts before they are stored or archived.

Every secret found is replaced by a typed placeholder ``[REDACTED:<kind>]`` so stored
text stays readable and searchable while the credential never reaches disk.
``redact_bytes`` runs on raw JSONL lines *before* parsing, so no pattern may swallow a
JSON string delimiter or split a backslash escape: valid JSON stays valid JSON.

Why a pattern table rather than the ``detect-secrets`` library: detect-secrets is
line- and entropy-oriented and *reports findings* (file, line, type) instead of
rewriting text, so span-level replacement would still be ours to write; its entropy
plugins flag the hashes, UUIDs and base64 blobs that fill coding sessions; and it is
two orders of magnitude slower (every plugin runs on every line: about 0.5 MB/s of
JSONL against roughly 50 MB/s here, on one core), while ingest must sustain >= 10 MB/s.

Prefixes alone miss secrets written in prose ("my AWS key is AKIA… and the secret is
…"). The last rules catch a value a few words after a word that names a secret
(secret, token, password, credential, auth, key) when it looks random: mixed character
classes, high entropy, no word structure. So a hash or a base64 blob goes when the
text calls it a key, and stays when it is a commit, a checksum or an image.

Speed comes from regex shape: every rule begins with a literal (``ghp_``, ``sk-``,
``token``), which CPython's ``re`` finds with a fast prefix search, so clean text
costs one C-speed scan per rule, and the cost grows with the number of rules (20 rules
ran at about 90 MB/s, the 37 here at about 50; a `needle in line` pre-check and a
shared alternation were both slower). Case-insensitive keyword rules are written in
lowercase and run on one ``lower()`` copy instead of using ``(?i)``, which would
disable that prefix search (about 10x slower). All matching is done on UTF-8 bytes:
``redact_text`` encodes, which is cheaper than scanning wide (UCS-2) strings, and
bytes ``lower()`` never changes offsets. Every pattern starts and stops on ASCII,
so a replacement can never cut a multi-byte character.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

# An assignment value stops at whitespace, quotes, backslash (JSON escapes),
# separators and brackets. Its first character also rules out variable references
# ($X, ${X}), templates ({{ x }}), placeholders (<your-token>, ***) and comments.
_VAL_FIRST = r"[^\s\"'\\,;&()\[\]{}<>`|$*=%#:]"
_VAL_REST = r"[^\s\"'\\,;&()\[\]{}<>`|]"
# The quote before the value is captured: unquoted values get one more heuristic.
# In raw JSON a quote inside a string is \" (or \\\" in JSON nested in a string).
_SEP = r"(?:\\*[\"'])?\s*(?P<op>:=|=>|[:=])\s*(?P<q>\\*[\"'])?"
_ASSIGN_TAIL = rf"(?![a-z])(?P<suffix>[\w-]*){_SEP}(?P<v>{_VAL_FIRST}{_VAL_REST}{{3,}})"
# Private-key body: base64, PEM headers (Proc-Type: 4,ENCRYPTED), real or JSON-escaped
# newlines (a whole backslash run plus n/r/t, never half an escape) and Read-tool
# line-number prefixes ("     2→"). A truncated block simply ends where the body does.
_PEM_LABEL = r"[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
_PEM_BODY = r"(?:[A-Za-z0-9+/=:,. \t\r\n]|-(?!----)|\\+[nrt/]|→)*"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_NOT_SECRET_WORDS = _words(
    "none null nil true false undefined str string bytes int bool optional any secretstr required "
    "redacted hidden password passwd secret token"
)
# Key suffixes naming metadata about a secret (token_type, token_count, secret_name).
_META_SUFFIXES = _words(
    "type types count counts num len length limit limits size budget usage url uri endpoint file path "
    "name names id ids idx index offset offsets mask embedding embeddings hidden logits expiry expires "
    "ttl prefix field env var policy"
)
_CONN_PLACEHOLDERS = _words("password pass passwd pw pwd secret xxx")
_DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")  # self.token, process.env.X
_IDENT = re.compile(r"[A-Za-z_][\w.]*")
_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
_PASCAL = re.compile(r"(?:[A-Z][a-z]+)+")
_AWS_SECRET = re.compile(r"[A-Za-z0-9/+]{40}")

Check = Callable[[re.Match[bytes], bytes], str | None]  # (match, original line) -> kind or None


def _s(x: bytes) -> str:
    return x.decode("utf-8", "replace")


def _at_token_start(data: bytes, i: int) -> bool:
    """A token must not start inside a word or right after a backslash (that would
    split a JSON escape); a complete \\n, \\r or \\t escape does count as a boundary,
    since secrets often begin a line of tool output. Checked here rather than with a
    leading lookbehind so the regex keeps its literal-prefix search."""
    head = _s(data[max(0, i - 2) : i])
    if not head:
        return True
    c = head[-1]
    if c == "\\":
        return False
    if c.isascii() and (c.isalnum() or c == "_"):
        return len(head) == 2 and head[0] == "\\" and c in "nrt"
    return True


def _token(kind: str) -> Check:
    return lambda m, data: kind if _at_token_start(data, m.start()) else None


def _anywhere(kind: str) -> Check:
    return lambda m, data: kind


def _openai_or_anthropic(m: re.Match[bytes], data: bytes) -> str | None:
    if not _at_token_start(data, m.start()):
        return None
    return "anthropic-api-key" if m.group("ant") else "openai-api-key"


def _aws_or_google(m: re.Match[bytes], data: bytes) -> str | None:
    if not _at_token_start(data, m.start()):
        return None
    return "google-api-key" if m.group(0).startswith(b"AIza") else "aws-access-key"


def _stripe(m: re.Match[bytes], data: bytes) -> str | None:
    # The regex starts at "k_live_" for its prefix search; the s/r/p before it is
    # checked here and included in the replacement through the rule's back=1.
    prefix = _s(data[m.start() - 1 : m.start() + 7]) if m.start() else ""
    if prefix[:1] not in ("s", "r", "p") or prefix == "pk_test_":  # pk_test is public
        return None
    return "stripe-key" if _at_token_start(data, m.start() - 1) else None


def _plausible(v: str, nxt: str) -> bool:
    if v.lower().rstrip("?") in _NOT_SECRET_WORDS or len(set(v)) == 1:  # xxxx, 0000
        return False
    if nxt in ("(", "[") and _IDENT.fullmatch(v):
        return False  # get_token(), os.environ["X"], Optional[str]
    return _DOTTED_NAME.fullmatch(v) is None


def _assignment(kind: str) -> Check:
    def check(m: re.Match[bytes], data: bytes) -> str | None:
        suffix = re.split(r"[_-]", _s(m.group("suffix")).strip("_-").lower())[0]
        v = _s(data[m.start("v") : m.end("v")])
        if suffix in _META_SUFFIXES or (kind == "token-assignment" and v.isdigit()):
            return None  # token_type=bearer, max_token_count=4096
        if not _plausible(v, _s(data[m.end() : m.end() + 1])):
            return None
        # An unquoted snake_case value is a variable in code (unk_token=unk_token,
        # x_token = patch_size), but a literal in env/YAML (DB_PASSWORD=my_db_pw).
        keyword = _s(m.string[m.start() : m.start("suffix")])
        before_op = data[m.end("suffix") : m.start("op")]
        code_style = b" " in before_op or keyword in v.lower()
        if not m.group("q") and code_style and _SNAKE.fullmatch(v):
            return None
        if not m.group("q") and m.group("op") == b":" and _PASCAL.fullmatch(v):
            return None  # a type annotation: atom_to_token: Tensor
        if kind == "secret-assignment" and _AWS_SECRET.fullmatch(v):
            key = _s(data[max(0, m.start() - 4) : m.start("suffix")]).lower()
            if "aws" in key or "access" in key:
                return "aws-secret-key"
        return kind

    return check


_PASSWORD = _assignment("password-assignment")
# Only indentation between a line's start (real or JSON-escaped newline) and here: a YAML or env key.
_KEY_AT_LINE_START = re.compile(rb"(?:^|\n|\\n)[ \t]*(?:- )?\Z")


def _auth_header(m: re.Match[bytes], data: bytes) -> str | None:
    v = _s(data[m.start("v") : m.end("v")])
    if v.lower() in ("bearer", "basic", "token", "digest"):
        return None
    return "bearer-token" if _plausible(v, "") else None


def _bare_bearer(m: re.Match[bytes], data: bytes) -> str | None:
    # Outside an Authorization header "bearer" is an English word too; want a digit.
    return "bearer-token" if any(c.isdigit() for c in _s(m.group("v"))) else None


def _conn_password(m: re.Match[bytes], data: bytes) -> str | None:
    v = _s(m.group("v"))
    if v[0] in "$<{*[%" or v.lower() in _CONN_PLACEHOLDERS:
        return None
    return "connection-string-password"


def _flag_password(m: re.Match[bytes], data: bytes) -> str | None:
    """`mysql -pSECRET`, `curl -u user:SECRET`: a password given on the command line."""
    v = _s(m.group("v"))
    if v[0] in "$<{*[%`" or v.lower() in _CONN_PLACEHOLDERS or not _at_token_start(data, m.start()):
        return None
    return None if v.isalpha() and v.isupper() else "password-flag"  # -pPASSWORD is a placeholder


def _short_pass(m: re.Match[bytes], data: bytes) -> str | None:
    """ "pass" names a password as a name's last part (DB_PASS=, smtpPass:), not in bypass, pass_fds or a test
    runner's PASS; as a word of its own ("forward pass: compute …") only before a random-looking value."""
    lead = _s(data[max(0, m.start() - 1) : m.start()])
    named = lead in ("_", '"', "'") or (lead.islower() and data[m.start() : m.start() + 1].isupper())
    named = named or _KEY_AT_LINE_START.search(data, max(0, m.start() - 40), m.start()) is not None
    runner = data[m.start() : m.start() + 4] == b"PASS" and lead != "_"  # --- PASS: TestLogin
    if (lead.isalnum() and not named) or m.group("suffix") or runner:
        return None
    kind = _PASSWORD(m, data)
    if kind and not named and not _random_looking(_s(data[m.start("v") : m.end("v")])):
        return None
    return kind


# Prose: a secret-naming word, up to five short words ("is", "for the staging db was"), then the value.
# Separators stay on one line (a newline, real or escaped, ends the sentence) and inside one string: a
# quote may only close the keyword ("apiKey": …) or open the value, since elsewhere it ends one JSON
# string and starts the next (`credentials","next":"…`, or `\"` in JSON nested in a string). The last
# one before the value is a space, quote, colon, equals or arrow, never "-" or ".", so a value is never
# cut in half.
_GAP_SEP = r"[ \t:=>,.()`-]"
_GAP_LAST = r"(?:[ \t:=>('`]|\\*\")"
_PROSE_TAIL = (
    r"(?![a-z])(?P<suffix>[\w-]*)(?:\\*[\"'])?"  # api_key, secret-access-key, a closing quote
    rf"(?:{_GAP_SEP}+[a-z][a-z0-9']{{0,19}}){{0,5}}?{_GAP_SEP}*{_GAP_LAST}"  # " for the staging db is "
    r"(?P<v>[a-z0-9+/_~-](?:[a-z0-9+/_~.-]{14,}[a-z0-9+/_~-])={0,2})"  # never ending on "." or "-"
)
# Words around a key-ish word that say the value is public: "key fingerprint", "idempotency key".
_PUBLIC_WORDS = re.compile(
    rb"fingerprint|idempotency|public|primary|foreign|partition|sort key|cache key|checksum|sha\d|md5|digest"
)
# A gap that starts by closing the keyword's quote must go on with ":" or "=" (a JSON or YAML key).
_CLOSED_KEY = re.compile(r"\\*[\"']")
_KEY_VALUE = re.compile(r"\\*[\"']\s*[:=]")
# Words that may run straight into "key" (apikey, secretkey); otherwise "key" must start a word.
_KEY_PREFIXES = ("api", "access", "private", "secret", "account", "auth", "master", "signing", "encryption")
_PIECES = re.compile(r"[_./+~=-]+")
_WORDLIKE = re.compile(r"[A-Z]?[a-z]{4,}")
_CLUSTER = re.compile(r"[^aeiouy]{4}")
_CAMEL_PART = re.compile(r"[A-Z][a-z]{2,}|^[a-z]{3,}|[A-Z]{2,}(?=[A-Z][a-z])")


def _random_looking(v: str) -> bool:
    """High entropy and no word structure: keys, hashes and base64 yes; snake_case, paths, versions no."""
    v = v.rstrip("=")
    pieces = [p for p in _PIECES.split(v) if p]
    # user_2024_report, build-20261001, ./bin/run, SHOUTING_CASE; but mixed-case letters may be random
    if all(p.isalpha() or p.isdigit() for p in pieces) and not any(p.isalpha() and _mixed(p) for p in pieces):
        return False
    alnum = [c for c in v if c.isalnum()]
    if len({_class(c) for c in alnum}) < 2:
        return False
    if sum(len(w) for w in _WORDLIKE.findall(v) if _is_word(w)) * 2 >= len(alnum):
        return False  # mostly words: MyServiceConfigurationV2Handler, parse_v2_records
    camel = sum(len(w) for p in pieces for w in _CAMEL_PART.findall(p))
    if _mixed(v) and camel >= 0.8 * len(alnum):
        return False  # camelCase parts of three letters or more: getElementsByTagName, NSURLSessionTask
    switches = sum(_class(a) != _class(b) for a, b in pairwise(alnum))
    counts = Counter(alnum)
    entropy = -sum(n / len(alnum) * math.log2(n / len(alnum)) for n in counts.values())
    return switches >= 0.2 * (len(alnum) - 1) and entropy >= (2.5 if len(alnum) < 24 else 3.0)


def _mixed(w: str) -> bool:
    return not (w.islower() or w.isupper())


def _is_word(w: str) -> bool:
    """Pronounceable: a third of its letters vowels and no four consonants in a row (random lowercase runs
    have about a fifth vowels, and clusters)."""
    w = w.lower()
    return sum(c in "aeiouy" for c in w) * 3 >= len(w) and _CLUSTER.search(w) is None


def _class(c: str) -> int:
    return 0 if c.isdigit() else 1 if c.isupper() else 2


def _prose(word: str) -> Check:
    def check(m: re.Match[bytes], data: bytes) -> str | None:
        start = m.start()
        before = _s(data[max(0, start - 12) : start])
        lead = before[-1:]
        camel = lead.islower() and data[start : start + 1].isupper()  # apiKey, authToken
        if lead.isalnum() and not camel and not (word == "key" and before.lower().endswith(_KEY_PREFIXES)):
            return None  # monkey, turkey; but apikey, secretkey pass
        suffix = re.split(r"[_-]", _s(m.group("suffix")).strip("_-").lower())[0]
        gap = _s(m.string[m.end("suffix") : m.start("v")])  # m.string: the lowered line
        if _CLOSED_KEY.match(gap) and not _KEY_VALUE.match(gap):
            return None  # "credentials","+9f86…": a quoted word, then the next JSON string
        first = re.search(r"[a-z]+", gap)
        if suffix in _META_SUFFIXES or (first and first.group() in _META_SUFFIXES):
            return None  # token_count 1234..., key_id ..., "the token ID forwarding of …"
        if _PUBLIC_WORDS.search(m.string, max(0, start - 16), m.start("v")):
            return None
        v = _s(data[m.start("v") : m.end("v")])
        if not _at_token_start(data, m.start("v")) or not _plausible(
            v, _s(data[m.end("v") : m.end("v") + 1])
        ):
            return None  # a call: key_norm = RMSNorm2D(dim)
        return "prose-secret" if len(v) >= 16 and _random_looking(v) else None

    return check


# A person's password in prose is short and human ("the staging password is Summer2024!", "my passphrase was
# blue-Falcon42"): after "password" (or passphrase, passcode) and up to five short words, "is" or "was", then
# one token with a letter and a digit or symbol, or six digits (an assignment is `_assignment`'s). Not a word
# about passwords ("password manager is 1Password", "the password hash is argon2id"), a variable, a
# placeholder or a path.
_PASSWORD_PROSE = (
    r"pass(?:w(?:or)?d|phrase|code)s?(?![a-z])(?P<gap>(?:[ \t]+[a-z][a-z0-9'.-]{0,24}){0,5}?)"
    r"[ \t]+(?:is|was|are|were)[ \t]+(?:\\*[\"'`])?"
    r"(?P<v>[^\s\"'`\\]{5,63}[^\s\"'`\\.,;:)?])"
)
_ABOUT_PASSWORDS = _META_SUFFIXES | _words(
    "manager managers hash hashes hashing hashed reset resets rule rules strength prompt prompts hint "
    "requirement requirements complexity column input form validation validator check checks flow store "
    "vault protected change changes history salt"
)
_PASSWORD_SYMBOLS = frozenset("!@#$%^*+=?~")  # not "&": HTML's &quot;


def _password_prose(m: re.Match[bytes], data: bytes) -> str | None:
    gap = _s(m.group("gap")).split()
    if gap and gap[0] in _ABOUT_PASSWORDS:
        return None
    v = _s(data[m.start("v") : m.end("v")])
    if v[0] in "$%<{[(*" or "/" in v or not _plausible(v, _s(data[m.end("v") : m.end("v") + 1])):
        return None  # $DB_PASSWORD, %s, <your-password>, ${X}, a path or URL, settings.ADMIN_PASSWORD
    letters = any(c.isalpha() for c in v)
    marked = any(c.isdigit() or c in _PASSWORD_SYMBOLS for c in v)
    return "prose-secret" if (letters and marked) or (v.isdigit() and len(v) >= 6) else None


@dataclass(frozen=True)
class _Rule:
    pattern: str
    check: Check
    group: int | str = 0  # the part replaced; the rest of the match stays
    lowered: bool = False  # lowercase pattern, run on a lower() copy of the text
    back: int = 0  # replacement starts this many characters before the match


# Order matters: provider formats first, generic assignments last. A replaced value
# starts with "[", which no later rule accepts as the start of a value.
_RULES: tuple[_Rule, ...] = (
    _Rule(rf"-----BEGIN{_PEM_LABEL}{_PEM_BODY}(?:-----END{_PEM_LABEL})?", _anywhere("private-key")),
    _Rule(
        r"sk-(?:(?P<ant>ant-[A-Za-z0-9_-]{20,})|(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}"
        r"|[A-Za-z0-9]{20,})",
        _openai_or_anthropic,
    ),
    _Rule(r"A(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9])|AIza[A-Za-z0-9_-]{35}(?![\w-])", _aws_or_google),
    _Rule(r"g(?:h[pousr]_[A-Za-z0-9]{36,255}|ithub_pat_[A-Za-z0-9_]{22,255})", _token("github-token")),
    _Rule(r"glpat-[A-Za-z0-9_-]{20,}", _token("gitlab-token")),
    _Rule(r"hooks\.slack\.com/(?:services|workflows|triggers)/[\w/-]+", _anywhere("slack-webhook")),
    _Rule(r"xox[abeoprs]-[A-Za-z0-9-]{10,}", _token("slack-token")),
    _Rule(r"k_(?:live|test)_[A-Za-z0-9]{16,}", _stripe, back=1),
    _Rule(r"whsec_[A-Za-z0-9+/=]{24,}", _token("stripe-key")),
    _Rule(r"GOCSPX-[A-Za-z0-9_-]{28}", _token("google-oauth-secret")),
    _Rule(r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])", _token("npm-token")),
    _Rule(r"hf_[A-Za-z0-9]{30,}", _token("huggingface-token")),
    _Rule(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}(?:\.[\w-]+)?", _token("jwt")),
    _Rule(r"SG\.[\w-]{22}\.[\w-]{43}(?![\w-])", _token("sendgrid-key")),
    _Rule(r"dop_v1_[a-f0-9]{64}", _token("digitalocean-token")),
    _Rule(r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}", _token("shopify-token")),
    _Rule(r"pypi-AgE[A-Za-z0-9_-]{50,}", _token("pypi-token")),
    _Rule(r"hvs\.[A-Za-z0-9_-]{24,}", _token("vault-token")),
    _Rule(r"lin_api_[A-Za-z0-9]{40}", _token("linear-key")),
    _Rule(r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}", _token("postman-key")),
    _Rule(r"dapi[a-f0-9]{32}(?:-\d)?(?![\w-])", _token("databricks-token")),
    _Rule(r"SK[a-f0-9]{32}(?![\w-])", _token("twilio-key")),
    _Rule(r"://(?P<user>[^\s:/@\"'\\[]*):(?P<v>[^\s/@\"'\\]+)@", _conn_password, "v"),
    _Rule(
        rf"authorization{_SEP}\s*(?:(?:bearer|basic|token|digest)\s+)?(?P<v>[a-z0-9._~+/=-]{{8,}})",
        _auth_header,
        "v",
        lowered=True,
    ),
    _Rule(r"bearer\s+(?P<v>[a-z0-9._~+/=-]{16,})", _bare_bearer, "v", lowered=True),
    # Keywords: any prefix (DB_, client_, x-api-) stays in the text untouched, so the
    # regex starts at the keyword; (?![a-z]) keeps tokenizer, max_tokens, secretary out.
    _Rule(rf"pass(?:w(?:or)?d|phrase){_ASSIGN_TAIL}", _assignment("password-assignment"), "v", True),
    _Rule(rf"pass{_ASSIGN_TAIL}", _short_pass, "v", True),
    _Rule(r"mysql[\w-]*(?:\s[^\n|;&]*?)?\s-p(?:\\*[\"'])?(?P<v>[^\s\"'\\`]{4,})", _flag_password, "v"),
    _Rule(
        r"curl(?:\s[^\n|;&]*?)?\s(?:-u|--user)\s*(?:\\*[\"'])?[^\s:\"'\\]+:(?P<v>[^\s\"'\\`]{4,})",
        _flag_password,
        "v",
    ),
    _Rule(rf"secret(?:_?access)?(?:_?key)?{_ASSIGN_TAIL}", _assignment("secret-assignment"), "v", True),
    _Rule(rf"token{_ASSIGN_TAIL}", _assignment("token-assignment"), "v", True),
    _Rule(
        r"key(?:"
        + "|".join(f"(?<={p}{s}key)" for p in ("api", "access", "private") for s in ("", "_", "-"))
        + f"){_ASSIGN_TAIL}",
        _assignment("secret-assignment"),
        "v",
        True,
    ),
    # Prose and any other layout the assignments miss: "the secret is …", "my token: …", "key 9f86…".
    _Rule(rf"secrets?{_PROSE_TAIL}", _prose("secret"), "v", True),
    _Rule(rf"tokens?{_PROSE_TAIL}", _prose("token"), "v", True),
    _Rule(rf"pass(?:w(?:or)?ds?|phrases?){_PROSE_TAIL}", _prose("password"), "v", True),
    _Rule(_PASSWORD_PROSE, _password_prose, "v", True),
    _Rule(rf"credentials?{_PROSE_TAIL}", _prose("credential"), "v", True),
    _Rule(rf"auths?{_PROSE_TAIL}", _prose("auth"), "v", True),  # docker's "auth": "<base64 user:token>"
    _Rule(rf"keys?{_PROSE_TAIL}", _prose("key"), "v", True),
)


_COMPILED = tuple((rule, re.compile(rule.pattern.encode())) for rule in _RULES)


def _run(data: bytes) -> tuple[bytes, Counter[str]]:
    counts: Counter[str] = Counter()
    low = None
    for rule, regex in _COMPILED:
        hay = data
        if rule.lowered:
            hay = low = data.lower() if low is None else low
        pieces: list[bytes] = []
        pos = 0
        for m in regex.finditer(hay):
            kind = rule.check(m, data)
            start, end = m.span(rule.group)
            start -= rule.back
            if kind is None or start < pos:
                continue
            pieces += (data[pos:start], f"[REDACTED:{kind}]".encode())
            pos = end
            counts[kind] += 1
        if pieces:
            pieces.append(data[pos:])
            data = b"".join(pieces)
            low = None
    return data, counts


# A shell command that reads a .env file (`cat .env`, `source .env.local`, `x.env`).
_ENV_COMMAND = re.compile(r"(?:^|[\s/'\"=])\.env(?:\.[\w.-]+)?\b|\.envrc\b|\w\.env\b")


@dataclass
class Redactor:
    """Stateless apart from compiled patterns (module-level, shared); cheap to build."""

    def redact_text(self, text: str) -> tuple[str, Counter[str]]:
        # surrogatepass: transcripts can carry lone surrogates from JSON \ud800 escapes.
        out, counts = _run(text.encode("utf-8", "surrogatepass"))
        return (out.decode("utf-8", "surrogatepass") if counts else text), counts

    def redact_bytes(self, raw: bytes) -> tuple[bytes, Counter[str]]:
        """Redact a raw UTF-8 (JSONL) line; valid JSON in gives valid JSON out."""
        return _run(raw)

    def redact_env_values(self, text: str) -> tuple[str, Counter[str]]:
        """Blank every value of a dotenv listing (plain, or Read-tool numbered), then
        apply the ordinary rules too, since comments can hold secrets as well."""
        counts: Counter[str] = Counter()
        out: list[str] = []
        open_quote = ""  # inside a quoted value that spans several lines
        for line in text.split("\n"):
            # _ENV_LINE has only optional parts, so it matches every line.
            prefix, body, cr = _ENV_LINE.fullmatch(line).group("prefix", "body", "cr")  # type: ignore[union-attr]
            prefix = prefix or ""
            if open_quote:
                open_quote = "" if open_quote in body else open_quote
                out.append(f"{prefix}{_ENV_PLACEHOLDER}{cr}")
                continue
            kv = _ENV_ASSIGN.fullmatch(body)
            if kv is None or not kv.group("value") or _PLACEHOLDER.fullmatch(kv.group("value")):
                out.append(line)
                continue
            value = kv.group("value")
            if value[0] in "\"'" and value[0] not in value[1:]:
                open_quote = value[0]
            counts["env-value"] += 1
            out.append(f"{prefix}{kv.group('lead')}{_ENV_PLACEHOLDER}{cr}")
        redacted, more = self.redact_text("\n".join(out))
        return redacted, counts + more

    def redact_env_reads(
        self,
        obj: dict[str, Any],
        env_tool_ids: set[str],
        secrets: Counter[str],
        read_before: Callable[[Any], bool] = lambda _id: False,
    ) -> bool:
        """Blank the values of .env files that a tool read or wrote, in one record; True if it changed.

        A tool call that reads a .env file (Read of one, or a shell command naming one) adds its id to
        `env_tool_ids`; a tool result for such a call, or for one `read_before(tool_use_id)` knows from an
        earlier ingest (results can arrive a batch later), has its text and `toolUseResult` values blanked.
        A Write, Edit or MultiEdit of a .env file has the values in its own input blanked too, and in its
        result the old and new strings, the original file and the patch.
        """
        message = obj.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            return False
        changed = False
        extra = obj.get("toolUseResult")
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use" and isinstance(block.get("input"), dict):
                inp = block["input"]
                target = inp.get("file_path") or inp.get("path") or ""
                command = inp.get("command") or ""
                writes_env = isinstance(target, str) and is_env_file(target)
                if writes_env or (isinstance(command, str) and _ENV_COMMAND.search(command)):
                    env_tool_ids.add(str(block.get("id")))
                if writes_env:
                    edits = inp.get("edits") if isinstance(inp.get("edits"), list) else []
                    for holder in (inp, *[e for e in edits if isinstance(e, dict)]):
                        for key in ("content", "old_string", "new_string"):
                            changed |= self._scrub_env(holder, key, secrets)
            elif block.get("type") == "tool_result":
                read_path = (
                    extra.get("file", {}).get("filePath")
                    if isinstance(extra, dict) and isinstance(extra.get("file"), dict)
                    else extra.get("filePath")  # Edit and Write results name the file here
                    if isinstance(extra, dict)
                    else None
                )
                tool_use_id = block.get("tool_use_id")
                if (
                    str(tool_use_id) in env_tool_ids  # str(): a hostile line may put a list here
                    or (isinstance(read_path, str) and is_env_file(read_path))
                    or read_before(tool_use_id)
                ):
                    changed |= self._scrub_env(block, "content", secrets)
                    if isinstance(extra, dict):
                        changed |= self._scrub_env_result(extra, secrets)
        return changed

    def _scrub_env_result(self, extra: dict[str, Any], secrets: Counter[str]) -> bool:
        """The values in a tool's `toolUseResult`: Read's file, Bash's output, Edit's strings and patch."""
        changed = False
        holders = [(extra.get("file"), "content"), (extra, "stdout"), (extra, "content")]
        holders += [(extra, key) for key in ("oldString", "newString", "originalFile")]
        for holder, key in holders:
            if isinstance(holder, dict):
                changed |= self._scrub_env(holder, key, secrets)
        hunks = extra.get("structuredPatch")
        for hunk in hunks if isinstance(hunks, list) else []:
            lines = hunk.get("lines") if isinstance(hunk, dict) else None
            if isinstance(lines, list) and all(isinstance(x, str) for x in lines):
                # "+KEY=value": the sign is not part of the assignment
                new = [x[:1] + self.redact_env_values(x[1:])[0] if x[:1] in "+- " else x for x in lines]
                count = sum(a != b for a, b in zip(lines, new, strict=True))
                if count:
                    hunk["lines"] = new
                    secrets["env-value"] += count
                    changed = True
        return changed

    def _scrub_env(self, holder: dict[str, Any], key: str, secrets: Counter[str]) -> bool:
        value = holder.get(key)
        if isinstance(value, list):
            return any([self._scrub_env(b, "text", secrets) for b in value if isinstance(b, dict)])
        if not isinstance(value, str):
            return False
        new, found = self.redact_env_values(value)
        if new == value:
            return False
        holder[key] = new
        secrets.update(found)
        return True


_ENV_PLACEHOLDER = "[REDACTED:env-value]"
_PLACEHOLDER = re.compile(r"\[REDACTED:[a-z-]+\]")  # already redacted (redact_bytes ran first)
_ENV_LINE = re.compile(r"(?P<prefix>\s*\d+(?:→|\t))?(?P<body>.*?)(?P<cr>\r?)", re.DOTALL)
_ENV_ASSIGN = re.compile(r"(?P<lead>\s*(?:export\s+)?[A-Za-z_][\w.-]*\s*=\s*)(?P<value>.*)")
_ENV_NAME = re.compile(r"\.env(?:\..+)?|.+\.env|\.envrc")


def is_env_file(path: str) -> bool:
    """.env, .env.local, .env.production, foo.env, .envrc (not env.py, .environment.py)."""
    return _ENV_NAME.fullmatch(re.split(r"[\\/]", path)[-1]) is not None
