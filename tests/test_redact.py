"""Secret redaction: planted fake secrets vanish, ordinary code and prose survive, JSON stays JSON.

Every fake secret is assembled at import time from a provider prefix plus seeded random characters,
so this file contains nothing a secret scanner would flag.
"""

from __future__ import annotations

import base64
import random
import string
from collections import Counter

import orjson
import pytest

from transcripts.redact import Redactor, is_env_file

R = Redactor()
_rng = random.Random(20240601)
ALNUM = string.ascii_letters + string.digits
UPPER = string.ascii_uppercase + string.digits
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def pem(label: str, lines: int = 6, end: bool = True, nl: str = "\n") -> tuple[str, str]:
    """A fake PEM block and one of its body lines (the thing that must disappear)."""
    body = [rand(64, B64) for _ in range(lines)]
    block = nl.join([f"-----BEGIN {label}PRIVATE KEY-----", *body])
    if end:
        block += f"{nl}-----END {label}PRIVATE KEY-----"
    return block, body[2]


OPENAI_LEGACY = "sk-" + rand(48)
OPENAI_PROJ = "sk-" + "proj-" + rand(74, URLSAFE) + "T3Blbk" + "FJ" + rand(74, URLSAFE)
OPENAI_SVC = "sk-" + "svcacct-" + rand(60, URLSAFE)
ANTHROPIC = "sk-" + "ant-api03-" + rand(93, URLSAFE) + "AA"
ANTHROPIC_ADMIN = "sk-" + "ant-admin01-" + rand(86, URLSAFE) + "AA"
AWS_ID = "AKIA" + rand(16, UPPER)
AWS_TEMP_ID = "ASIA" + rand(16, UPPER)
AWS_SECRET = rand(40, B64)
GH_PAT = "ghp_" + rand(36)
GH_OAUTH = "gho_" + rand(36)
GH_FINE = "github_pat_" + rand(22) + "_" + rand(59)
GITLAB = "glpat-" + rand(20, URLSAFE)
SLACK_BOT = "xoxb-" + rand(11, string.digits) + "-" + rand(13, string.digits) + "-" + rand(24)
SLACK_HOOK_PATH = "services/T" + rand(8, UPPER) + "/B" + rand(10, UPPER) + "/" + rand(24)
STRIPE_LIVE = "sk_" + "live_" + rand(99)
STRIPE_RESTRICTED = "rk_" + "test_" + rand(40)
STRIPE_PUBLISHABLE_LIVE = "pk_" + "live_" + rand(40)
STRIPE_WEBHOOK = "whsec_" + rand(32)
GOOGLE_KEY = "AIza" + rand(35, URLSAFE)
GOOGLE_OAUTH = "GOCSPX-" + rand(28, URLSAFE)
JWT = ".".join(
    [
        b64url(orjson.dumps({"alg": "HS256", "typ": "JWT"})),
        b64url(orjson.dumps({"sub": rand(12), "iat": 1717200000, "name": "Jane"})),
        b64url(rand(32).encode()),
    ]
)
NPM = "npm_" + rand(36)
HF = "hf_" + rand(34)
BEARER = rand(40, ALNUM + "-._~")
BASIC = base64.b64encode(b"deploy:" + rand(18).encode()).decode()
PG_PW, MONGO_PW, REDIS_PW, AMQP_PW = (rand(20) for _ in range(4))
DB_PW, YAML_PW, JSON_PW, PASSWD = (rand(14, ALNUM + "!@^") for _ in range(4))
API_TOKEN, ACCESS_TOKEN, AUTH_TOKEN = (rand(32) for _ in range(3))
CLIENT_SECRET, SECRET_KEY, PLAIN_SECRET = (rand(40, ALNUM + "-_") for _ in range(3))
PEM_RSA, PEM_RSA_LINE = pem("RSA ")
PEM_OPENSSH, PEM_OPENSSH_LINE = pem("OPENSSH ")
PEM_CUT, PEM_CUT_LINE = pem("", lines=4, end=False)
SENDGRID = "SG." + rand(22, URLSAFE) + "." + rand(43, URLSAFE)
DIGITALOCEAN = "dop_" + "v1_" + rand(64, "0123456789abcdef")
SHOPIFY = "shp" + "at_" + rand(32, "0123456789abcdef")
PYPI = "pypi-" + "AgEIcHlwaS5vcmc" + rand(60, URLSAFE)
VAULT = "hvs." + rand(90, URLSAFE)
LINEAR = "lin_" + "api_" + rand(40)
POSTMAN = "PMAK-" + rand(24, "0123456789abcdef") + "-" + rand(34, "0123456789abcdef")
DATABRICKS = "dapi" + rand(32, "0123456789abcdef")
TWILIO = "SK" + rand(32, "0123456789abcdef")
PROSE_PW, PROSE_API, PROSE_TOKEN, PROSE_CRED = rand(16), rand(32), rand(40, URLSAFE), rand(24)
HEX_KEY = rand(64, "0123456789abcdef")
B64_KEY = base64.b64encode(rand(32).encode()).decode()
MYSQL_PW, CURL_PW, SHORT_PASS = rand(14), rand(16), rand(12)
DOCKER_AUTH = base64.b64encode(b"bot:" + rand(30).encode()).decode()
NETRC_PW = rand(24)

