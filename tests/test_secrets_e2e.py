"""Planted secrets go through the real ingest and are found nowhere in the store or the archive, nor in the
training data built from that store, nor in what recall returns; look-alikes that are no secret survive."""

from __future__ import annotations

import gzip
import random
import re
import string
import sys
from pathlib import Path

import pytest
from conftest import record, write_jsonl

from lmm_mcp.app import App
from lmm_mcp.config import Config
from lmm_mcp.ingest import Ingester
from trainer.pairs import build_dataset
from trainer.settings import DataSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from redaction import damaged, kept, survivors, tree_bytes
from secrets_corpus import write_clean_corpus, write_secret_corpus

rng = random.Random(7)


def rand(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


UPPER = string.ascii_uppercase + string.digits
B64 = string.ascii_letters + string.digits + "+/"

# (kind, secret value, the text it is planted in); prefixes are split so this file is no secret itself.
SECRETS: list[tuple[str, str, str]] = []


def plant(kind: str, value: str, template: str = "{}") -> None:
    SECRETS.append((kind, value, template.format(value)))


plant("openai", "sk-" + "proj-" + rand(48), "export OPENAI_API_KEY={}")
plant("openai", "sk-" + rand(48), "client = OpenAI(api_key='{}')")
plant(
    "anthropic",
    "sk-" + "ant-api03-" + rand(80, string.ascii_letters + string.digits + "-_") + "AA",
    "ANTHROPIC_API_KEY={}",
)
plant("aws-id", "AKIA" + rand(16, UPPER), "aws_access_key_id = {}")
plant("aws-id", "ASIA" + rand(16, UPPER), "the key {} was rotated")
plant("aws-secret", rand(40, B64), "aws_secret_access_key = {}")
plant("aws-secret", rand(40, B64), 'AWS_SECRET_ACCESS_KEY="{}"')
plant("github", "ghp_" + rand(36), "git remote set-url origin https://{}@github.com/acme/app.git")
plant("github", "github_pat_" + rand(22) + "_" + rand(59), "GH_TOKEN: {}")
plant("github", "gho_" + rand(36), "oauth {} expired")
plant(
    "gitlab",
    "glpat-" + rand(20),
    "curl --header 'PRIVATE-TOKEN: {}' https://gitlab.example.com/api/v4/projects",
)
plant(
    "slack",
    "xoxb-" + rand(11, string.digits) + "-" + rand(12, string.digits) + "-" + rand(24),
    "SLACK_BOT={}",
)
plant(
    "slack-webhook",
    "https://hooks.slack.com/services/T" + rand(8, UPPER) + "/B" + rand(8, UPPER) + "/" + rand(24),
    "post to {}",
)
plant("stripe", "sk_" + "live_" + rand(24), "stripe.api_key = '{}'")
plant("stripe", "rk_" + "live_" + rand(24), "restricted {}")
plant("google", "AIza" + rand(35, string.ascii_letters + string.digits + "-_"), "maps key {}")
plant("google-oauth", "GOCSPX-" + rand(28), "client_secret: {}")
plant(
    "jwt",
    "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0." + rand(43, string.ascii_letters + "-_"),
    "cookie session={}",
)
plant(
    "private-key",
    rand(64, B64),
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEow{}\n" + rand(64, B64) + "\n-----END RSA PRIVATE KEY-----",
)
plant("bearer", rand(40), "curl -H 'Authorization: Bearer {}' https://api.example.com")
plant("conn-string", rand(16), "DATABASE_URL=postgres://app:{}@db.internal:5432/app")
plant("conn-string", rand(14), "mongodb+srv://admin:{}@cluster0.example.net/test")
plant("password", rand(14), "password={}")
plant("password", rand(12), 'db_password: "{}"')
plant("token", rand(32), "api_token = {}")
plant("secret", rand(30), "SECRET_KEY={}")
plant("npm", "npm_" + rand(36), "//registry.npmjs.org/:_authToken={}")
plant("huggingface", "hf_" + rand(34), "HF_TOKEN={}")
ENV_VALUES = [rand(18), rand(22), rand(9)]
ENV_FILE = f"# local settings\nDEBUG=true\nMAILGUN_KEY={ENV_VALUES[0]}\nexport REDIS_PASS={ENV_VALUES[1]}\nSITE={ENV_VALUES[2]}\n"


def transcript(path: Path) -> None:
    records, parent = [], None
    for i, (_, _, text) in enumerate(SECRETS):
        where = i % 4
        u = f"u{i}"
        if where == 0:
            records.append(record(u, f"please use this: {text}", parent=parent))
        elif where == 1:
            records.append(
                record(
                    u,
                    role="assistant",
                    parent=parent,
                    blocks=[{"type": "tool_use", "id": f"t{i}", "name": "Bash", "input": {"command": text}}],
                )
            )
        elif where == 2:
            records.append(
                record(
                    u,
                    parent=parent,
                    toolUseResult={"stdout": text, "stderr": "", "interrupted": False},
                    blocks=[{"type": "tool_result", "tool_use_id": f"t{i}", "content": text}],
                )
            )
        else:
            records.append(
                record(
                    u,
                    role="assistant",
                    parent=parent,
                    blocks=[
                        {"type": "thinking", "thinking": f"I saw {text}"},
                        {"type": "text", "text": f"Noted: {text}"},
                    ],
                )
            )
        parent = u
    numbered = "\n".join(f"{n + 1:>6}→{line}" for n, line in enumerate(ENV_FILE.splitlines()))
    records.append(
        record(
            "r-env",
            role="assistant",
            parent=parent,
            blocks=[
                {"type": "tool_use", "id": "t-env", "name": "Read", "input": {"file_path": "/work/app/.env"}}
            ],
        )
    )
    records.append(
        record(
            "r-env-result",
            parent="r-env",
            toolUseResult={"type": "text", "file": {"filePath": "/work/app/.env", "content": ENV_FILE}},
            blocks=[{"type": "tool_result", "tool_use_id": "t-env", "content": numbered}],
        )
    )
    records.append(
        record(
            "b-env",
            role="assistant",
            parent="r-env-result",
            blocks=[
                {
                    "type": "tool_use",
                    "id": "t-cat",
                    "name": "Bash",
                    "input": {"command": "cat .env.production"},
                }
            ],
        )
    )
    records.append(
        record(
            "b-env-result",
            parent="b-env",
            toolUseResult={"stdout": ENV_FILE, "stderr": "", "interrupted": False},
            blocks=[{"type": "tool_result", "tool_use_id": "t-cat", "content": ENV_FILE}],
        )
    )
    write_jsonl(path, records)


def test_planted_secrets_never_reach_store_or_archive(cfg, conn):
    kinds = {k for k, _, _ in SECRETS}
    assert len(SECRETS) >= 25 and len(kinds) >= 15
    transcript(cfg.claude_dir / "-work-app" / "s.jsonl")
    report = Ingester(cfg, conn).ingest()
    assert report.errors == [] and report.lines_skipped == 0
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db_text = "\n".join(conn.iterdump())
    db_bytes = cfg.db_path.read_bytes()
    archive = b"".join(gzip.decompress(p.read_bytes()) for p in cfg.archive_dir.rglob("*.gz"))
    assert archive, "the archive must exist"
    values = [v for _, v, _ in SECRETS] + ENV_VALUES
    for value in values:
        assert value not in db_text, value
        assert value.encode() not in db_bytes, value
        assert value.encode() not in archive, value
    assert "[REDACTED:" in db_text and b"[REDACTED:" in archive
    assert report.secrets_redacted >= len(values)
    # the conversation around them survives
    assert conn.execute("SELECT count(*) FROM turns").fetchone()[0] == len(SECRETS) + 4
    assert "DEBUG=" in db_text


def test_env_read_whose_result_arrives_in_a_later_ingest(cfg, conn):
    path = cfg.claude_dir / "-work-app" / "s.jsonl"
    call = record(
        "c1",
        role="assistant",
        blocks=[
            {"type": "tool_use", "id": "t-late", "name": "Bash", "input": {"command": "cat config/.env"}}
        ],
    )
    write_jsonl(path, [call])
    ing = Ingester(cfg, conn)
    ing.ingest()
    result = record(
        "c2",
        parent="c1",
        toolUseResult={"stdout": ENV_FILE, "stderr": "", "interrupted": False},
        blocks=[{"type": "tool_result", "tool_use_id": "t-late", "content": ENV_FILE}],
    )
    write_jsonl(path, [result], mode="ab")
    ing.ingest()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db_text = "\n".join(conn.iterdump())
    archive = b"".join(gzip.decompress(p.read_bytes()) for p in cfg.archive_dir.rglob("*.gz"))
    for value in ENV_VALUES:
        assert value not in db_text and value.encode() not in archive


# What a user might ask that lands on the sessions holding the secrets.
RECALL_QUERIES = [
    "AWS key and secret for boto3",
    "password for the staging db",
    "API key you asked for",
    "HMAC signing key for the webhook verifier",
    "encryption secret for the session cookies",
    "what is in the .env file",
    "stripe webhook signing secret",
    "git remote set-url origin github",
    "kubectl get secret shop",
    "npmrc authToken",
    "configure credentials settings.py diff",
    "pypirc password token",
    "vault kv get",
    "mongodb cluster admin",
    "slack bot token",
    "private key",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A store ingested from the generated secret and clean corpora, with the training data built from it."""
    base = tmp_path_factory.mktemp("corpus")
    root = base / "projects"
    planted = write_secret_corpus(root / "secret", seed=11)
    clean = write_clean_corpus(root / "clean", seed=11)
    cfg = Config.load(home=base / "home", claude_dir=root)
    app = App.open(cfg)
    report = app.ingest([root], embed=False)
    assert report.errors == [] and report.lines_skipped == 0
    data = base / "run" / "data"
    build_dataset(app.history(), data, DataSettings(k=4, written_study="off", min_sessions=3))
    app.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    yield {"app": app, "cfg": cfg, "root": root, "planted": planted, "clean": clean, "data": data}
    app.close()


def test_the_corpus_is_broad(corpus):
    planted = corpus["planted"]
    assert len(planted) >= 50 and len({p.kind for p in planted}) >= 20
    places = {"prose", "command", "tool-output", "env-read", "env-write", "diff", "file-write"}
    assert {p.where for p in planted} == places


def test_no_planted_secret_in_store_fts_or_archive(corpus):
    places = kept(corpus["cfg"], corpus["app"].conn)
    assert b"[REDACTED:" in places["db-dump"] and b"[REDACTED:" in places["archive"]
    leaks = survivors(corpus["planted"], places)
    assert leaks == [], [f"{p.kind} ({p.where}) survives in {where}" for p, where in leaks]


def test_no_planted_secret_among_the_search_terms(corpus):
    """The FTS5 index keeps stemmed lowercase terms, not text: look for each secret's words among them."""
    terms = {t for (t,) in corpus["app"].conn.execute("SELECT term FROM chunks_vocab") if len(t) >= 8}
    sha = next(c.value for c in corpus["clean"] if c.kind == "commit-sha")
    assert sha in terms  # the check can see a random-looking word when it is there
    found = [
        (p.kind, word)
        for p in corpus["planted"]
        for word in re.findall(r"[a-z0-9]{10,}", p.value.lower())
        if any(word[:n] in terms for n in range(len(word) - 3, len(word) + 1))  # porter may cut a suffix
    ]
    assert found == []


def test_no_planted_secret_in_training_data(corpus):
    files = sorted(corpus["data"].glob("*.json*"))
    assert {f.name for f in files} >= {"cpt_train.jsonl", "cpt_val.jsonl", "sft_train.jsonl", "sft_val.jsonl"}
    text = b"".join(f.read_bytes() for f in files)
    assert b"[REDACTED:" in text, (
        "the secrets' sessions must reach the training data for this to mean anything"
    )
    leaks = survivors(corpus["planted"], {"training data": text})
    assert leaks == [], [f"{p.kind} ({p.where})" for p, _ in leaks]


def test_no_planted_secret_in_recalled_text(corpus):
    recaller = corpus["app"].recaller(vectors=False)
    answers = []
    for query in RECALL_QUERIES:
        result = recaller.recall(query, k=8, mode="retrieve")
        answers.append(result.memory + "\n" + "\n".join(s.snippet for s in result.sources))
    text = "\n".join(answers).encode()
    assert text.count(b"[REDACTED:") >= 10, "recall must reach the places the secrets were"
    leaks = survivors(corpus["planted"], {"recall": text})
    assert leaks == [], [f"{p.kind} ({p.where})" for p, _ in leaks]


def test_clean_look_alikes_survive(corpus):
    clean = corpus["clean"]
    archive = kept(corpus["cfg"], corpus["app"].conn)["archive"]
    hurt = damaged(clean, tree_bytes(corpus["root"] / "clean"), archive)
    assert len(hurt) / len(clean) <= 0.05, [(c.kind, c.value) for c in hurt]
    assert not [c for c in hurt if c.kind in ("commit-sha", "uuid", "base64-image", "long-identifier")]
