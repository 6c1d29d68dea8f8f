"""Claude Code transcripts with planted fake secrets, and clean ones that only look random: redaction checks.

    python bench/secrets_corpus.py OUT_DIR [--seed 0]     # writes OUT_DIR/secret/ and OUT_DIR/clean/

`write_secret_corpus(root, seed)` writes sessions where secrets of more than 30 kinds sit where they turn up
in real work: said in prose, typed in a command, printed by a tool, read from a `.env` file (Read tool and
`cat`), written to one (Write, Edit), inside an edit (its strings and its patch, and `git diff` output) and
in a written config file. It returns every value it planted. `write_clean_corpus(root, seed)` writes sessions full of things that look
random and are no secret (commit hashes, checksums, UUIDs, container ids, image digests, integrity hashes,
base64 images, long identifiers), some right next to a word like "key" or "token", and returns them.

Every value is drawn from one seeded `random.Random`; provider prefixes are assembled from pieces, so no real
credential is in here and the file itself trips no secret scanner.
"""

from __future__ import annotations

import argparse
import base64
import random
import re
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ALNUM = string.ascii_letters + string.digits
UPPER = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"
PROJECTS = ("/home/dev/shop-api", "/home/dev/infra", "/home/dev/ml-notebooks")


@dataclass(frozen=True)
class Planted:
    kind: str
    value: str
    where: str  # prose | command | tool-output | env-read | env-write | diff | file-write


@dataclass(frozen=True)
class Clean:
    kind: str
    value: str
    near_keyword: bool  # a word like "key" or "token" stands right before it: the hard cases