# (expected kind, text as a session would contain it, the secret that must vanish)
CASES: list[tuple[str, str, str]] = [
    ("openai-api-key", f'client = OpenAI(api_key="{OPENAI_LEGACY}")', OPENAI_LEGACY),
    ("openai-api-key", f"export OPENAI_API_KEY={OPENAI_PROJ}", OPENAI_PROJ),
    ("openai-api-key", f"key: {OPENAI_SVC}", OPENAI_SVC),
    ("anthropic-api-key", f'ANTHROPIC_API_KEY="{ANTHROPIC}" claude -p hi', ANTHROPIC),
    (
        "anthropic-api-key",
        f"curl -H 'x-api-key: {ANTHROPIC_ADMIN}' https://api.anthropic.com",
        ANTHROPIC_ADMIN,
    ),
    ("aws-access-key", f"aws_access_key_id = {AWS_ID}", AWS_ID),
    ("aws-access-key", f'{{"AccessKeyId": "{AWS_TEMP_ID}", "Expiration": "2025-01-01"}}', AWS_TEMP_ID),
    ("aws-secret-key", f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
    ("aws-secret-key", f'"SecretAccessKey": "{AWS_SECRET}"', AWS_SECRET),
    ("aws-secret-key", f"export AWS_SECRET_ACCESS_KEY='{AWS_SECRET}'", AWS_SECRET),
    ("github-token", f"git clone https://{GH_PAT}@github.com/acme/app.git", GH_PAT),
    ("github-token", f"Authorization: token {GH_OAUTH}", GH_OAUTH),
    ("github-token", f"GITHUB_TOKEN={GH_FINE}", GH_FINE),
    ("gitlab-token", f"glab auth login --token {GITLAB}", GITLAB),
    ("slack-token", f"SLACK_BOT_TOKEN={SLACK_BOT}", SLACK_BOT),
    (
        "slack-webhook",
        f"curl -X POST https://hooks.slack.com/{SLACK_HOOK_PATH} -d @msg.json",
        SLACK_HOOK_PATH,
    ),
    ("stripe-key", f"stripe.api_key = '{STRIPE_LIVE}'", STRIPE_LIVE),
    ("stripe-key", f"STRIPE_KEY={STRIPE_RESTRICTED}", STRIPE_RESTRICTED),
    ("stripe-key", f"const stripe = Stripe('{STRIPE_PUBLISHABLE_LIVE}');", STRIPE_PUBLISHABLE_LIVE),
    ("stripe-key", f"endpoint secret {STRIPE_WEBHOOK}", STRIPE_WEBHOOK),
    ("google-api-key", f"https://maps.googleapis.com/maps/api/js?key={GOOGLE_KEY}&callback=init", GOOGLE_KEY),
    ("google-oauth-secret", f'"client_secret": "{GOOGLE_OAUTH}"', GOOGLE_OAUTH),
    ("jwt", f"session cookie was {JWT} (expired)", JWT),
    ("npm-token", f"//registry.npmjs.org/:_authToken={NPM}", NPM),
    ("huggingface-token", f"huggingface-cli login --token {HF}", HF),
    ("private-key", f"$ cat id_rsa\n{PEM_RSA}\n$ ls", PEM_RSA_LINE),
    ("private-key", PEM_OPENSSH, PEM_OPENSSH_LINE),
    ("private-key", f"key.pem (truncated):\n{PEM_CUT}", PEM_CUT_LINE),
    ("bearer-token", f'curl -H "Authorization: Bearer {BEARER}" https://api.example.com/v1', BEARER),
    ("bearer-token", f'headers = {{"Authorization": "Basic {BASIC}"}}', BASIC),
    ("connection-string-password", f"DATABASE_URL=postgres://bob:{PG_PW}@db:5432/app", PG_PW),
    (
        "connection-string-password",
        f"mongodb+srv://admin:{MONGO_PW}@cluster0.ab1cd.mongodb.net/test",
        MONGO_PW,
    ),
    ("connection-string-password", f"redis://:{REDIS_PW}@cache.internal:6379/0", REDIS_PW),
    ("connection-string-password", f"amqp://guest:{AMQP_PW}@rabbit:5672/", AMQP_PW),
    ("password-assignment", f"DB_PASSWORD={DB_PW}", DB_PW),
    ("password-assignment", f"  password: {YAML_PW}\n  host: db", YAML_PW),
    ("password-assignment", f'{{"user": "bob", "password": "{JSON_PW}"}}', JSON_PW),
    ("password-assignment", f"passwd: {PASSWD}", PASSWD),
    ("token-assignment", f"api_token: {API_TOKEN}", API_TOKEN),
    ("token-assignment", f'ACCESS_TOKEN="{ACCESS_TOKEN}"', ACCESS_TOKEN),
    ("token-assignment", f"https://x.example/cb?auth_token={AUTH_TOKEN}&next=/", AUTH_TOKEN),
    ("secret-assignment", f"client_secret: {CLIENT_SECRET}", CLIENT_SECRET),
    ("secret-assignment", f"SECRET_KEY = '{SECRET_KEY}'", SECRET_KEY),
    ("secret-assignment", f"secret={PLAIN_SECRET}", PLAIN_SECRET),
    ("sendgrid-key", f"sg = SendGridAPIClient('{SENDGRID}')", SENDGRID),
    ("digitalocean-token", f"doctl auth init -t {DIGITALOCEAN}", DIGITALOCEAN),
    ("shopify-token", f"X-Shopify-Access-Token {SHOPIFY}", SHOPIFY),
    ("pypi-token", f"twine upload -u __token__ -p {PYPI} dist/*", PYPI),
    ("vault-token", f"VAULT_TOKEN={VAULT} vault kv get secret/app", VAULT),
    ("linear-key", f"linear = LinearClient({LINEAR!r})", LINEAR),
    ("postman-key", f"postman login --with-api-key {POSTMAN}", POSTMAN),
    ("databricks-token", f"databricks configure --token {DATABRICKS}", DATABRICKS),
    ("twilio-key", f"client = Client({TWILIO!r}, api_secret)", TWILIO),
    # Prose: no assignment, the value a few words after a word that names a secret.
    ("prose-secret", f"my AWS key is {AWS_ID} and the secret is {AWS_SECRET}", AWS_SECRET),
    ("prose-secret", f"The password for the staging db is {PROSE_PW}.", PROSE_PW),
    ("prose-secret", f"Here's the API key you asked for: {PROSE_API}", PROSE_API),
    ("prose-secret", f"your new access token is {PROSE_TOKEN}, keep it safe", PROSE_TOKEN),
    ("prose-secret", f"the service account credential was '{PROSE_CRED}'", PROSE_CRED),
    ("prose-secret", f"AES encryption key (hex) {HEX_KEY}", HEX_KEY),
    ("prose-secret", f"use this signing secret -> {B64_KEY}", B64_KEY),
    ("password-flag", f"mysqldump -h db -u app -p'{MYSQL_PW}' shop > dump.sql", MYSQL_PW),
    ("password-flag", f"curl -s -u deploy:{CURL_PW} https://ci.example.com/api/json", CURL_PW),
    ("password-assignment", f"smtp:\n  user: mailer\n  pass: {SHORT_PASS}\n", SHORT_PASS),
    ("password-assignment", f"export REDIS_PASS={SHORT_PASS}", SHORT_PASS),
    ("prose-secret", f'{{"auths": {{"ghcr.io": {{"auth": "{DOCKER_AUTH}"}}}}}}', DOCKER_AUTH),
    ("prose-secret", f"machine api.heroku.com login me@example.com password {NETRC_PW}", NETRC_PW),
    # A person's password in prose is short and human.
    ("prose-secret", "My password for the staging admin is Summer2024!, don't share it.", "Summer2024!"),
    ("prose-secret", "The wifi passphrase was blue-Falcon42 last time I checked.", "blue-Falcon42"),
    ("prose-secret", "the door passcode is 482913", "482913"),
]
IDS = [f"{i:02d}-{kind}" for i, (kind, _, _) in enumerate(CASES)]


def test_planted_corpus_is_broad() -> None:
    assert len(CASES) >= 25
    assert len({kind for kind, _, _ in CASES}) >= 15


@pytest.mark.parametrize(("kind", "text", "secret"), CASES, ids=IDS)
def test_redact_text(kind: str, text: str, secret: str) -> None:
    out, counts = R.redact_text(text)
    assert secret not in out
    assert f"[REDACTED:{kind}]" in out
    assert counts[kind] >= 1


def claude_records(text: str) -> list[dict]:
    """The same text where Claude Code puts it: prose, a tool_use input, a tool result, nested JSON."""
    base = {"sessionId": "6f1c0b1e-1111-4222-8333-944445555666", "cwd": "/home/u/app", "version": "2.0.14"}
    return [
        {
            **base,
            "type": "assistant",
            "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
        },
        {
            **base,
            "type": "assistant",
            "message": {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": text}}
                ],
            },
        },
        {
            **base,
            "type": "user",
            "message": {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": text}],
            },
            "toolUseResult": {"stdout": "é→ " + text + "\n", "stderr": "", "interrupted": False},
        },
        {**base, "type": "user", "toolUseResult": {"stdout": orjson.dumps({"log": [text]}).decode()}},
    ]


@pytest.mark.parametrize(("kind", "text", "secret"), CASES, ids=IDS)
def test_redact_bytes_on_jsonl(kind: str, text: str, secret: str) -> None:
    for rec in claude_records(text):
        out, counts = R.redact_bytes(orjson.dumps(rec))
        parsed = orjson.loads(out)  # still valid JSON
        assert secret.encode() not in out
        assert secret not in orjson.dumps(parsed).decode()
        assert f"[REDACTED:{kind}]".encode() in out
        assert counts[kind] >= 1


def test_anthropic_wins_over_openai() -> None:
    out, counts = R.redact_text(f"{ANTHROPIC} {OPENAI_LEGACY}")
    assert out == "[REDACTED:anthropic-api-key] [REDACTED:openai-api-key]"
    assert counts == Counter({"anthropic-api-key": 1, "openai-api-key": 1})


def test_only_the_password_of_a_connection_string_goes() -> None:
    out, _ = R.redact_text(f"postgres://bob:{PG_PW}@db:5432/x")
    assert out == "postgres://bob:[REDACTED:connection-string-password]@db:5432/x"


def test_assignment_keeps_the_key() -> None:
    out, _ = R.redact_text(f'DB_PASSWORD={DB_PW} "api_token": "{API_TOKEN}" client_secret: {CLIENT_SECRET}')
    assert out == (
        "DB_PASSWORD=[REDACTED:password-assignment] "
        '"api_token": "[REDACTED:token-assignment]" '
        "client_secret: [REDACTED:secret-assignment]"
    )