def _r(rng: random.Random, n: int, alphabet: str = ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _jwt(rng: random.Random) -> str:
    head = _b64url(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    body = _b64url(
        orjson.dumps({"sub": _r(rng, 10), "iat": rng.randint(1_700_000_000, 1_800_000_000), "role": "admin"})
    )
    return f"{head}.{body}.{_b64url(rng.randbytes(32))}"


def _pem(rng: random.Random) -> str:
    body = "\n".join(_r(rng, 64, B64) for _ in range(5))
    label = rng.choice(["RSA ", "OPENSSH ", "EC ", ""])
    return f"-----BEGIN {label}PRIVATE KEY-----\n{body}\n-----END {label}PRIVATE KEY-----"


# kind -> a fresh value of that kind
SECRET_KINDS: dict[str, Callable[[random.Random], str]] = {
    "openai-api-key": lambda g: "sk-" + "proj-" + _r(g, 64, URLSAFE),
    "anthropic-api-key": lambda g: "sk-" + "ant-api03-" + _r(g, 93, URLSAFE) + "AA",
    "aws-access-key": lambda g: "AK" + "IA" + _r(g, 16, UPPER),
    "aws-secret-key": lambda g: _r(g, 40, B64),
    "github-token": lambda g: "gh" + "p_" + _r(g, 36),
    "github-fine-grained-token": lambda g: "github_" + "pat_" + _r(g, 22) + "_" + _r(g, 59),
    "gitlab-token": lambda g: "gl" + "pat-" + _r(g, 20, URLSAFE),
    "slack-token": lambda g: (
        "xo" + "xb-" + _r(g, 11, string.digits) + "-" + _r(g, 12, string.digits) + "-" + _r(g, 24)
    ),
    "slack-webhook": lambda g: "T" + _r(g, 8, UPPER) + "/B" + _r(g, 10, UPPER) + "/" + _r(g, 24),
    "stripe-key": lambda g: "sk" + "_live_" + _r(g, 60),
    "stripe-webhook-secret": lambda g: "wh" + "sec_" + _r(g, 32),
    "google-api-key": lambda g: "AI" + "za" + _r(g, 35, URLSAFE),
    "google-oauth-secret": lambda g: "GOC" + "SPX-" + _r(g, 28, URLSAFE),
    "jwt": _jwt,
    "npm-token": lambda g: "np" + "m_" + _r(g, 36),
    "huggingface-token": lambda g: "h" + "f_" + _r(g, 34),
    "private-key": _pem,
    "bearer-token": lambda g: _r(g, 40, ALNUM + "-._~"),
    "basic-auth": lambda g: base64.b64encode(f"deploy:{_r(g, 18)}".encode()).decode(),
    "connection-string-password": lambda g: _r(g, 20),
    "password-assignment": lambda g: _r(g, 14, ALNUM + "!@^"),
    "token-assignment": lambda g: _r(g, 32),
    "secret-assignment": lambda g: _r(g, 40, URLSAFE),
    "sendgrid-key": lambda g: "S" + "G." + _r(g, 22, URLSAFE) + "." + _r(g, 43, URLSAFE),
    "digitalocean-token": lambda g: "do" + "p_v1_" + _r(g, 64, HEX),
    "shopify-token": lambda g: "sh" + "pat_" + _r(g, 32, HEX),
    "pypi-token": lambda g: "py" + "pi-AgEIcHlwaS5vcmc" + _r(g, 70, URLSAFE),
    "vault-token": lambda g: "hv" + "s." + _r(g, 90, URLSAFE),
    "linear-key": lambda g: "lin" + "_api_" + _r(g, 40),
    "postman-key": lambda g: "PM" + "AK-" + _r(g, 24, HEX) + "-" + _r(g, 34, HEX),
    "databricks-token": lambda g: "da" + "pi" + _r(g, 32, HEX),
    "twilio-key": lambda g: "S" + "K" + _r(g, 32, HEX),
    "prose-password": lambda g: _r(g, 16),
    # what a person picks: a word, digits, maybe a symbol ("Summer2024!", "falcon-77")
    "human-password": lambda g: (
        g.choice(["Summer", "falcon", "Blue", "tiger", "Maple", "orange"])
        + g.choice(["", "-", "_"])
        + str(g.randint(1, 9999))
        + g.choice(["", "!", "#", "?"])
    ),
    "prose-api-key": lambda g: _r(g, 32),
    "hex-key": lambda g: _r(g, 64, HEX),
    "base64-key": lambda g: base64.b64encode(g.randbytes(32)).decode(),
    "env-value": lambda g: _r(g, g.randint(8, 24), ALNUM + "_"),
    "password-flag": lambda g: _r(g, 14, ALNUM + "!@^"),
    "short-pass-assignment": lambda g: _r(g, 12),
    "docker-auth": lambda g: base64.b64encode(f"bot:{_r(g, 36)}".encode()).decode(),
    "netrc-password": lambda g: _r(g, 24),  # a .env value no pattern would know
}

# Where each secret is planted: (where, template); <<kind>> is replaced by a fresh value of that kind.
EPISODES: list[tuple[str, str]] = [
    ("prose", "my AWS key is <<aws-access-key>> and the secret is <<aws-secret-key>>, can you set up boto3?"),
    ("prose", "I set ANTHROPIC_API_KEY to <<anthropic-api-key>> in my shell; check the client picks it up"),
    ("prose", "The password for the staging db is <<prose-password>>. Run the migration there."),
    ("prose", "Here's the API key you asked for: <<prose-api-key>>"),
    ("prose", "My password for the staging admin is <<human-password>>, log in and check the queue."),
    ("prose", "the office wifi passphrase was <<human-password>> last time I looked"),
    ("prose", "the HMAC signing key is <<hex-key>> (hex), use it in the webhook verifier"),
    ("prose", "use this encryption secret -> <<base64-key>> for the session cookies"),
    ("prose", "session cookie was <<jwt>> when it failed"),
    ("prose", "the Twilio API key SID is <<twilio-key>> and the Slack bot uses <<slack-token>>"),
    ("command", "export OPENAI_API_KEY=<<openai-api-key>> && python scripts/eval.py"),
    ("command", "git remote set-url origin https://<<github-token>>@github.com/acme/shop-api.git"),
    ("command", "glab auth login --hostname gitlab.example.com --token <<gitlab-token>>"),
    ("command", "curl -H 'Authorization: Bearer <<bearer-token>>' https://api.example.com/v1/orders"),
    ("command", "psql postgres://app:<<connection-string-password>>@db.internal:5432/shop -c 'select 1'"),
    ("command", "huggingface-cli login --token <<huggingface-token>>"),
    ("command", "twine upload -u __token__ -p <<pypi-token>> dist/*"),
    ("command", "doctl auth init -t <<digitalocean-token>>"),
    ("command", "VAULT_TOKEN=<<vault-token>> vault kv get secret/shop"),
    ("command", "databricks configure --token <<databricks-token>>"),
    ("command", "curl -X POST -d @payload.json https://hooks.slack.com/services/<<slack-webhook>>"),
    ("command", "mysqldump -h db.internal -u shop -p'<<password-flag>>' shop > dump.sql"),
    ("command", "curl -s -u deploy:<<password-flag>> https://ci.example.com/job/shop/api/json"),
    ("file-write", "smtp:\n  user: mailer\n  pass: <<short-pass-assignment>>\n"),
    ("command", "stripe listen --api-key <<stripe-key>> --forward-to localhost:8000/hooks"),
    (
        "tool-output",
        "[default]\naws_access_key_id = <<aws-access-key>>\naws_secret_access_key = <<aws-secret-key>>\n",
    ),
    ("tool-output", "//registry.npmjs.org/:_authToken=<<npm-token>>\nsave-exact=true\n"),
    ("tool-output", "apiVersion: v1\ndata:\n  password: <<password-assignment>>\nkind: Secret\n"),
    ("tool-output", '{"client_id": "1234.apps.example.com", "client_secret": "<<google-oauth-secret>>"}'),
    ("tool-output", "Ready! Your webhook signing secret is <<stripe-webhook-secret>> (^C to quit)"),
    ("tool-output", "<<private-key>>"),
    ("tool-output", "GITHUB_TOKEN=<<github-fine-grained-token>>\nCI=true\n"),
    ("tool-output", "postman: logged in with <<postman-key>>"),
    ("tool-output", '{\n  "auths": {\n    "ghcr.io": {\n      "auth": "<<docker-auth>>"\n    }\n  }\n}'),
    ("tool-output", "machine api.heroku.com\n  login dev@example.com\n  password <<netrc-password>>\n"),
    ("tool-output", "HTTP/1.1 200 OK\nset-cookie: access_token=<<token-assignment>>; HttpOnly\n"),
    ("env-read", "ANTHROPIC_API_KEY=<<anthropic-api-key>>"),
    ("env-read", "STRIPE_SECRET_KEY=<<stripe-key>>"),
    ("env-read", "SITE_SALT=<<env-value>>"),
    ("env-read", 'SESSION_SIGNER="<<env-value>>"'),
    ("env-read", "export MAILER_PASS=<<env-value>>"),
    ("env-read", "DATABASE_URL=postgres://shop:<<connection-string-password>>@localhost/shop"),
    ("env-read", "SENDGRID_API_KEY=<<sendgrid-key>>"),
    ("env-read", "LINEAR_API_KEY=<<linear-key>>"),
    ("env-read", "GOOGLE_MAPS_KEY=<<google-api-key>>"),
    ("env-read", "OBSCURE_SETTING=<<env-value>>"),
    ("env-write", "SITE_SALT=<<env-value>>\nCACHE_TTL=<<env-value>>"),
    ("env-write", "WEBHOOK_SIGNER=<<env-value>>"),
    ("env-write", "export SMTP_PASS=<<env-value>>"),
    ("diff", 'client = OpenAI(api_key="<<openai-api-key>>")'),
    ("diff", "SECRET_KEY = '<<secret-assignment>>'"),
    ("diff", 'shopify = Shopify(access_token="<<shopify-token>>")'),
    ("diff", "    password: <<password-assignment>>"),
    ("diff", 'headers = {"Authorization": "Basic <<basic-auth>>"}'),
    ("diff", "REDIS_URL = 'redis://:<<connection-string-password>>@cache:6379/0'"),
    ("diff", "const linear = new LinearClient({ apiKey: '<<linear-key>>' })"),
    ("diff", "HF_TOKEN=<<huggingface-token>>"),
    ("file-write", "stripe:\n  api_key: <<stripe-key>>\n  webhook_secret: <<stripe-webhook-secret>>\n"),
    ("file-write", "[pypi]\n  username = __token__\n  password = <<pypi-token>>\n"),
    ("file-write", "mongodb+srv://admin:<<connection-string-password>>@cluster0.ab1cd.mongodb.net/app"),
    ("file-write", "SLACK_BOT_TOKEN=<<slack-token>>\nSLACK_SIGNING_SECRET=<<hex-key>>\n"),
    ("file-write", "GITLAB_TOKEN: <<gitlab-token>>\nAPI_TOKEN: <<token-assignment>>\n"),
    ("file-write", "jwt_secret: <<secret-assignment>>\nsendgrid: <<sendgrid-key>>\n"),
    ("file-write", "<<private-key>>\n"),
]

# Things that look random and are no secret: kind -> (value maker, templates with <<v>>, near a keyword?)
CLEAN_KINDS: dict[str, tuple[Callable[[random.Random], str], tuple[str, ...], bool]] = {
    "commit-sha": (
        lambda g: _r(g, 40, HEX),
        ("commit <<v>>\nAuthor: Dana <dana@example.com>\n\n    fix the refresh path", "git checkout <<v>>"),
        False,
    ),
    "sha256-checksum": (lambda g: _r(g, 64, HEX), ("<<v>>  dist/shop_api-1.4.2.tar.gz",), False),
    "uuid": (
        lambda g: str(uuid.UUID(int=g.getrandbits(128), version=4)),
        ("INFO request <<v>> finished in 12 ms", '{"order_id": "<<v>>", "status": "paid"}'),
        False,
    ),
    "container-id": (lambda g: _r(g, 64, HEX), ('"Id": "<<v>>",', "docker logs <<v>> --tail 50"), False),
    "image-digest": (
        lambda g: "sha256:" + _r(g, 64, HEX),
        ("Digest: <<v>>\nStatus: Downloaded newer image",),
        False,
    ),
    "npm-integrity": (
        lambda g: "sha512-" + base64.b64encode(g.randbytes(64)).decode(),
        ('"integrity": "<<v>>",',),
        False,
    ),
    "pip-hash": (lambda g: _r(g, 64, HEX), ("requests==2.32.3 --hash=sha256:<<v>>",), False),
    "go-sum": (
        lambda g: "h1:" + base64.b64encode(g.randbytes(32)).decode(),
        ("github.com/spf13/cobra v1.8.1 <<v>>",),
        False,
    ),
    "base64-image": (
        lambda g: base64.b64encode(b"\x89PNG\r\n\x1a\n" + g.randbytes(120)).decode(),
        ("data:image/png;base64,<<v>>", "IMAGE_BLOCK <<v>>"),
        False,
    ),
    "long-identifier": (
        lambda g: (
            "".join(g.choice(_WORDS).capitalize() for _ in range(g.randint(4, 6))) + str(g.randint(2, 9))
        ),
        ("class <<v>>(BaseHandler):", "from shop.handlers import <<v>>"),
        False,
    ),
    "snake-identifier": (
        lambda g: "_".join(g.choice(_WORDS) for _ in range(g.randint(4, 7))) + f"_v{g.randint(2, 9)}",
        ("def <<v>>(self) -> None:", "tests/test_orders.py::<<v>> PASSED"),
        False,
    ),
    # The hard ones: a secret-naming word right before something public.
    "token-test-name": (
        lambda g: "test_refresh_token_" + "_".join(g.choice(_WORDS) for _ in range(3)),
        ("token tests: <<v>> PASSED",),
        True,
    ),
    "key-path": (lambda g: f"/home/dev/.ssh/id_ed25519_{g.choice(_WORDS)}", ("the key file is <<v>>",), True),
    "ssh-fingerprint": (
        lambda g: "SHA256:" + base64.b64encode(g.randbytes(32)).decode().rstrip("="),
        ("ED25519 key fingerprint is <<v>>.",),
        True,
    ),
    "idempotency-key": (
        lambda g: str(uuid.UUID(int=g.getrandbits(128), version=4)),
        ("retrying with idempotency key <<v>>",),
        True,
    ),
    "tokenizer-hash": (lambda g: _r(g, 64, HEX), ("tokenizer.json sha256 <<v>>",), True),
}
_WORDS = (
    "order",
    "refund",
    "invoice",
    "ledger",
    "account",
    "customer",
    "payment",
    "session",
    "cache",
    "report",
    "export",
    "import",
    "batch",
    "worker",
    "queue",
    "handler",
    "factory",
    "builder",
    "adapter",
    "service",
    "client",
    "gateway",
    "policy",
    "schedule",
    "retry",
)

_FIELD = re.compile(r"<<([a-z0-9-]+)>>")


def write_secret_corpus(root: Path, seed: int = 0) -> list[Planted]:
    """Write the sessions with planted secrets under `root`; return every planted value."""
    rng = random.Random(seed)
    planted: list[Planted] = []
    sessions: list[_Session] = [_Session(rng, PROJECTS[i % len(PROJECTS)]) for i in range(6)]
    for n, (where, template) in enumerate(EPISODES):
        found: list[Planted] = []

        def fill(m: re.Match[str], where: str = where, found: list[Planted] = found) -> str:
            value = SECRET_KINDS[m.group(1)](rng)
            found.append(Planted(m.group(1), value, where))
            return value

        text = _FIELD.sub(fill, template)
        sessions[n % len(sessions)].episode(where, text, found)
        planted += found
    for s in sessions:
        s.write(root)
    return planted


def write_clean_corpus(root: Path, seed: int = 0, per_template: int = 3) -> list[Clean]:
    """Write sessions full of public random-looking values under `root`; return them."""
    rng = random.Random(seed + 1)
    items: list[Clean] = []
    sessions = [_Session(rng, PROJECTS[i % len(PROJECTS)]) for i in range(4)]
    n = 0
    for kind, (make, templates, near) in CLEAN_KINDS.items():
        for template in templates:
            for _ in range(per_template):
                value = make(rng)
                items.append(Clean(kind, value, near))
                text = template.replace("<<v>>", value)
                s = sessions[n % len(sessions)]
                if text.startswith("IMAGE_BLOCK "):
                    s.image(value)
                else:
                    s.episode(rng.choice(["prose", "command", "tool-output", "diff", "file-write"]), text, [])
                n += 1
    for s in sessions:
        s.write(root)
    return items


def fragments(value: str) -> list[str]:
    """What must not survive of a secret: the value, each long line of a multi-line one, and each half of a
    long one (a redaction that cut a value in two would leave a half)."""
    parts = [line for line in value.splitlines() if len(line) >= 16 and "PRIVATE KEY" not in line]
    parts = parts if len(parts) > 1 else [value]
    return parts + [half for p in parts if len(p) >= 24 for half in (p[: len(p) // 2], p[len(p) // 2 :])]


class _Session:
    """One transcript being written: a chain of records in the real envelope."""

    def __init__(self, rng: random.Random, cwd: str):
        self.rng = rng
        self.cwd = cwd
        self.id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.records: list[dict[str, Any]] = []
        self.parent: str | None = None
        self.clock = rng.randint(0, 10_000)

    def episode(self, where: str, text: str, found: list[Planted]) -> None:
        topic = " ".join(sorted({p.kind.replace("-", " ") for p in found})) or "the build"
        self._user(f"Next: let's sort out {topic} for {Path(self.cwd).name}.")
        if where == "prose":
            self._user(text)
            self._assistant([{"type": "text", "text": f"Got it. I'll wire that into {topic} now."}])
        elif where == "command":
            self._tool(
                "Bash", {"command": text, "description": f"Configure {topic}"}, "done", {"stdout": "done"}
            )
        elif where == "tool-output":
            cmd = self.rng.choice(
                ["cat ~/.aws/credentials", "kubectl get secret shop -o yaml", "cat ~/.npmrc"]
            )
            self._tool("Bash", {"command": cmd}, text, {"stdout": text, "stderr": "", "interrupted": False})
        elif where == "env-read":
            self._env_read(text)
        elif where == "env-write":
            self._env_write(text)
        elif where == "diff":
            self._diff(text)
        else:
            name = self.rng.choice(["settings.yaml", "deploy.env", ".pypirc", "creds.txt"])
            path = f"{self.cwd}/config/{name}"
            ok = f"File created successfully at: {path}"
            self._tool(
                "Write",
                {"file_path": path, "content": text},
                ok,
                {"type": "create", "filePath": path, "content": text},
            )
        self._assistant([{"type": "text", "text": f"Done with {topic}; the tests pass."}])

    def image(self, data: str) -> None:
        block = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
        self._tool("Read", {"file_path": f"{self.cwd}/docs/screenshot.png"}, [block], {"type": "image"})

    def _env_read(self, line: str) -> None:
        content = f"# local settings\nDEBUG=true\n{line}\nPORT=8000\n"
        path = f"{self.cwd}/.env{self.rng.choice(['', '.local', '.production'])}"
        if self.rng.random() < 0.5:
            numbered = "\n".join(f"{i + 1:>6}→{x}" for i, x in enumerate(content.splitlines()))
            file = {"filePath": path, "content": content, "numLines": 4, "startLine": 1, "totalLines": 4}
            self._tool("Read", {"file_path": path}, numbered, {"type": "text", "file": file})
        else:
            cmd = f"cat {Path(path).name}"
            self._tool(
                "Bash", {"command": cmd}, content, {"stdout": content, "stderr": "", "interrupted": False}
            )

    def _env_write(self, lines: str) -> None:
        """Claude writes or edits a .env file: the values sit in its own call and in the result."""
        path = f"{self.cwd}/.env{self.rng.choice(['', '.local'])}"
        old = "PORT=8000"
        if self.rng.random() < 0.5:
            created = {"type": "create", "filePath": path, "content": lines}
            self._tool("Write", {"file_path": path, "content": lines}, f"File created at: {path}", created)
            return
        patch = [
            {"oldStart": 1, "oldLines": 1, "newStart": 1, "newLines": 2, "lines": [f" {old}", f"+{lines}"]}
        ]
        edit = {"file_path": path, "old_string": old, "new_string": f"{old}\n{lines}"}
        extra = {"filePath": path, "oldString": old, "newString": edit["new_string"], "originalFile": old}
        self._tool("Edit", edit, f"The file {path} has been updated.", {**extra, "structuredPatch": patch})

    def _diff(self, line: str) -> None:
        path = f"{self.cwd}/src/settings.py"
        old = "# TODO: configure credentials"
        if self.rng.random() < 0.5:
            patch = [
                {"oldStart": 3, "oldLines": 1, "newStart": 3, "newLines": 1, "lines": [f"-{old}", f"+{line}"]}
            ]
            edit = {"file_path": path, "old_string": old, "new_string": line}
            extra = {"filePath": path, "oldString": old, "newString": line, "structuredPatch": patch}
            self._tool("Edit", edit, f"The file {path} has been updated.", extra)
        else:
            out = f"diff --git a/src/settings.py b/src/settings.py\n@@ -3 +3 @@\n-{old}\n+{line}\n"
            self._tool(
                "Bash", {"command": "git diff"}, out, {"stdout": out, "stderr": "", "interrupted": False}
            )

    def _tool(self, name: str, inp: dict[str, Any], result: Any, extra: dict[str, Any]) -> None:
        tool_id = "toolu_" + _r(self.rng, 24)
        self._assistant([{"type": "tool_use", "id": tool_id, "name": name, "input": inp}])
        block = {"type": "tool_result", "tool_use_id": tool_id, "content": result}
        self._add({"type": "user", "message": {"role": "user", "content": [block]}, "toolUseResult": extra})

    def _user(self, text: str) -> None:
        self._add({"type": "user", "message": {"role": "user", "content": text}})

    def _assistant(self, blocks: list[dict[str, Any]]) -> None:
        message = {"id": "msg_" + _r(self.rng, 24), "type": "message", "role": "assistant"}
        self._add(
            {"type": "assistant", "message": {**message, "model": "claude-sonnet-4-5", "content": blocks}}
        )

    def _add(self, rec: dict[str, Any]) -> None:
        self.clock += self.rng.randint(2, 90)
        uid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        minutes, seconds = divmod(self.clock, 60)
        hours, minutes = divmod(minutes, 60)
        day = self.rng.randint(1, 28) if not self.records else int(self.records[0]["timestamp"][8:10])
        envelope = {
            "uuid": uid,
            "parentUuid": self.parent,
            "isSidechain": False,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.id,
            "version": "2.1.40",
            "gitBranch": "main",
            "timestamp": f"2026-10-{day:02d}T{hours % 24:02d}:{minutes:02d}:{seconds:02d}.000Z",
        }
        self.records.append({**envelope, **rec})
        self.parent = uid

    def write(self, root: Path) -> Path:
        path = root / re.sub(r"[^a-zA-Z0-9]", "-", self.cwd) / f"{self.id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in self.records))
        return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    planted = write_secret_corpus(args.out / "secret", args.seed)
    clean = write_clean_corpus(args.out / "clean", args.seed)
    kinds = {p.kind for p in planted}
    print(f"{len(planted)} secrets of {len(kinds)} kinds, {len(clean)} clean values, under {args.out}")


if __name__ == "__main__":
    main()