def test_counts_per_kind() -> None:
    other_gh = "ghs_" + rand(36)
    text = f"first {GH_PAT}\nsecond {other_gh}\nid {AWS_ID}\npassword={DB_PW}\nnothing else here"
    out, counts = R.redact_text(text)
    assert counts == Counter({"github-token": 2, "aws-access-key": 1, "password-assignment": 1})
    raw_out, raw_counts = R.redact_bytes(orjson.dumps({"t": text}))
    assert raw_counts == counts
    assert orjson.loads(raw_out) == {"t": out}


def test_json_escapes_survive_next_to_secrets() -> None:
    # A secret right after an escaped newline, tab or backslash, inside nested JSON, around non-ASCII.
    texts = [
        f"line one\n{GH_PAT}\n",
        f"col\t{NPM}",
        "C:\\" + NPM,
        f'{{"inner": "password=\\"{DB_PW}\\""}}',
        f"ключ→{HF}←",
        f"{PEM_RSA}\n",
    ]
    for text in texts:
        raw = orjson.dumps({"content": text, "nested": orjson.dumps({"x": text}).decode()})
        out, _ = R.redact_bytes(raw)
        orjson.loads(out)


def test_escaped_private_key_in_raw_json() -> None:
    raw = orjson.dumps({"content": f"here:\n{PEM_RSA}\nbye"})
    assert b"\\n" in raw  # the PEM newlines are JSON-escaped in the raw line
    out, counts = R.redact_bytes(raw)
    assert orjson.loads(out) == {"content": "here:\n[REDACTED:private-key]\nbye"}
    assert counts == Counter({"private-key": 1})


NOT_SECRETS = [
    "token = get_token()",
    "password: str",
    "def tokenize(text: str) -> list[str]:",
    "tokenizer = AutoTokenizer.from_pretrained(model_name)",
    "response = client.messages.create(max_tokens=4096, model=model)",
    '{"input_tokens": 1532, "output_tokens": 88, "token_count": 1620}',
    "unk_token=unk_token, pad_token=pad_token",
    "token: Optional[str] = None",
    "password = os.environ['DB_PASSWORD']",
    "api_key = process.env.OPENAI_API_KEY",
    "token: ${GITHUB_TOKEN}",
    "PASSWORD=$DB_PASSWORD ./run.sh",
    "secret: <your-secret-here>",
    "password: ***",
    "password=None",
    '"token": null, "password": ""',
    "commit e83c5163316f89bfbde7d9ab23ca2e25604af290 (HEAD -> main)",
    "request 3f2b8c1e-9d4a-4e7b-a1c2-0d9e8f7a6b5c finished",
    "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQ",
    "pip install scikit-learn  # people call it sk-learn",
    "the skeleton of the task-runner; see disk-usage",
    "Bearer tokens are sent in the Authorization header.",
    "Keep secrets out of logs; the passwordless flow uses a token exchange.",
    "git@github.com:acme/app.git and https://example.com:8443/path and postgres://localhost:5432/db",
    "postgres://user:password@localhost/db",
    "hf_hub_download(repo_id, filename) and npm_config_cache",
    "ASIA-PACIFIC region, AKIA is a prefix",
    # Secret-naming words next to things that are not secrets.
    "the monkey key is in the drawer; press any key to continue",
    "cache key is build_2024_11_report_final",
    "token count was 12345678901234567 in total",
    "session key: MyServiceConfigurationV2Handler",
    "the key file is /home/u/.ssh/id_ed25519",
    "primary key (id), foreign key fk_orders_customer_id_2024",
    "the token is stored in localStorage under authTokenStorageKey",
    "secret scanning flagged src/components/SecretField.tsx",
    "tokens: python3.11/site-packages/transformers/tokenization_utils_base.py",
    "key=lambda item: item.updated_at",
    "ED25519 key fingerprint is SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8.",
    "retrying with idempotency key 3f2b8c1e-9d4a-4e7b-a1c2-0d9e8f7a6b5c",
    # A JSON field that ends on a secret-naming word, and the next field's value: two strings, no sentence.
    '{"old": "configure credentials", "new": "docker logs 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c"}',
    "password reset\ncommit e83c5163316f89bfbde7d9ab23ca2e25604af290",
    "self.key_layernorm = HunYuanMoEV1RMSNorm(self.head_dim)",
    "mkdir -p build/dist && mysql -u root -p shop && mysql -p$MYSQL_PWD",
    "curl -u $USER:$TOKEN https://x; curl -u admin: https://x",
    "bypass=onion, compass: north, pass=True",
    "auth: AuthService, oauth flow, auth middleware v2, auth_provider: github",
    '["-# configure credentials", "+9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  x.tgz"]',
    "--- PASS: TestLogin (0.00s)\nPASS: tests/test_a.py::test_b\nPASS: test_login_flow",
    "# Remove token ID forwarding once the `nari-labs/Dia-1.6B-0626` checkpoint is updated",
    # Words about passwords, not one.
    "the password is required and passwords are bcrypt-hashed",
    "the password hash is argon2id; the password manager is 1Password",
    "the password is at least 12 characters long and the passwords were rotated on 2024-03-01",
    "the password is $DB_PASSWORD, or password is settings.ADMIN_PASSWORD, or the password is <your-password>",
    "the password is in /etc/secrets/db.txt",
]


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert R.redact_text(text) == (text, Counter())
    raw = orjson.dumps({"message": {"content": text}})
    assert R.redact_bytes(raw) == (raw, Counter())


def test_stripe_test_publishable_key_is_public() -> None:
    public = "pk_" + "test_" + rand(40)
    assert R.redact_text(public) == (public, Counter())


READ_TOOL_ENV = (
    "     1→# database\n"
    f"     2→DATABASE_URL=postgres://app:{PG_PW}@localhost/app\n"
    f'     3→export API_KEY="{OPENAI_LEGACY}"\n'
    "     4→\n"
    "     5→DEBUG=true\n"
    "     6→EMPTY=\n"
)


def test_env_values_read_tool_listing() -> None:
    out, counts = R.redact_env_values(READ_TOOL_ENV)
    assert out == (
        "     1→# database\n"
        "     2→DATABASE_URL=[REDACTED:env-value]\n"
        "     3→export API_KEY=[REDACTED:env-value]\n"
        "     4→\n"
        "     5→DEBUG=[REDACTED:env-value]\n"
        "     6→EMPTY=\n"
    )
    assert counts == Counter({"env-value": 3})


def test_env_values_tab_numbered_and_cat_output() -> None:
    out, counts = R.redact_env_values(f"1\tSTRIPE_KEY={STRIPE_LIVE}\n2\t# comment\n")
    assert out == "1\tSTRIPE_KEY=[REDACTED:env-value]\n2\t# comment\n"
    cat = (
        f"# local overrides\r\nREDIS_URL=redis://:{REDIS_PW}@localhost\r\n\r\nexport  TOKEN = {API_TOKEN}\r\n"
    )
    out, counts = R.redact_env_values(cat)
    assert out == (
        "# local overrides\r\nREDIS_URL=[REDACTED:env-value]\r\n\r\nexport  TOKEN = [REDACTED:env-value]\r\n"
    )
    assert counts == Counter({"env-value": 2})


def test_env_values_multiline_value_and_secret_in_comment() -> None:
    text = f'# old key {GH_PAT}\nKEY="{PEM_RSA}"\nNEXT=1\n'
    out, counts = R.redact_env_values(text)
    assert GH_PAT not in out and PEM_RSA_LINE not in out
    assert out.startswith("# old key [REDACTED:github-token]\nKEY=[REDACTED:env-value]\n")
    assert out.endswith("NEXT=[REDACTED:env-value]\n")
    assert counts["env-value"] == 2 and counts["github-token"] == 1


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".env", True),
        ("/home/u/app/.env.local", True),
        ("config/.env.production", True),
        ("deploy/foo.env", True),
        (".envrc", True),
        ("C:\\work\\app\\.env", True),
        ("src/.environment.py", False),
        ("env.py", False),
        ("environment.yml", False),
        ("src/.envoy", False),
        ("README.md", False),
    ],
)
def test_is_env_file(path: str, expected: bool) -> None:
    assert is_env_file(path) is expected


def test_fuzzed_jsonl_stays_valid() -> None:
    rng = random.Random(7)
    pieces = [text for _, text, _ in CASES] + NOT_SECRETS
    pieces += [
        "\\",
        '"',
        "'",
        "\n",
        "\t",
        "\\n",
        "é",
        "→",
        "\x1b[0m",
        "=",
        ": ",
        "@",
        "://",
        "token",
        "password",
    ]
    for _ in range(500):
        parts = [rng.choice(pieces) for _ in range(rng.randint(1, 6))]
        text = "".join(p[rng.randint(0, len(p) // 2) :] if rng.random() < 0.3 else p for p in parts)
        raw = orjson.dumps({"a": text, "nested": orjson.dumps([text]).decode()})
        out, _ = R.redact_bytes(raw)
        orjson.loads(out)


def test_lone_surrogate_text() -> None:
    out, counts = R.redact_text("\ud800 " + GH_PAT)
    assert out == "\ud800 [REDACTED:github-token]" and counts["github-token"] == 1


def test_env_values_leave_typed_placeholders_alone() -> None:
    once, _ = R.redact_text(f"HF_TOKEN={HF}\nNAME=app\n")
    out, counts = R.redact_env_values(once)
    assert out == "HF_TOKEN=[REDACTED:huggingface-token]\nNAME=[REDACTED:env-value]\n"
    assert counts == Counter({"env-value": 1})


def test_env_reads_take_ids_of_any_type() -> None:
    """A hostile line with a list for a tool_use_id must not stop the ingest (it raised TypeError)."""
    ids: set[str] = set()
    rec = {"message": {"content": [{"type": "tool_use", "id": 7, "input": {"command": "cat .env"}}]}}
    R.redact_env_reads(rec, ids, Counter())
    for odd in ([], {}, 7, None):
        found: Counter[str] = Counter()
        result = {"message": {"content": [{"type": "tool_result", "tool_use_id": odd, "content": "A=b"}]}}
        assert R.redact_env_reads(result, ids, found) is (odd == 7)
        assert found == (Counter({"env-value": 1}) if odd == 7 else Counter())


def test_env_writes_and_edits_are_blanked_in_the_call_and_the_result() -> None:
    ids: set[str] = set()
    found: Counter[str] = Counter()
    salt, signer = rand(20), rand(24)
    write = {
        "type": "tool_use",
        "id": "w1",
        "name": "Write",
        "input": {"file_path": "/a/.env", "content": f"SALT={salt}\n"},
    }
    edits = [{"old_string": "PORT=1", "new_string": f"SIGNER={signer}"}]
    multi = {
        "type": "tool_use",
        "id": "m1",
        "name": "MultiEdit",
        "input": {"file_path": "/a/.env.local", "edits": edits},
    }
    call = {"message": {"content": [write, multi]}}
    assert R.redact_env_reads(call, ids, found) and ids == {"w1", "m1"}
    patch = [{"lines": [" PORT=1", f"+SIGNER={signer}"]}]
    extra = {"filePath": "/a/.env.local", "oldString": "PORT=1", "newString": f"SIGNER={signer}"}
    extra |= {"originalFile": f"PORT=1\nSALT={salt}\n", "structuredPatch": patch}
    result = {"message": {"content": [{"type": "tool_result", "tool_use_id": "e1", "content": "ok"}]}}
    result["toolUseResult"] = extra
    assert R.redact_env_reads(result, ids, found)  # known by the path in its result alone
    text = orjson.dumps([call, result]).decode()
    assert salt not in text and signer not in text
    assert patch[0]["lines"] == [" PORT=[REDACTED:env-value]", "+SIGNER=[REDACTED:env-value]"]
    assert found["env-value"] == 9
