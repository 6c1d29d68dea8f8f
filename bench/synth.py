"""Deterministic synthetic Claude Code transcripts for the ingest and search benchmarks.

`write_transcripts` writes a tree shaped like ``~/.claude/projects``: one folder per project (its working
directory with every character outside ``[a-zA-Z0-9]`` replaced by ``-``), one ``<session-uuid>.jsonl`` per
session (50 KB - 3 MB, about 50-400 records) and 2.1-style sub-agent transcripts under
``<session>/subagents/agent-<id>.jsonl`` with their ``.meta.json``. The records follow the real format
(``shared/claude-code-format.md``): a ``parentUuid`` chain with the odd rewind branch, assistant responses
streamed as one record per content block sharing ``message.id`` and ``requestId``, tool results carrying the
per-tool ``toolUseResult`` shape, failing test runs followed by fixes, 20-200 KB file reads, slash-command and
``<system-reminder>`` markup, an occasional fake credential for the redactor, file-history snapshots,
``turn_duration``, ``compact_boundary`` and ``summary`` records.

`synthetic_chunks` and `synthetic_queries` give retrieval text and recall queries in the same vocabulary
without writing or parsing files, to fill a store to 10k-100k chunks quickly.

Everything is drawn from one seeded ``random.Random``: the same arguments give byte-identical output.

Run:  python bench/synth.py OUT_DIR --mb 50 [--seed 0] [--projects 8]
"""

from __future__ import annotations

import argparse
import base64
import calendar
import random
import re
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

MB = 1_000_000  # the megabyte the benchmarks report in
MIN_FILE = 50_000
MAX_FILE = 3_000_000
_SNIPPET_CACHE = 400
_START_MS = calendar.timegm((2025, 11, 3, 8, 30, 0, 0, 0, 0)) * 1000
_VERSIONS = ("2.1.2", "2.1.7", "2.1.15", "2.1.22", "2.1.31", "2.1.40", "2.1.52", "2.1.63", "2.1.70", "2.1.81")
_MODELS = ("claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101", "claude-haiku-4-5-20251001")


# --------------------------------------------------------------------------------------------------- projects


@dataclass(frozen=True)
class _Project:
    name: str
    lang: str  # python | typescript | rust | go: picks code, test output and error vocabulary
    cwd: str
    nouns: tuple[str, ...]  # domain nouns, snake_case singular
    components: tuple[str, ...]
    libs: tuple[str, ...]
    files: tuple[str, ...]  # source files, relative to cwd
    test_files: tuple[str, ...]
    test_cmds: tuple[str, ...]  # may use {test_file} and {test}
    check_cmds: tuple[str, ...]
    manifest: str
    decisions: tuple[tuple[str, tuple[str, ...]], ...]  # (topic, options); one option is the project's choice
    branches: tuple[str, ...]

    @property
    def enc(self) -> str:
        return re.sub(r"[^a-zA-Z0-9]", "-", self.cwd)

    def choice(self, topic: str) -> str:
        """The option this project settled on for `topic`, stable across seeds."""
        options = dict(self.decisions)[topic]
        return options[zlib.crc32(f"{self.name}/{topic}".encode()) % len(options)]


_PY_TEST = ("uv run pytest -q", "uv run pytest {test_file} -x -q", "uv run pytest {test_file}::{test} -x")
_TS_TEST = ("pnpm vitest run", "pnpm vitest run {test_file}", "pnpm test -- --run {test_file}")
_RS_TEST = ("cargo test", "cargo test {test}", "cargo test --all-features -- --nocapture")
_GO_TEST = ("go test ./...", "go test ./... -run {test} -count=1", "go test -race ./internal/...")

_PROJECT_TABLE: tuple[_Project, ...] = (
    _Project(
        "billing-api", "python", "/home/maya/code/billing-api",
        ("invoice", "subscription", "payment", "refund", "customer", "plan", "coupon", "ledger_entry"),
        ("Stripe webhook handler", "invoice PDF export", "dunning scheduler", "proration calculator",
         "tax rate lookup", "subscription renewal job"),
        ("FastAPI", "SQLAlchemy", "Alembic", "pydantic", "httpx", "Celery", "Redis", "WeasyPrint"),
        ("app/main.py", "app/api/routes/invoices.py", "app/api/routes/webhooks.py", "app/models/invoice.py",
         "app/models/subscription.py", "app/services/billing.py", "app/services/proration.py",
         "app/db/session.py", "app/core/config.py", "alembic/env.py"),
        ("tests/test_invoices.py", "tests/test_webhooks.py", "tests/test_proration.py",
         "tests/test_dunning.py"),
        _PY_TEST, ("uv run ruff check .", "uv run mypy app", "uv run alembic upgrade head"), "pyproject.toml",
        (("ORM", ("SQLAlchemy 2.0", "SQLModel", "Tortoise ORM")), ("task queue", ("Celery", "Dramatiq",
         "arq")),
         ("PDF renderer", ("WeasyPrint", "ReportLab"))),
        ("main", "fix/webhook-retries", "feat/proration-v2", "chore/bump-sqlalchemy"),
    ),
    _Project(
        "inventory-dashboard", "typescript", "/Users/jordan/src/inventory-dashboard",
        ("product", "warehouse", "shipment", "supplier", "stock_level", "order"),
        ("stock level chart", "CSV import wizard", "barcode scanner modal", "websocket live updates",
         "supplier filter sidebar", "optimistic order form"),
        ("React", "Vite", "TanStack Query", "Zustand", "zod", "Tailwind", "Vitest", "Playwright"),
        ("src/App.tsx", "src/components/StockChart.tsx", "src/components/ImportWizard.tsx",
         "src/hooks/useLiveUpdates.ts", "src/api/client.ts", "src/store/filters.ts", "src/lib/csv.ts",
         "vite.config.ts"),
        ("src/components/StockChart.test.tsx", "src/hooks/useLiveUpdates.test.ts", "src/lib/csv.test.ts"),
        _TS_TEST, ("pnpm tsc --noEmit", "pnpm lint", "pnpm build"), "package.json",
        (("state manager", ("Zustand", "Redux Toolkit", "Jotai")), ("chart library", ("Recharts", "visx",
         "Chart.js")),
         ("form library", ("React Hook Form", "Formik"))),
        ("main", "feat/csv-import", "fix/ws-reconnect", "refactor/query-keys"),
    ),
    _Project(
        "ledger-cli", "rust", "/home/sam/projects/ledger-cli",
        ("account", "transaction", "posting", "commodity", "budget", "report"),
        ("journal parser", "balance report", "CSV importer", "price database", "currency conversion",
         "reconcile command"),
        ("clap", "serde", "anyhow", "thiserror", "chrono", "rust_decimal", "nom", "insta"),
        ("src/main.rs", "src/lib.rs", "src/parser/mod.rs", "src/parser/posting.rs", "src/report/balance.rs",
         "src/import/csv.rs", "src/prices.rs"),
        ("tests/parser.rs", "tests/balance.rs", "tests/import_csv.rs"),
        _RS_TEST, ("cargo clippy --all-targets -- -D warnings", "cargo fmt --check", "cargo build --release"),
        "Cargo.toml",
        (("parser combinator crate", ("nom", "winnow", "chumsky")), ("decimal type", ("rust_decimal",
         "bigdecimal"))),
        ("main", "feat/reconcile", "fix/price-lookup"),
    ),
    _Project(
        "edge-proxy", "go", "/home/dev/go/src/github.com/acme/edge-proxy",
        ("route", "upstream", "certificate", "listener", "backend", "rate_limit"),
        ("TLS certificate reloader", "health checker", "rate limiter middleware", "websocket tunnel",
         "config hot reload", "access log writer"),
        ("chi", "zap", "prometheus client_golang", "testify", "x/time/rate", "fsnotify"),
        ("cmd/edge-proxy/main.go", "internal/proxy/handler.go", "internal/proxy/upstream.go",
         "internal/tls/reloader.go", "internal/health/checker.go", "internal/config/config.go"),
        ("internal/proxy/handler_test.go", "internal/tls/reloader_test.go",
         "internal/health/checker_test.go"),
        _GO_TEST, ("go vet ./...", "golangci-lint run", "go build ./cmd/edge-proxy"), "go.mod",
        (("logger", ("zap", "slog", "zerolog")), ("router", ("chi", "gorilla/mux", "stdlib ServeMux"))),
        ("main", "fix/cert-reload-race", "feat/ws-tunnel"),
    ),
    _Project(
        "notify-worker", "python", "/home/maya/code/notify-worker",
        ("notification", "template", "recipient", "channel", "delivery", "digest"),
        ("email digest builder", "SMS retry policy", "push token cleanup", "template renderer",
         "unsubscribe handler", "webhook fan-out"),
        ("Celery", "Redis", "Jinja2", "boto3", "pydantic", "structlog", "pytest"),
        ("worker/tasks.py", "worker/digest.py", "worker/channels/sms.py", "worker/channels/email.py",
         "worker/templates.py", "worker/settings.py"),
        ("tests/test_tasks.py", "tests/test_digest.py", "tests/test_sms.py"),
        _PY_TEST, ("uv run ruff check .", "uv run mypy worker"), "pyproject.toml",
        (("email provider", ("Amazon SES", "Postmark", "SendGrid")),
         ("retry strategy", ("exponential backoff with jitter", "fixed delay with a dead-letter queue"))),
        ("main", "fix/sms-retry", "feat/weekly-digest"),
    ),
    _Project(
        "docs-portal", "typescript", "/Users/jordan/src/docs-portal",
        ("page", "section", "author", "revision", "search_result", "sidebar_item"),
        ("MDX renderer", "search index builder", "versioned sidebar", "dark mode toggle",
         "API reference generator", "broken link checker"),
        ("Next.js", "MDX", "Pagefind", "Tailwind", "Vitest", "Playwright", "shiki"),
        ("app/layout.tsx", "app/docs/[...slug]/page.tsx", "lib/mdx.ts", "lib/search.ts",
         "components/Sidebar.tsx",
         "scripts/check-links.ts"),
        ("lib/mdx.test.ts", "lib/search.test.ts", "components/Sidebar.test.tsx"),
        _TS_TEST, ("pnpm tsc --noEmit", "pnpm lint", "pnpm next build"), "package.json",
        (("search backend", ("Pagefind", "Algolia", "Meilisearch")), ("syntax highlighter", ("shiki",
         "Prism"))),
        ("main", "feat/versioned-docs", "fix/sidebar-order"),
    ),
    _Project(
        "telemetry-agent", "rust", "/home/sam/projects/telemetry-agent",
        ("metric", "span", "exporter", "batch", "sample", "sink"),
        ("OTLP exporter", "batch flusher", "disk buffer", "cgroup collector", "sampling policy",
         "backpressure queue"),
        ("tokio", "tonic", "prost", "serde", "tracing", "crossbeam", "proptest"),
        ("src/main.rs", "src/exporter/otlp.rs", "src/buffer/disk.rs", "src/collector/cgroup.rs",
         "src/sampling.rs", "src/queue.rs"),
        ("tests/exporter.rs", "tests/disk_buffer.rs", "tests/sampling.rs"),
        _RS_TEST, ("cargo clippy --all-targets -- -D warnings", "cargo fmt --check"), "Cargo.toml",
        (("async runtime", ("tokio", "smol")), ("wire format", ("prost", "serde_json"))),
        ("main", "feat/disk-buffer", "fix/flush-deadlock"),
    ),
    _Project(
        "search-gateway", "go", "/home/dev/go/src/github.com/acme/search-gateway",
        ("query", "index", "shard", "document", "synonym", "ranking"),
        ("query parser", "shard fan-out", "result cache", "synonym expander", "circuit breaker",
         "gRPC gateway"),
        ("grpc-go", "pgx", "go-redis", "testify", "OpenTelemetry", "errgroup"),
        ("cmd/gateway/main.go", "internal/search/fanout.go", "internal/search/parser.go",
         "internal/cache/redis.go", "internal/breaker/breaker.go"),
        ("internal/search/fanout_test.go", "internal/search/parser_test.go", "internal/cache/redis_test.go"),
        _GO_TEST, ("go vet ./...", "golangci-lint run", "buf lint"), "go.mod",
        (("cache", ("Redis", "ristretto in-process cache", "groupcache")),
         ("database driver", ("pgx", "database/sql with lib/pq"))),
        ("main", "feat/synonyms", "fix/fanout-timeout"),
    ),
    _Project(
        "ml-pipeline", "python", "/home/priya/work/ml-pipeline",
        ("dataset", "feature", "model", "experiment", "checkpoint", "prediction"),
        ("feature store loader", "training loop", "data validation step", "batch scoring job",
         "experiment tracker", "parquet writer"),
        ("polars", "pandas", "PyTorch", "scikit-learn", "MLflow", "pyarrow", "Hydra"),
        ("pipeline/features.py", "pipeline/train.py", "pipeline/validate.py", "pipeline/score.py",
         "pipeline/io.py", "pipeline/config.py"),
        ("tests/test_features.py", "tests/test_validate.py", "tests/test_score.py"),
        _PY_TEST, ("uv run ruff check .", "uv run mypy pipeline"), "pyproject.toml",
        (("dataframe library", ("polars", "pandas")), ("experiment tracker", ("MLflow", "Weights & Biases"))),
        ("main", "exp/lr-warmup", "fix/leaky-split"),
    ),
    _Project(
        "mobile-bff", "typescript", "/Users/jordan/src/mobile-bff",
        ("user", "session", "device", "feed_item", "push_token", "profile"),
        ("JWT refresh middleware", "feed aggregator", "GraphQL resolvers", "device registration",
         "rate limiter", "image proxy"),
        ("Fastify", "Prisma", "zod", "GraphQL Yoga", "ioredis", "Vitest", "pino"),
        ("src/server.ts", "src/auth/refresh.ts", "src/feed/aggregate.ts", "src/graphql/resolvers.ts",
         "src/devices/register.ts", "src/db/client.ts"),
        ("src/auth/refresh.test.ts", "src/feed/aggregate.test.ts", "src/devices/register.test.ts"),
        _TS_TEST, ("pnpm tsc --noEmit", "pnpm lint", "pnpm prisma validate"), "package.json",
        (("ORM", ("Prisma", "Drizzle", "TypeORM")), ("HTTP framework", ("Fastify", "Express", "Hono"))),
        ("main", "feat/feed-v2", "fix/refresh-loop"),
    ),
)  # fmt: skip


def _make_projects(n: int) -> list[_Project]:
    """The first `n` project profiles; past the table's end, copies with numbered names and folders."""
    out = []
    for i in range(max(1, n)):
        p = _PROJECT_TABLE[i % len(_PROJECT_TABLE)]
        k = i // len(_PROJECT_TABLE)
        if k:
            p = replace(p, name=f"{p.name}-{k + 1}", cwd=f"{p.cwd}-{k + 1}")
        out.append(p)
    return out


# ------------------------------------------------------------------------------------------------ vocabulary

_POOLS: dict[str, tuple[str, ...]] = {
    "verb": ("sync", "load", "parse", "validate", "render", "fetch", "compute", "resolve", "schedule",
             "persist", "retry", "normalize", "export", "merge", "refresh", "dispatch", "serialize",
             "reconcile", "archive", "apply"),
    "adj": ("flaky", "slow", "stale", "duplicated", "missing", "intermittent", "racy", "inconsistent",
            "empty",
            "oversized"),
    "field": ("created_at", "status", "owner_id", "tenant_id", "currency", "due_date", "external_id",
              "priority",
              "region", "updated_at", "email", "amount_cents", "retry_count", "deleted_at", "version",
              "locale"),
    "concept": ("connection pooling", "rate limiting", "retries with exponential backoff",
                "optimistic locking",
                "cursor pagination", "cache invalidation", "structured logging", "feature flags",
                "graceful shutdown", "idempotency keys", "background jobs", "schema migrations",
                "request tracing", "dependency injection", "timezone handling", "N+1 queries",
                "auth token refresh", "websocket reconnects", "bulk inserts", "soft deletes"),
    "Suffix": ("Service", "Client", "Store", "Manager", "Handler", "Repository", "Cache", "Worker", "Builder",
               "Policy"),
    "feature": ("CSV export", "bulk delete", "soft delete", "audit logging", "a retry button",
                "cursor pagination",
                "rate limiting", "a health check endpoint", "per-tenant settings", "search by {field}",
                "a --dry-run flag", "webhook signatures", "an admin-only filter"),
    "behaviour": ("skip {things} with no `{field}`", "return 409 when the {thing} already exists",
                  "respect the tenant's timezone", "stream results instead of buffering them",
                  "keep the old endpoint working until clients migrate", "log every change to the {thing}",
                  "be idempotent if the same request arrives twice"),
    "cause": ("the {component} reused a connection after the pool had recycled it",
              "`{func}` compared naive and timezone-aware datetimes",
              "the retry loop swallowed the original exception, so `{field}` was never set",
              "the test fixture shared one {thing} between tests, so the order they ran in mattered",
              "a race between the reconnect and the initial {things} fetch",
              "the cache key ignored `{field}`, so stale {things} came back",
              "an off-by-one in the page cursor skipped the last {thing} of every page",
              "the migration added `{field}` as NOT NULL without a default",
              "`{func}` ran before the transaction committed, so it read the previous {field}",
              "the timeout in the {component} was in seconds but the config passed milliseconds"),
    "change": ("guard against a missing `{field}` and return early",
               "add a regression test for {adj} {things}",
               "switch `{func}` over to {lib}", "wrap the {thing} update in a single transaction",
               "add exponential backoff with jitter to the retry",
               "order by `{field}` so pagination is stable",
               "move the {thing} validation into its own function",
               "make `{func}` idempotent with a unique key",
               "await the flush before asserting", "pass the deadline down from the request context"),
    "reason": ("it has first-class async support", "the team already knows it",
               "its migration story is simpler",
               "it was faster in our benchmark ({num} ms vs {num2} ms p95)", "it keeps the bundle smaller",
               "its types catch the {field} mistakes we keep making", "it pulls in far fewer dependencies",
               "it is what the rest of the company runs in production"),
    "con": ("it needs more setup for {concept}", "nobody on the team has run it in production",
            "its async support is still experimental", "it would add {num} transitive dependencies",
            "its docs are thin on {concept}"),
    "sentence": ("Keeps `{field}` in sync with the upstream {thing} record.",
                 "Retries transient failures so callers never see a half-written {thing}.",
                 "Returns {things} ordered by {field}, newest first.",
                 "Thin wrapper so tests can swap the {lib} client for a fake.",
                 "Validates the {thing} before it reaches the database.",
                 "Batches writes to cut round trips on large imports.",
                 "Called from the {component}; must stay cheap.",
                 "Raises when the {thing} belongs to another tenant."),
    "thought": ("The user wants the {component} fixed without changing its public API.",
                "If `{func}` runs before the {thing} is flushed, it will read a stale `{field}`.",
                "I should look at {test_file} before editing anything.",
                "This smells like a timing issue: the {component} doesn't wait for the {thing} to be saved.",
                "The error mentions `{field}`, so the problem is probably in how {things} are built.",
                "There are two options: patch `{func}` directly, or fix the fixture. Fixing the code is "
                "better.",
                "Let me check whether {lib} changed its defaults in the last release.",
                "Running only the failing test first will be faster than the whole suite.",
                "The diff should stay small; the rest of {file} looks fine.",
                "I need to keep {concept} in mind here, otherwise the fix just moves the bug."),
    "intro_bug": ("Let me run the failing test first to see the full error.",
                  "First I'll reproduce the problem with `{cmd}`.",
                  "I'll start by reproducing the {adj} failure."),
    "intro_read": ("I'll start by looking at the {component} in `{file}`.",
                   "Let me read `{file}` to see the current implementation.",
                   "Let me check how `{func}` is used across the codebase."),
    "intro_plan": ("I'll set up a todo list to track this.",
                   "This has a few parts, so I'll track them in a todo list."),
    "look": ("The test output points at `{func}`. Let me read it.",
             "Let me look at where `{field}` gets set.",
             "Let me check the callers of `{func}`.", "That confirms it. Let me read the rest of `{file}`."),
    "found": ("Found it: {cause}.", "That's the bug: {cause}.", "The problem is that {cause}."),
    "retry": ("The old string didn't match exactly; let me re-read the file and retry.",
              "The file changed since I read it. Reading it again."),
    "more": ("One more place needs the same change.", "Now I'll add a regression test for the {adj} case.",
             "Now the test side.", "Updating the callers too."),
    "passed": ("Tests pass now. Let me also run the linter to make sure nothing else broke.",
               "Green. Running the linter as well."),
    "after": ("Done, `{cmd}` passes.", "All {num} tests pass.",
              "Added it; `{test}` covers the {adj} case now.",
              "Kept `{func}` as it was and moved the change into a helper.",
              "Updated, and the suite is green."),
    "followup": ("yes, go ahead", "looks good, commit it", "can you also add a test for the empty case?",
                 "hmm, that didn't work, same error", "nice. now run the linter",
                 "wait, don't change the public API of {func}", "also update the README section on {concept}",
                 "ok, and what about {things} with no {field}?", "run the whole suite once more please"),
    "title": ("Fix {adj} {component} test", "Add {feature} to {component}", "Refactor {func} in {file}",
              "Choose {topic} for {project}", "Debug {error_short} in {component}", "Bump {lib} to {ver}"),
}  # fmt: skip

_LANG_POOLS: dict[str, dict[str, tuple[str, ...]]] = {
    "python": {
        "test": ("test_{verb}_{noun}_{adj}", "test_{noun}_{field}_is_{adj}",
                 "test_{verb}_handles_{adj}_{nouns}"),
        "func": ("{verb}_{noun}", "{verb}_{nouns}", "_{verb}_{field}"),
        "error_short": ("KeyError", "IntegrityError", "TimeoutError", "ValidationError", "AttributeError"),
        "error": ("KeyError: '{field}'", "AssertionError: assert {num} == {num2}",
                  "sqlalchemy.exc.IntegrityError: (psycopg.errors.NotNullViolation) null value in column"
                  ' "{field}"'
                  ' of relation "{nouns}" violates not-null constraint',
                  "TypeError: can't compare offset-naive and offset-aware datetimes",
                  "pydantic_core._pydantic_core.ValidationError: 1 validation error for {Noun}Out\n{field}\n"
                  "  Field required [type=missing, input_type=dict]",
                  "TimeoutError: {component} did not respond within 5.0s",
                  "AttributeError: 'NoneType' object has no attribute '{field}'",
                  "RuntimeError: Event loop is closed"),
    },
    "typescript": {
        "test": ("{verb}s the {noun} when {field} is missing", "renders {adj} {nouns} without crashing",
                 "{verb}s {nouns} ordered by {fieldC}"),
        "func": ("{verb}{Noun}", "use{Noun}{Suffix}", "{verb}{Noun}s"),
        "error_short": ("TypeError", "ZodError", "ECONNREFUSED", "TS2345", "waitFor timeout"),
        "error": ("TypeError: Cannot read properties of undefined (reading '{fieldC}')",
                  "AssertionError: expected {num} to be {num2} // Object.is equality",
                  "Error: Timed out in waitFor after 1000ms",
                  "ZodError: {fieldC}: Expected string, received null",
                  "TS2345: Argument of type 'string | undefined' is not assignable to parameter of type "
                  "'string'.",
                  "FetchError: request to http://localhost:{port}/api/{nouns} failed, reason: connect "
                  "ECONNREFUSED"
                  " 127.0.0.1:{port}"),
    },
    "rust": {
        "test": ("{verb}_{noun}_rejects_{adj}_input", "{noun}_{field}_roundtrip", "parses_{adj}_{noun}"),
        "func": ("{verb}_{noun}", "{verb}_{nouns}", "try_{verb}"),
        "error_short": ("unwrap on None", "E0502 borrow error", "E0308 mismatched types", "parse error"),
        "error": ("thread 'main' panicked at src/lib.rs:{line}:9:\n"
                  "called `Option::unwrap()` on a `None` value",
                  "error[E0502]: cannot borrow `self.{field}` as mutable because it is also borrowed as "
                  "immutable",
                  "error[E0308]: mismatched types: expected `{Noun}`, found `Option<{Noun}>`",
                  "assertion `left == right` failed\n  left: {num}\n right: {num2}",
                  "Error: failed to parse {noun} at line {line}: unexpected character '@'"),
    },
    "go": {
        "test": ("Test{Verb}{Noun}", "Test{Noun}{Field}{Adj}", "Test{Verb}{Noun}s"),
        "func": ("{Verb}{Noun}", "{verb}{Noun}s", "new{Noun}{Suffix}"),
        "error_short": ("nil pointer dereference", "context deadline exceeded", "data race",
                        "connection refused"),
        "error": ("panic: runtime error: invalid memory address or nil pointer dereference",
                  "{test_file}:{line}: expected {num}, got {num2}", "context deadline exceeded",
                  "WARNING: DATA RACE\nWrite at 0x00c0001a4{num} by goroutine {num2}:",
                  'pq: duplicate key value violates unique constraint "{nouns}_{field}_key"',
                  "dial tcp 127.0.0.1:{port}: connect: connection refused"),
    },
}  # fmt: skip


def _camel(s: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in s.split("_"))


def _lower_camel(s: str) -> str:
    c = _camel(s)
    return c[:1].lower() + c[1:]


def _upper_first(s: str) -> str:
    return s[:1].upper() + s[1:]


def _plural(s: str) -> str:
    if s.endswith("y") and s[-2:-1] not in "aeiou":
        return s[:-1] + "ies"
    return s + ("es" if s.endswith(("s", "x", "ch", "sh")) else "s")


_DERIVED: dict[str, tuple[str, Callable[[str], str]]] = {
    "Noun": ("noun", _camel),
    "nouns": ("noun", _plural),
    "nounC": ("noun", _lower_camel),
    "Noun2": ("noun2", _camel),
    "nouns2": ("noun2", _plural),
    "Verb": ("verb", str.capitalize),
    "Adj": ("adj", str.capitalize),
    "Field": ("field", _camel),
    "fieldC": ("field", _lower_camel),
    "Component": ("component", _upper_first),
    "thing": ("noun", lambda s: s.replace("_", " ")),
    "things": ("noun", lambda s: _plural(s).replace("_", " ")),
}


class _Slots(dict[str, str]):
    """A format_map mapping that draws a value the first time a slot is named, then keeps it."""

    def __init__(self, text: _Text, base: dict[str, str]) -> None:
        super().__init__(base)
        self.text = text

    def __missing__(self, key: str) -> str:
        value = self.text.slot(key, self)
        self[key] = value
        return value


class _Text:
    """Fills templates with one project's vocabulary, drawing from the shared random generator."""

    def __init__(self, rng: random.Random, project: _Project) -> None:
        self.rng = rng
        self.p = project
        self.pools: dict[str, tuple[str, ...]] = {
            **_POOLS,
            **_LANG_POOLS[project.lang],
            "noun": project.nouns,
            "component": project.components,
            "lib": project.libs,
            "file": project.files,
            "test_file": project.test_files,
            "cmd": project.test_cmds,
            "check": project.check_cmds,
            "topic": tuple(t for t, _ in project.decisions),
            "branch": project.branches,
        }
        self.snippets: list[str] = []  # recently rendered code snippets, reused by code()

    def slot(self, key: str, s: _Slots) -> str:
        rng = self.rng
        derived = _DERIVED.get(key)
        if derived is not None:
            return derived[1](s[derived[0]])
        pool = self.pools.get(key)
        if pool is not None:
            v = pool[int(rng.random() * len(pool))]
            return v.format_map(s) if "{" in v else v
        if key[-1] == "2" and key[:-1] in self.pools:  # "lib2": another draw from "lib", unlike the first
            first = s[key[:-1]]
            for _ in range(4):
                v = self.slot(key[:-1], s)
                if v != first:
                    break
            return v
        if key in ("num", "num2"):
            return str(rng.randint(2, 480))
        if key == "line":
            return str(rng.randint(12, 640))
        if key == "ms":
            return str(rng.choice((50, 100, 250, 500, 1000, 5000)))
        if key == "secs":
            return f"{rng.uniform(0.2, 30):.2f}"
        if key == "port":
            return str(rng.choice((3000, 5173, 5432, 6379, 8000, 8080, 9090)))
        if key == "ver":
            return f"{rng.randint(0, 5)}.{rng.randint(0, 30)}.{rng.randint(0, 12)}"
        if key == "path":
            return f"{self.p.cwd}/{s['file']}"
        if key == "test_path":
            return f"{self.p.cwd}/{s['test_file']}"
        if key == "choice":
            return self.p.choice(s["topic"])
        if key == "alt":
            options = [o for o in dict(self.p.decisions)[s["topic"]] if o != s["choice"]]
            return rng.choice(options)
        if key == "project":
            return self.p.name
        if key == "cwd":
            return self.p.cwd
        if key == "lang":
            return self.p.lang
        raise KeyError(key)

    def fill(self, template: str, ctx: dict[str, str] | None = None) -> str:
        return template.format_map(_Slots(self, ctx or {}))

    def pick(self, key: str, ctx: dict[str, str] | None = None) -> str:
        return _Slots(self, ctx or {})[key]

    def context(self) -> dict[str, str]:
        """Slots fixed for one turn, so the prompt, the tools and the summary talk about the same things."""
        s = _Slots(self, {})
        keys = "file test_file component noun verb field func test lib cmd cause feature adj"
        return {key: s[key] for key in keys.split()}

    def sentences(self, key: str, n: int, ctx: dict[str, str]) -> str:
        return " ".join(self.pick(key, ctx) for _ in range(n))

    def code(self, size: int, ctx: dict[str, str] | None = None) -> str:
        """Source text of about `size` characters in the project's language."""
        lang = self.p.lang
        base = {k: v for k, v in (ctx or {}).items() if k in ("noun", "field")}
        parts = [self.fill(_HEADERS[lang], base)]
        total = len(parts[0])
        templates = _CODE[lang]
        rng, cache = self.rng, self.snippets
        while total < size:
            r = rng.random()
            if r < 0.15:  # the turn's noun, so grep and read results mention what the turn is about
                snippet = self.fill(templates[int(rng.random() * len(templates))], base)
            elif r < 0.8 and len(cache) >= _SNIPPET_CACHE:  # reuse: filling templates is most of the cost
                snippet = cache[int(rng.random() * _SNIPPET_CACHE)]
            else:
                snippet = self.fill(templates[int(rng.random() * len(templates))])
                if len(cache) < _SNIPPET_CACHE:
                    cache.append(snippet)
                else:
                    cache[int(rng.random() * _SNIPPET_CACHE)] = snippet
            parts.append(snippet)
            total += len(snippet)
        return "".join(parts)


# ---------------------------------------------------------------------------------------------------- code

_HEADERS = {
    "python": '"""{sentence}"""\n\nfrom __future__ import annotations\n\nimport asyncio\nimport logging\n'
    "from collections.abc import Iterable\nfrom dataclasses import dataclass\nfrom uuid import UUID\n\n"
    "from sqlalchemy import select\nfrom sqlalchemy.orm import Session\n\n"
    "from app.models.{noun} import {Noun}\nfrom app.schemas.{noun} import {Noun}Out\n\n"
    "logger = logging.getLogger(__name__)\n\n\n",
    "typescript": 'import {{ useQuery }} from "@tanstack/react-query";\nimport {{ z }} from "zod";\n'
    'import {{ api, ApiError }} from "../api/client";\nimport type {{ {Noun} }} from "../types";\n\n',
    "rust": "//! {sentence}\n\nuse std::time::Duration;\n\nuse anyhow::Context;\n"
    "use serde::{{Deserialize, Serialize}};\n\nuse crate::{nounC}::{{{Noun}, {Noun}Id, {Noun}Error}};\n\n",
    "go": 'package {nounC}\n\nimport (\n\t"context"\n\t"errors"\n\t"fmt"\n\t"net/http"\n\t"sync"\n'
    '\t"time"\n\n\t"github.com/go-chi/chi/v5"\n\t"go.uber.org/zap"\n)\n\n',
}

_CODE: dict[str, tuple[str, ...]] = {
    "python": (
        "def {verb}_{noun}(session: Session, {noun}_id: int, *, include_{field}: bool = False) -> {Noun}:\n"
        '    """{sentence}"""\n'
        "    stmt = select({Noun}).where({Noun}.id == {noun}_id)\n"
        "    {noun} = session.execute(stmt).scalar_one_or_none()\n"
        "    if {noun} is None:\n"
        "        raise {Noun}NotFoundError({noun}_id)\n"
        "    if include_{field} and {noun}.{field} is None:\n"
        '        logger.warning("%s %s has no {field}", "{noun}", {noun}_id)\n'
        "    return {noun}\n\n\n",
        "class {Noun}{Suffix}:\n"
        '    """{sentence}"""\n\n'
        "    def __init__(self, repo: {Noun}Repository, *, max_retries: int = {num}) -> None:\n"
        "        self._repo = repo\n"
        "        self._max_retries = max_retries\n\n"
        "    async def {verb}(self, {noun}_id: UUID) -> {Noun}Out:\n"
        "        for attempt in range(self._max_retries):\n"
        "            try:\n"
        "                row = await self._repo.get({noun}_id)\n"
        "                return {Noun}Out.model_validate(row)\n"
        "            except TransientError:\n"
        "                await asyncio.sleep(2**attempt * 0.1)\n"
        '        raise ServiceUnavailable("{verb} {noun} failed after retries")\n\n\n',
        '@router.get("/{nouns}/{{{noun}_id}}", response_model={Noun}Out)\n'
        "async def get_{noun}({noun}_id: UUID, db: AsyncSession = Depends(get_db)) -> {Noun}Out:\n"
        "    {noun} = await db.get({Noun}, {noun}_id)\n"
        "    if {noun} is None:\n"
        '        raise HTTPException(status_code=404, detail="{noun} not found")\n'
        "    return {Noun}Out.model_validate({noun})\n\n\n",
        "def test_{verb}_{noun}_{adj}(client: TestClient, {noun}_factory: Factory) -> None:\n"
        "    {noun} = {noun}_factory({field}=None)\n"
        '    resp = client.post(f"/{nouns}/{{{noun}.id}}/{verb}")\n'
        "    assert resp.status_code == {num}\n"
        '    assert resp.json()["{field}"] is not None\n\n\n',
        "@dataclass(frozen=True)\n"
        "class {Noun}{Suffix}Config:\n"
        '    """{sentence}"""\n\n'
        "    {field}: str | None = None\n"
        "    max_{nouns}: int = {num}\n"
        "    timeout_s: float = {secs}\n"
        "    retry_on: tuple[type[Exception], ...] = (TimeoutError, ConnectionError)\n\n\n",
        "def {verb}_{nouns}_batch({nouns}: Iterable[{Noun}], *, chunk_size: int = {num}) -> list[{Noun}]:\n"
        "    out: list[{Noun}] = []\n"
        "    for batch in batched({nouns}, chunk_size):\n"
        "        for item in batch:\n"
        "            if item.{field} is None:\n"
        "                continue\n"
        "            out.append(item)\n"
        '        logger.info("{verb} batch of %d {nouns}", len(batch))\n'
        "    return out\n\n\n",
    ),
    "typescript": (
        "export function use{Noun}{Suffix}(id: string, opts: {{ enabled?: boolean }} = {{}}) {{\n"
        "  return useQuery({{\n"
        '    queryKey: ["{nouns}", id, "{fieldC}"],\n'
        "    queryFn: () => api.get<{Noun}>(`/{nouns}/${{id}}`),\n"
        "    enabled: opts.enabled ?? true,\n"
        "    staleTime: {num}_000,\n"
        "  }});\n"
        "}}\n\n",
        "export function {Noun}{Suffix}Panel({{ {nounC}, on{Verb} }}: {Noun}PanelProps) {{\n"
        "  const [pending, setPending] = useState(false);\n"
        "  const handle{Verb} = async () => {{\n"
        "    setPending(true);\n"
        "    try {{\n"
        "      await on{Verb}({nounC}.id);\n"
        "    }} finally {{\n"
        "      setPending(false);\n"
        "    }}\n"
        "  }};\n"
        "  return (\n"
        '    <div className="flex items-center gap-2">\n'
        '      <span className="text-sm text-muted-foreground">{{{nounC}.{fieldC}}}</span>\n'
        "      <Button disabled={{pending}} onClick={{handle{Verb}}}>\n"
        "        {Verb}\n"
        "      </Button>\n"
        "    </div>\n"
        "  );\n"
        "}}\n\n",
        "export async function {verb}{Noun}(id: string, body: Partial<{Noun}>): Promise<{Noun}> {{\n"
        "  const res = await fetch(`${{API_BASE}}/{nouns}/${{id}}`, {{\n"
        '    method: "PATCH",\n'
        '    headers: {{ "content-type": "application/json" }},\n'
        "    body: JSON.stringify(body),\n"
        "  }});\n"
        "  if (!res.ok) {{\n"
        "    throw new ApiError(res.status, `{verb} {noun} failed: ${{res.statusText}}`);\n"
        "  }}\n"
        "  return {nounC}Schema.parse(await res.json());\n"
        "}}\n\n",
        'describe("{verb}{Noun}", () => {{\n'
        '  it("{test}", async () => {{\n'
        "    const {nounC} = make{Noun}({{ {fieldC}: null }});\n"
        "    render(<{Noun}{Suffix}Panel {nounC}={{{nounC}}} on{Verb}={{vi.fn()}} />);\n"
        '    await userEvent.click(screen.getByRole("button", {{ name: /{verb}/i }}));\n'
        "    expect(await screen.findByText(/{adj}/i)).toBeInTheDocument();\n"
        "  }});\n"
        "}});\n\n",
        "export const {nounC}Schema = z.object({{\n"
        "  id: z.string().uuid(),\n"
        "  {fieldC}: z.string().nullable(),\n"
        "  createdAt: z.coerce.date(),\n"
        "  count: z.number().int().nonnegative().default({num}),\n"
        "}});\n"
        "export type {Noun}Input = z.infer<typeof {nounC}Schema>;\n\n",
    ),
    "rust": (
        "/// {sentence}\n"
        "pub fn {verb}_{noun}(&self, id: {Noun}Id) -> Result<{Noun}, {Noun}Error> {{\n"
        "    let row = self\n"
        "        .store\n"
        "        .get(id)\n"
        '        .with_context(|| format!("loading {noun} {{id}}"))?;\n'
        "    if row.{field}.is_none() {{\n"
        "        return Err({Noun}Error::Missing{Field}(id));\n"
        "    }}\n"
        "    Ok(row.into())\n"
        "}}\n\n",
        "#[derive(Debug, Clone, Serialize, Deserialize)]\n"
        "pub struct {Noun}{Suffix} {{\n"
        "    pub id: {Noun}Id,\n"
        "    pub {field}: Option<String>,\n"
        "    pub max_{nouns}: usize,\n"
        "    pub timeout: Duration,\n"
        "}}\n\n"
        "impl {Noun}{Suffix} {{\n"
        "    pub fn new(id: {Noun}Id) -> Self {{\n"
        "        Self {{ id, {field}: None, max_{nouns}: {num}, timeout: Duration::from_millis({ms}) }}\n"
        "    }}\n"
        "}}\n\n",
        "#[test]\n"
        "fn {test}() {{\n"
        '    let input = "{noun} {field}={num}";\n'
        '    let parsed = parse_{noun}(input).expect("valid {noun}");\n'
        '    assert_eq!(parsed.{field}.as_deref(), Some("{num}"));\n'
        "}}\n\n",
        "pub async fn {verb}_{nouns}(&self, batch: Vec<{Noun}>) -> anyhow::Result<usize> {{\n"
        "    let mut sent = 0;\n"
        "    for chunk in batch.chunks({num}) {{\n"
        "        self.client\n"
        "            .send(chunk.to_vec())\n"
        "            .await\n"
        '            .context("{verb} {nouns}")?;\n'
        "        sent += chunk.len();\n"
        '        tracing::debug!(sent, "{verb} progress");\n'
        "    }}\n"
        "    Ok(sent)\n"
        "}}\n\n",
    ),
    "go": (
        "// {Verb}{Noun} loads the {noun} and checks its {field}.\n"
        "func (s *{Noun}Service) {Verb}{Noun}(ctx context.Context, id string) (*{Noun}, error) {{\n"
        "\trow, err := s.store.Get{Noun}(ctx, id)\n"
        "\tif err != nil {{\n"
        '\t\treturn nil, fmt.Errorf("{verb} {noun} %s: %w", id, err)\n'
        "\t}}\n"
        '\tif row.{Field} == "" {{\n'
        "\t\treturn nil, ErrMissing{Field}\n"
        "\t}}\n"
        "\treturn row, nil\n"
        "}}\n\n",
        "func (h *Handler) {Verb}{Noun}(w http.ResponseWriter, r *http.Request) {{\n"
        '\tid := chi.URLParam(r, "id")\n'
        "\t{nounC}, err := h.svc.{Verb}{Noun}(r.Context(), id)\n"
        "\tif errors.Is(err, ErrNotFound) {{\n"
        '\t\thttp.Error(w, "{noun} not found", http.StatusNotFound)\n'
        "\t\treturn\n"
        "\t}}\n"
        "\tif err != nil {{\n"
        '\t\th.log.Error("{verb} {noun}", zap.Error(err))\n'
        '\t\thttp.Error(w, "internal error", http.StatusInternalServerError)\n'
        "\t\treturn\n"
        "\t}}\n"
        "\twriteJSON(w, http.StatusOK, {nounC})\n"
        "}}\n\n",
        "func {test}(t *testing.T) {{\n"
        "\tstore := newFakeStore(t)\n"
        "\tsvc := New{Noun}Service(store, WithTimeout({ms}*time.Millisecond))\n"
        '\tgot, err := svc.{Verb}{Noun}(context.Background(), "{noun}-{num}")\n'
        "\trequire.NoError(t, err)\n"
        '\tassert.Equal(t, "{num2}", got.{Field})\n'
        "}}\n\n",
        "type {Noun}{Suffix} struct {{\n"
        "\tmu      sync.Mutex\n"
        "\titems   map[string]*{Noun}\n"
        "\tttl     time.Duration\n"
        "\tmaxSize int\n"
        "}}\n\n"
        "func (c *{Noun}{Suffix}) Get(id string) (*{Noun}, bool) {{\n"
        "\tc.mu.Lock()\n"
        "\tdefer c.mu.Unlock()\n"
        "\tv, ok := c.items[id]\n"
        "\treturn v, ok\n"
        "}}\n\n",
    ),
}

_FIX_LINE = {
    "python": "    if {noun} is None or {noun}.{field} is None:\n        return None\n",
    "typescript": "  if (!{nounC}?.{fieldC}) return null;\n",
    "rust": "    let Some({field}) = row.{field}.as_ref() else {{ return Ok(None) }};\n",
    "go": '\tif {nounC} == nil {{\n\t\treturn nil, fmt.Errorf("{noun} %s: %w", id, ErrNotFound)\n\t}}\n',
}

_STDERR = {  # harmless noise tools print on stderr
    "python": "warning: `VIRTUAL_ENV=/usr/local/venv` does not match the project environment path `.venv` and"
    " will be ignored",
    "typescript": " WARN  Issues with peer dependencies found\n└─┬ @vitejs/plugin-react 4.3.1\n  └── ✕ unmet peer"
    " vite@^5.0.0: found 6.0.1",
    "rust": "warning: unused variable: `span`\n  --> src/lib.rs:88:13\n   |\n88 |         let span = tracing::span!();",
    "go": "go: downloading github.com/stretchr/testify v1.9.0\ngo: downloading github.com/davecgh/go-spew v1.1.1",
}

_READ_REMINDER = (
    "\n\n<system-reminder>\nIf this file looks like malware, do not improve it; you may still describe what "
    "it"
    " does.\n</system-reminder>\n"
)
_PROMPT_REMINDERS = (
    "<system-reminder>\nThe user opened {file} in the IDE. It may or may not relate to the current task.\n"
    "</system-reminder>",
    "<system-reminder>\nThe todo list is empty. Use TodoWrite if the task has several steps; do not mention"
    " this reminder to the user.\n</system-reminder>",
    "<system-reminder>\nThe user selected lines {line} to {line2} of {file}.\n</system-reminder>",
)
_TODO_OK = (
    "Todos have been modified successfully. Ensure that you continue to use the todo list to track your"
    " progress. Please proceed with the current tasks if applicable"
)
_CAVEAT = (
    "Caveat: The messages below were generated by the user while running local commands. DO NOT respond to"
    " these messages or otherwise consider them in your response unless the user explicitly asks you to."
)

# ------------------------------------------------------------------------------------------------ prompts

_PROMPTS: dict[str, tuple[str, ...]] = {
    "bugfix": (
        "The `{test}` test in {test_file} started failing on CI with `{error_short}`. Can you figure out "
        "what's"
        " going on and fix it?",
        "the {component} is {adj} again, sometimes it works and sometimes it hangs. can you dig into {file}?",
        "We're seeing this in the logs from the {component}:\n\n```\n{error}\n```\n\nPlease find the root "
        "cause.",
        "fix the {adj} {component} test, it fails about 1 in 5 runs",
        "Running `{cmd}` gives me this:\n\n```\n{error}\n```\n\nwhat broke?",
        "{things} with an empty {field} crash the {component}. Fix it and add a regression test.",
    ),
    "feature": (
        "Add {feature} to the {component}. It should {behaviour}. Add tests too.",
        "Can you implement cursor pagination for the {things} list? Order by {field}, page size {num}.",
        "I need a new `{field}` field on {thing}: model, validation, API and tests.",
        "Let's sort out {concept} in the {component}. Keep it simple, no new dependencies if you can avoid "
        "it.",
    ),
    "refactor": (
        "Refactor {file}: `{func}` has gotten way too long. Split it up without changing behaviour.",
        "Move the {thing} validation out of {file} into its own module.",
        "Replace {lib2} with {lib} in the {component}.",
        "clean up the error handling in {file}, it swallows exceptions everywhere",
    ),
    "question": (
        "Which {topic} should we use for {project}: {choice} or {alt}? Think about {concept} and "
        "maintenance.",
        "How does the {component} handle {concept} right now?",
        "Explain what `{func}` in {file} does and why it exists.",
        "Is there a reason we don't use {lib} for {concept}? Just answer, don't change code.",
    ),
    "chore": (
        "Bump {lib} to {ver} and fix whatever breaks.",
        "Commit what we have with a good message.",
        "Run the full test suite and the linter and fix anything that fails.",
        "The app can't connect to the database locally anymore. Can you check my env config?",
    ),
    "subagent": (
        "Before we change anything, get me an overview of how the {component} works and where `{field}` is "
        "used.",
        "Survey the codebase for every place that does {concept} and tell me which ones are inconsistent.",
    ),
}

_SUMMARIES = {
    "bugfix": "## Summary\n\n**Root cause:** {cause}.\n\n**Changes:**\n- `{file}`: {change}\n"
    "- `{test_file}`: "
    "{change2}\n\n`{cmd}` passes. {sentence}",
    "feature": "## Done\n\nAdded {feature} to the {component}.\n\n**Changes:**\n- `{file}`: {change}\n"
    "- `{test_file}`: new tests for {adj} {things}\n\n`{cmd}` passes. {sentence}",
    "refactor": "Refactored `{func}` in `{file}`; behaviour is unchanged.\n\n- {change}\n- {change2}\n\n"
    "`{cmd}` and `{check}` both pass.",
    "bump": "Bumped {lib} to {ver}. {sentence}\n\n`{cmd}` passes after I had to {change}.",
    "survey": "The survey is back. The {component} reads `{field}` in `{file}` through `{func}`, and "
    "`{test_file}` only covers the happy path. I'd start by making sure we {change}.",
}

_QUERIES = (
    "how did we fix the {adj} {component} test",
    "which {topic} did we choose for {project}",
    "why did {test} fail",
    "what was the root cause of the {error_short} in the {component}",
    "where do we configure {concept} in {project}",
    "how do I run the tests for {project}",
    "what did we change in {file}",
    "did we add a {field} column to {nouns}",
    "how does the {component} handle {concept}",
    "what's the command to run the linter in {project}",
    "when did we bump {lib} in {project}",
    "what was decided about {concept} for the {component}",
    "the {component} bug with {field}",
    "how did we make {func} idempotent",
    "how is {lib} set up in {project}",
    "why did we pick {choice} over {alt}",
    "what broke when we upgraded {lib}",
    "{things} with empty {field} crash",
)


# ---------------------------------------------------------------------------------------------------- ids


def _iso(ms: int) -> str:
    t = time.gmtime(ms // 1000)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        f".{ms % 1000:03d}Z"
    )


_B62 = bytes.maketrans(b"+/=", b"kQz")


def _b62(rng: random.Random, n: int) -> str:
    return base64.b64encode(rng.randbytes(n)).translate(_B62)[:n].decode()


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _pkg(lib: str) -> str:
    return lib.lower().replace(" ", "-").replace("/", "-")


class _LineNumbers:
    """Prefixes lines the way the Read tool does ("     1→"), reusing the prefix strings."""

    def __init__(self) -> None:
        self.prefixes: list[str] = [""]

    def __call__(self, content: str, start: int = 1) -> str:
        lines = content.split("\n")
        end = start + len(lines)
        if end > len(self.prefixes):
            self.prefixes.extend(f"{i:>6}→" for i in range(len(self.prefixes), end + 1_000))
        return "\n".join(map(str.__add__, self.prefixes[start:end], lines))


# ------------------------------------------------------------------------------------------------ records


@dataclass
class _Call:
    """One tool call: what the assistant sent and what came back."""

    name: str
    input: dict[str, Any]
    content: str | list[dict[str, Any]]
    result: Any  # toolUseResult
    is_error: bool = False
    ms: int = 40  # tool run time
    id: str = ""


@dataclass
class _Chain:
    """One transcript file being written: a parentUuid chain of records."""

    env: dict[str, Any]
    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    parent: str | None = None

    def emit(self, rec: dict[str, Any]) -> None:
        line = orjson.dumps(rec)
        self.lines.append(line)
        self.size += len(line) + 1

    def data(self) -> bytes:
        return b"\n".join(self.lines) + b"\n"


_CHAIN = "<chain>"  # record(parent=...) default: the chain's last record


class _Session:
    """Generates one session (and its sub-agents) with a target size in bytes."""

    def __init__(
        self, rng: random.Random, project: _Project, start_ms: int, target: int, max_records: int
    ) -> None:
        self.rng = rng
        self.p = project
        self.text = _Text(rng, project)
        self.clock = start_ms
        self.target = target
        self.max_records = max_records
        self.session_id = _uuid(rng)
        self.version = _VERSIONS[min(len(_VERSIONS) - 1, (start_ms - _START_MS) // (4 * 86_400_000))]
        self.task_tool = "Agent" if int(self.version.rsplit(".", 1)[1]) >= 63 else "Task"
        self.model = rng.choices(_MODELS, (6, 3, 1))[0]
        branch = rng.choice(project.branches) if rng.random() > 0.03 else ""
        words = (*_POOLS["adj"], *_POOLS["verb"])
        slug = f"{rng.choice(words)}-{rng.choice(words)}-{rng.choice(project.nouns).replace('_', '-')}"
        self.main = _Chain(
            {
                "parentUuid": None,
                "isSidechain": False,
                "userType": "external",
                "cwd": project.cwd,
                "sessionId": self.session_id,
                "version": self.version,
                "gitBranch": branch,
                "slug": slug,
            }
        )
        self.chain = self.main
        self.subagents: list[tuple[str, _Chain, dict[str, str]]] = []
        self.records = 0
        self.context_tokens = rng.randint(9_000, 22_000)
        self.todos: list[dict[str, str]] = []
        self.last_prompt_parent: str | None = None
        self.numbered = _LineNumbers()

    # -- bookkeeping

    @property
    def progress(self) -> int:
        return self.main.size + sum(c.size for _, c, _ in self.subagents)

    def done(self) -> bool:
        if self.main.size >= MAX_FILE - 250_000:
            return True
        if self.records >= self.max_records and self.main.size >= MIN_FILE:
            return True
        return self.progress >= self.target and self.records >= 50

    def tick(self, lo: int, hi: int) -> str:
        self.clock += self.rng.randint(lo, hi)
        return _iso(self.clock)

    def record(
        self,
        type_: str,
        extra: dict[str, Any],
        parent: str | None = _CHAIN,
        lo: int = 5,
        hi: int = 60,
        *,
        advance: bool = True,
        uid: str | None = None,
    ) -> str:
        """Append a record; by default its parent is the chain's last record and it becomes the new last."""
        chain = self.chain
        uid = uid or _uuid(self.rng)
        rec = dict(chain.env)
        rec["parentUuid"] = chain.parent if parent is _CHAIN else parent
        rec["type"] = type_
        rec.update(extra)
        rec["uuid"] = uid
        rec["timestamp"] = self.tick(lo, hi)
        chain.emit(rec)
        if advance:
            chain.parent = uid
        if chain is self.main:
            self.records += 1
        return uid

    # -- record kinds

    def prompt(self, text: str, *, meta: bool = False, command: bool = False) -> str:
        uid = _uuid(self.rng)
        if not (meta or command) and self.rng.random() < 0.6:
            self.snapshot(uid)
        extra: dict[str, Any] = {"message": {"role": "user", "content": text}}
        if meta:
            extra["isMeta"] = True
        parent: str | None = _CHAIN
        if not (meta or command) and self.last_prompt_parent is not None and self.rng.random() < 0.04:
            parent = self.last_prompt_parent  # the user rewound and edited the previous prompt: a branch
        self.last_prompt_parent = self.chain.parent
        return self.record("user", extra, parent, lo=20_000, hi=240_000, uid=uid)

    def snapshot(self, mid: str) -> None:
        """The file-history snapshot Claude Code writes just before the prompt whose uuid is `mid`."""
        ts = _iso(self.clock)
        backups = {
            f"{self.p.cwd}/{f}": {
                "backupFileName": f"{_b62(self.rng, 16)}@v{v}",
                "version": v,
                "backupTime": ts,
            }
            for v, f in enumerate(self.rng.sample(self.p.files, self.rng.randint(0, 3)), 1)
        }
        self.chain.emit(
            {
                "type": "file-history-snapshot",
                "messageId": mid,
                "snapshot": {"messageId": mid, "trackedFileBackups": backups, "timestamp": ts},
                "isSnapshotUpdate": False,
            }
        )

    def usage(self, out_tokens: int) -> dict[str, Any]:
        created = self.rng.randint(100, 4_000)
        self.context_tokens += created
        return {
            "input_tokens": self.rng.randint(3, 12),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": self.context_tokens,
            "cache_creation": {"ephemeral_5m_input_tokens": created, "ephemeral_1h_input_tokens": 0},
            "output_tokens": out_tokens,
            "service_tier": "standard",
        }

    def respond(self, blocks: list[dict[str, Any]]) -> None:
        """One API response, written as one record per content block sharing message.id and requestId."""
        msg_id = "msg_01" + _b62(self.rng, 22)
        req_id = "req_011C" + _b62(self.rng, 20)
        placeholder = self.rng.randint(1, 12)
        for i, block in enumerate(blocks):
            last = i == len(blocks) - 1
            stop = ("tool_use" if block["type"] == "tool_use" else "end_turn") if last else None
            out = sum(len(orjson.dumps(b)) for b in blocks) // 4 + 5 if last else placeholder
            message = {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [block],
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": self.usage(out),
            }
            self.record(
                "assistant", {"message": message, "requestId": req_id}, lo=300, hi=6_000 if i == 0 else 2_500
            )

    def step(self, calls: list[_Call], text: str | None = None, think: str | None = None) -> None:
        """Assistant thinks, says something, calls tools; then one user record per tool result."""
        blocks: list[dict[str, Any]] = []
        if think:
            blocks.append({"type": "thinking", "thinking": think, "signature": self.signature()})
        if text:
            blocks.append({"type": "text", "text": text})
        for call in calls:
            call.id = "toolu_01" + _b62(self.rng, 22)
            blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.input})
        self.respond(blocks)
        for call in calls:
            if call.name == "Bash" and self.rng.random() < 0.08:
                self.record(
                    "progress",
                    {
                        "data": {
                            "type": "bash_progress",
                            "output": "",
                            "elapsedTimeSeconds": 3,
                            "totalLines": 0,
                        },
                        "toolUseID": call.id,
                        "parentToolUseID": call.id,
                    },
                    lo=1_000,
                    hi=3_000,
                    advance=False,  # a side leaf: the tool result still hangs off the tool_use record
                )
            block: dict[str, Any] = {"tool_use_id": call.id, "type": "tool_result", "content": call.content}
            if call.is_error:
                block["is_error"] = True
            self.record(
                "user",
                {"message": {"role": "user", "content": [block]}, "toolUseResult": call.result},
                lo=max(1, call.ms // 2),
                hi=call.ms + 5,
            )

    def final(self, text: str, think: str | None = None) -> None:
        blocks: list[dict[str, Any]] = []
        if think:
            blocks.append({"type": "thinking", "thinking": think, "signature": self.signature()})
        blocks.append({"type": "text", "text": text})
        self.respond(blocks)

    def signature(self) -> str:
        return base64.b64encode(self.rng.randbytes(self.rng.randint(180, 540))).decode()

    def turn_end(self, started: int) -> None:
        if self.rng.random() < 0.5:
            self.record(
                "system",
                {"subtype": "turn_duration", "durationMs": self.clock - started, "isMeta": False},
                lo=2,
                hi=30,
            )

    # -- tools

    def bash(self, cmd: str, desc: str, out: str, ok: bool = True) -> _Call:
        ms = self.rng.randint(200, 40_000)
        stderr = _STDERR[self.p.lang] if self.rng.random() < 0.12 else ""
        if ok:
            return _Call(
                "Bash",
                {"command": cmd, "description": desc},
                out + (f"\n{stderr}" if stderr else ""),
                {"stdout": out, "stderr": stderr, "interrupted": False, "isImage": False},
                ms=ms,
            )
        body = f"Exit code 1\n{out}"
        return _Call("Bash", {"command": cmd, "description": desc}, body, f"Error: {body}", True, ms)

    def read(self, path: str, content: str) -> _Call:
        shown = self.numbered(content)
        if self.rng.random() < 0.35:
            shown += _READ_REMINDER
        n = content.count("\n") + 1
        meta = {"filePath": path, "content": content, "numLines": n, "startLine": 1, "totalLines": n}
        return _Call("Read", {"file_path": path}, shown, {"type": "text", "file": meta}, ms=30)

    def need(self) -> float:
        """Bytes per record still to write to reach the target: steers how big file contents get."""
        return (self.target - self.progress) / max(10, self.max_records - self.records)

    def read_source(self, ctx: dict[str, str], path: str | None = None) -> _Call:
        """Read a source file; large (20-200 KB) when the session needs bytes to reach its target."""
        need = self.need()
        room = min(self.target - self.progress, MAX_FILE - 400_000 - self.main.size) / 2.2
        size = self.rng.randint(300, 2_500) if need < 1_500 else self.rng.randint(600, 7_000)
        if need > 2_500 and room > 20_000 and self.rng.random() < 0.75:
            size = int(min(200_000, room, max(20_000, need * self.rng.uniform(2, 8))))
        return self.read(path or f"{self.p.cwd}/{ctx['file']}", self.text.code(size, ctx))

    def edit(self, ctx: dict[str, str], path: str | None = None, fail: bool = False) -> _Call:
        """Insert a guard line above a few lines of a source file, or fail to find them like the real tool."""
        path = path or f"{self.p.cwd}/{ctx['file']}"
        original = self.text.code(
            self.rng.randint(400, 2_500) if self.need() < 1_500 else self.rng.randint(800, 6_000), ctx
        )
        lines = original.split("\n")
        at = self.rng.randint(min(12, len(lines) - 1), max(12, len(lines) - 8))
        while at < len(lines) - 1 and not lines[at].strip():
            at += 1
        old = "\n".join(lines[at : at + self.rng.randint(2, 6)])
        new = self.text.fill(_FIX_LINE[self.p.lang], ctx) + old
        if fail:
            inp = {"file_path": path, "old_string": old, "new_string": new}
            msg = f"String to replace not found in file.\nString: {old}"
            return _Call("Edit", inp, f"<tool_use_error>{msg}</tool_use_error>", f"Error: {msg}", True, 20)
        return self.edit_call(path, original, old, new, at)

    def edit_call(self, path: str, original: str, old: str, new: str, at: int) -> _Call:
        old_lines, new_lines = old.split("\n"), new.split("\n")
        common = sum(1 for _ in zip(reversed(old_lines), reversed(new_lines), strict=False))
        patch = [
            {
                "oldStart": at + 1,
                "oldLines": len(old_lines),
                "newStart": at + 1,
                "newLines": len(new_lines),
                "lines": [f"-{x}" for x in old_lines if x not in new_lines]
                + [f"+{x}" for x in new_lines if x not in old_lines]
                + [f" {x}" for x in old_lines[len(old_lines) - common :] if x in new_lines],
            }
        ]
        inp = {"file_path": path, "old_string": old, "new_string": new}
        shown = (
            f"The file {path} has been updated. Here's the result of running `cat -n` on a snippet of the "
            "edited"
            f" file:\n{self.numbered(new, at + 1)}"
        )
        result = {
            "filePath": path,
            "oldString": old,
            "newString": new,
            "originalFile": original,
            "structuredPatch": patch,
            "userModified": False,
            "replaceAll": False,
        }
        return _Call("Edit", inp, shown, result, ms=25)

    def write(self, path: str, content: str) -> _Call:
        result = {"type": "create", "filePath": path, "content": content, "structuredPatch": []}
        return _Call(
            "Write", {"file_path": path, "content": content}, f"File created successfully at: {path}", result
        )

    def grep(self, ctx: dict[str, str]) -> _Call:
        pattern = ctx["func"] if self.rng.random() < 0.6 else ctx["field"]
        files = self.rng.sample(self.p.files + self.p.test_files, self.rng.randint(1, 5))
        if self.rng.random() < 0.5:
            body = f"Found {len(files)} files\n" + "\n".join(f"{self.p.cwd}/{f}" for f in files)
            result = {"mode": "files_with_matches", "filenames": files, "numFiles": len(files)}
            return _Call(
                "Grep", {"pattern": pattern, "output_mode": "files_with_matches"}, body, result, ms=60
            )
        rows = []
        for f in files:
            for _ in range(self.rng.randint(1, 4)):
                code = self.text.fill(self.rng.choice(_CODE[self.p.lang]), ctx).split("\n")
                rows.append(f"{self.p.cwd}/{f}:{self.rng.randint(3, 400)}:{self.rng.choice(code[:4])}")
        body = "\n".join(rows)
        result = {"mode": "content", "numFiles": 0, "filenames": [], "content": body, "numLines": len(rows)}
        inp = {"pattern": pattern, "path": self.p.cwd, "output_mode": "content", "-n": True}
        return _Call("Grep", inp, body, result, ms=80)

    def glob(self) -> _Call:
        ext = {"python": "py", "typescript": "ts*", "rust": "rs", "go": "go"}[self.p.lang]
        names = [f"{self.p.cwd}/{f}" for f in self.p.files + self.p.test_files]
        result = {
            "filenames": names,
            "durationMs": self.rng.randint(3, 90),
            "numFiles": len(names),
            "truncated": False,
        }
        return _Call("Glob", {"pattern": f"**/*.{ext}"}, "\n".join(names), result, ms=30)

    def todo(self, items: list[str], done: int) -> _Call:
        old = self.todos
        new = [
            {
                "content": it,
                "status": "completed" if i < done else ("in_progress" if i == done else "pending"),
                "activeForm": it[:1].upper() + it[1:],
            }
            for i, it in enumerate(items)
        ]
        self.todos = new
        return _Call("TodoWrite", {"todos": new}, _TODO_OK, {"oldTodos": old, "newTodos": new}, ms=10)

    # -- tool outputs

    def test_run(self, ctx: dict[str, str], ok: bool) -> str:
        rng, p = self.rng, self.p
        n = rng.randint(12, 240)
        files = p.test_files
        if p.lang == "python":
            head = (
                "============================= test session starts ==============================\n"
                f"platform linux -- Python 3.11.9, pytest-8.3.3, pluggy-1.5.0\nrootdir: {p.cwd}\n"
                f"configfile: pyproject.toml\nplugins: anyio-4.6.0, asyncio-0.24.0\ncollected {n} items\n\n"
            )
            rows = "".join(
                f"{f} {'.' * rng.randint(3, 40)}{'F' if not ok and f == ctx['test_file'] else ''}"
                f"{' ' * 8}[{rng.randint(1, 100):3d}%]\n"
                for f in files
            )
            if ok:
                return (
                    f"{head}{rows}\n============================== {n} passed in {rng.uniform(1, 30):.2f}s =="
                )
            tb = self.text.fill(
                "\n=================================== FAILURES ===================================\n"
                "_______________________________ {test} _______________________________\n\n"
                "    def {test}(client, {noun}_factory):\n        {noun} = {noun}_factory({field}=None)\n"
                "        result = {func}({noun})\n>       assert result.{field} is not None\n"
                "E       {error}\n\n{test_file}:{line}: AssertionError\n"
                "=========================== short test summary info ============================\n"
                "FAILED {test_file}::{test} - {error_short}\n",
                ctx,
            )
            tail = f"========================= 1 failed, {n - 1} passed in {rng.uniform(1, 30):.2f}s"
            return f"{head}{rows}{tb}{tail}"
        if p.lang == "typescript":
            rows = "".join(
                f" {'❯' if not ok and f == ctx['test_file'] else '✓'} {f} ({rng.randint(2, 30)} tests) "
                f"{rng.randint(5, 400)}ms\n"
                for f in files
            )
            fail = self.text.fill("   × {test} 12ms\n     → {error}\n", ctx) if not ok else ""
            summary = (
                f"\n Test Files  {'1 failed | ' if not ok else ''}{len(files)} passed ({len(files)})\n"
                f"      Tests  {'1 failed | ' if not ok else ''}{n} passed ({n + (0 if ok else 1)})\n"
                f"   Duration  {rng.uniform(0.8, 9):.2f}s\n"
            )
            return f"\n RUN  v2.1.4 {p.cwd}\n\n{rows}{fail}{summary}"
        if p.lang == "rust":
            names = [self.text.pick("test", {"noun": ctx["noun"]}) for _ in range(rng.randint(5, 25))]
            body = "".join(f"test tests::{t} ... ok\n" for t in names)
            head = (
                f"   Compiling {p.name} v0.{rng.randint(1, 9)}.{rng.randint(0, 9)} ({p.cwd})\n"
                "    Finished `test` profile [unoptimized + debuginfo] target(s) in "
                f"{rng.uniform(1, 40):.2f}s\n"
                "     Running unittests src/lib.rs "
                f"(target/debug/deps/{p.name.replace('-', '_')}-{_b62(rng, 16)})\n\n"
                f"running {len(names) + (0 if ok else 1)} tests\n"
            )
            if ok:
                tail = f"test result: ok. {len(names)} passed; 0 failed; 0 ignored; finished in 0.04s"
                return f"{head}{body}\n{tail}"
            fail = self.text.fill(
                "test tests::{test} ... FAILED\n\nfailures:\n\n---- tests::{test} stdout ----\n"
                "thread 'tests::{test}' panicked at {file}:{line}:9:\n{error}\n"
                "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\n",
                ctx,
            )
            return f"{head}{body}{fail}test result: FAILED. {len(names)} passed; 1 failed; 0 ignored"
        pkg = p.cwd.split("/src/", 1)[-1]
        dirs = sorted({f.rsplit("/", 1)[0] for f in p.files})
        rows = "".join(f"ok  \t{pkg}/{d}\t{rng.uniform(0.01, 3):.3f}s\n" for d in dirs)
        if ok:
            return rows
        fail = self.text.fill(
            "--- FAIL: {test} (0.02s)\n    {test_file}:{line}: \n        \tError Trace:\t{test_file}:{line}\n"
            "        \tError:      \t{error}\nFAIL\nFAIL\t" + pkg + "/internal\t0.118s\n",
            ctx,
        )
        return rows + fail

    def manifest(self) -> str:
        """The project's dependency manifest (pyproject.toml, package.json, Cargo.toml or go.mod)."""
        rng, p = self.rng, self.p
        vers = [f"{rng.randint(0, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 9)}" for _ in p.libs]
        deps = [(_pkg(lib), v) for lib, v in zip(p.libs, vers, strict=True)]
        if p.lang == "python":
            rows = "".join(f'    "{d}>={v}",\n' for d, v in deps)
            return (
                f'[project]\nname = "{p.name}"\nversion = "0.{rng.randint(1, 30)}.0"\n'
                'requires-python = ">=3.11"\n'
                f"dependencies = [\n{rows}]\n\n[tool.ruff]\nline-length = 100\n\n[tool.pytest.ini_options]\n"
                'testpaths = ["tests"]\n'
            )
        if p.lang == "typescript":
            doc = {
                "name": p.name,
                "private": True,
                "type": "module",
                "scripts": {
                    "dev": "vite",
                    "build": "tsc -b && vite build",
                    "test": "vitest",
                    "lint": "eslint .",
                },
                "dependencies": {d: f"^{v}" for d, v in deps},
            }
            return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
        if p.lang == "rust":
            rows = "".join(f'{d} = "{v}"\n' for d, v in deps)
            return (
                f'[package]\nname = "{p.name}"\nversion = "0.4.2"\nedition = "2021"\n\n[dependencies]\n{rows}'
            )
        module = p.cwd.split("/src/", 1)[-1]
        rows = "".join(f"\tgithub.com/{d} v{v}\n" for d, v in deps)
        return f"module {module}\n\ngo 1.23\n\nrequire (\n{rows})\n"

    def env_file(self) -> str:
        """A local .env with fake credentials in the shapes secret scanners know."""
        rng = self.rng
        alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
        db = self.p.name.replace("-", "_")
        return (
            f"# local development only\nDATABASE_URL=postgresql://{db}:{''.join(rng.choices(alnum, k=16))}"
            f"@localhost:5432/{db}\nREDIS_URL=redis://localhost:6379/0\n"
            f"STRIPE_SECRET_KEY=sk_test_{''.join(rng.choices(alnum, k=24))}\n"
            f"AWS_ACCESS_KEY_ID=AKIA{''.join(rng.choices(upper, k=16))}\n"
            f"AWS_SECRET_ACCESS_KEY={''.join(rng.choices(alnum + '/+', k=40))}\n"
            f"GITHUB_TOKEN=ghp_{''.join(rng.choices(alnum, k=36))}\nLOG_LEVEL=debug\n"
        )

    # -- turns

    def turn(self) -> None:
        started = self.clock
        ctx = self.text.context()
        rng = self.rng
        if rng.random() < 0.03:
            self.compact()
        elif rng.random() < 0.06:
            self.slash_command()
        kind = rng.choices(
            ("bugfix", "feature", "refactor", "question", "chore", "subagent"), (5, 4, 2, 2, 2, 2)
        )[0]
        template = rng.choice(_PROMPTS[kind])
        slots = _Slots(self.text, ctx)
        text = template.format_map(slots)
        ctx = dict(slots)  # what the prompt named (error, topic, ...) stays true for the rest of the turn
        if rng.random() < 0.15:
            text += "\n\n" + self.text.fill(
                rng.choice(_PROMPT_REMINDERS), {**ctx, "line2": str(rng.randint(641, 700))}
            )
        self.prompt(text)
        if rng.random() < 0.01:
            self.api_error()
            self.prompt("continue")
        getattr(self, f"turn_{kind}")(ctx, template)
        self.turn_end(started)
        if rng.random() < 0.3 and not self.done():
            started = self.clock
            self.prompt(self.text.fill(rng.choice(_POOLS["followup"]), ctx))
            if rng.random() < 0.5:
                self.step([self.bash(ctx["cmd"], "Run the tests", self.test_run(ctx, True))], None)
            self.final(self.text.sentences("after", rng.randint(1, 2), ctx))
            self.turn_end(started)

    def turn_bugfix(self, ctx: dict[str, str], template: str) -> None:
        t, rng = self.text, self.rng
        self.step(
            [self.bash(ctx["cmd"], "Run the failing test", self.test_run(ctx, False), ok=False)],
            t.pick("intro_bug", ctx),
            t.sentences("thought", rng.randint(1, 4), ctx),
        )
        while not self.done() and rng.random() < 0.55:
            self.step([self.grep(ctx) if rng.random() < 0.4 else self.read_source(ctx)], t.pick("look", ctx))
        self.step(
            [self.read_source(ctx)], t.pick("look", ctx), t.sentences("thought", rng.randint(2, 5), ctx)
        )
        if rng.random() < 0.15:
            self.step([self.edit(ctx, fail=True)], None)
            self.step([self.read_source(ctx)], t.pick("retry", ctx))
        self.step([self.edit(ctx)], t.pick("found", ctx), t.pick("thought", ctx))
        if rng.random() < 0.5:
            self.step([self.edit(ctx, f"{self.p.cwd}/{ctx['test_file']}")], t.pick("more", ctx))
        cmd = ctx["cmd"]
        self.step([self.bash(cmd, "Run the tests again", self.test_run(ctx, True))], None)
        if rng.random() < 0.5:
            check = t.pick("check", ctx)
            self.step([self.bash(check, "Lint and type-check", "All checks passed!")], t.pick("passed", ctx))
        self.final(self.summary(ctx))

    def turn_feature(self, ctx: dict[str, str], template: str) -> None:
        t, rng = self.text, self.rng
        items = [
            t.fill(x, ctx)
            for x in (
                "read the {component} code",
                "add {field} handling to {func}",
                "write tests in {test_file}",
                "run tests and linter",
            )
        ]
        self.step([self.todo(items, 0)], t.pick("intro_plan", ctx), t.sentences("thought", 2, ctx))
        self.step([self.glob() if rng.random() < 0.5 else self.grep(ctx)], None)
        self.step([self.read_source(ctx)], None)
        new_file = ctx["file"].rsplit("/", 1)[0] + "/" + ctx["noun"] + "_" + ctx["verb"] + self.ext()
        self.step(
            [
                self.todo(items, 1),
                self.write(f"{self.p.cwd}/{new_file}", t.code(rng.randint(1_500, 14_000), ctx)),
            ],
            t.pick("more", ctx),
        )
        for _ in range(rng.randint(1, 3)):
            if self.done():
                break
            self.step([self.edit(ctx)], t.pick("more", ctx) if rng.random() < 0.5 else None)
        self.step([self.todo(items, 3)], None)
        if rng.random() < 0.4:
            self.step([self.bash(ctx["cmd"], "Run tests", self.test_run(ctx, False), ok=False)], None)
            self.step(
                [self.edit(ctx, f"{self.p.cwd}/{ctx['test_file']}")],
                t.pick("found", ctx),
                t.pick("thought", ctx),
            )
        self.step([self.bash(ctx["cmd"], "Run tests", self.test_run(ctx, True))], None)
        self.step([self.todo(items, 4)], None)
        self.final(self.summary(ctx, "feature"))

    def turn_refactor(self, ctx: dict[str, str], template: str) -> None:
        t, rng = self.text, self.rng
        self.step([self.grep(ctx)], t.pick("intro_read", ctx), t.pick("thought", ctx))
        self.step([self.read_source(ctx)], None)
        for _ in range(rng.randint(2, 4)):
            if self.done():
                break
            self.step([self.edit(ctx)], t.pick("more", ctx) if rng.random() < 0.4 else None)
        self.step([self.bash(ctx["cmd"], "Run tests", self.test_run(ctx, True))], None)
        self.step([self.bash(t.pick("check", ctx), "Lint", "All checks passed!")], None)
        self.final(self.summary(ctx, "refactor"))

    def turn_question(self, ctx: dict[str, str], template: str) -> None:
        t, rng = self.text, self.rng
        if rng.random() < 0.6:
            self.step([self.read_source(ctx)], t.pick("intro_read", ctx), t.sentences("thought", 2, ctx))
        if "choice" in ctx:
            dctx = ctx
            answer = t.fill(
                "## Recommendation: {choice}\n\nFor {project} I'd go with **{choice}** for the {topic}, "
                "mainly"
                " because {reason}. {alt} would also work, but {con}.\n\n**Trade-offs:**\n- {concept}: "
                "{choice} handles this out of the box.\n- Migration cost is low: only `{file}` touches it "
                "today.\n\n"
                "{thought}",
                dctx,
            )
            self.final(answer, t.sentences("thought", 3, ctx))
            self.prompt(t.fill("ok, let's go with {choice} for the {topic}", dctx))
            self.final(t.fill("Noted: {project} uses {choice} for the {topic}. {sentence}", dctx))
            return
        answer = t.fill(
            "## How the {component} works\n\n`{func}` in `{file}` {sentence_l}\n\n- {sentence}\n- "
            "{sentence2}\n\n"
            "It handles {concept} by delegating to {lib}. {thought}",
            {**ctx, "sentence_l": t.pick("sentence", ctx).lower()},
        )
        self.final(answer, t.pick("thought", ctx))

    def turn_chore(self, ctx: dict[str, str], template: str) -> None:
        t, rng, p = self.text, self.rng, self.p
        if template.startswith("Run the full"):
            self.turn_bugfix(ctx, template)
            return
        if template.startswith("Commit"):
            status = "".join(f"\tmodified:   {f}\n" for f in rng.sample(p.files, 3))
            self.step([self.bash("git status",
            "Show working tree status", f"On branch {self.main.env['gitBranch']}"
                       f"\nChanges not staged for commit:\n{status}")], None)  # fmt: skip
            msg = t.fill("fix({noun}): {change}", ctx)
            out = f"[{self.main.env['gitBranch'] or 'HEAD'} {_b62(rng, 7).lower()}] {msg}\n 3 files changed"
            self.step([self.bash(f'git add -A && git commit -m "{msg}"', "Commit changes", out)], None)
            self.final(f"Committed: `{msg}`.")
            return
        if template.startswith("The app can't"):
            self.step([self.read(f"{p.cwd}/.env", self.env_file())], "Let me look at the local env file.")
            self.final(
                t.fill("`DATABASE_URL` points at port 5432 but the compose file maps {port}. {thought}", ctx)
            )
            return
        path = f"{p.cwd}/{p.manifest}"
        manifest = self.manifest()
        lines = manifest.split("\n")
        at = next((i for i, x in enumerate(lines) if _pkg(ctx["lib"]) in x), len(lines) // 2)
        old = lines[at]
        new = (
            re.sub(r"\d+\.\d+(\.\d+)?", t.pick("ver", ctx), old, count=1)
            if re.search(r"\d", old)
            else old + " "
        )
        self.step([self.read(path, manifest)], t.fill("Let me check which {lib} version we pin.", ctx))
        self.step([self.edit_call(path, manifest, old, new, at)], None)
        self.step([self.bash(ctx["cmd"], "Run tests", self.test_run(ctx, rng.random() < 0.6))], None)
        self.final(self.summary(ctx, "bump"))

    def turn_subagent(self, ctx: dict[str, str], template: str) -> None:
        t, rng = self.text, self.rng
        agent_type = rng.choice(("Explore", "general-purpose", "Plan"))
        desc = t.fill("Survey {component}", ctx)
        sub_prompt = t.fill(
            "Find every place in {cwd} that touches `{field}` on {things}, and how the {component} uses it. "
            "Report"
            " file paths, the functions involved and anything inconsistent. Do not edit files.",
            ctx,
        )
        call = _Call(
            self.task_tool, {"description": desc, "subagent_type": agent_type, "prompt": sub_prompt}, "", None
        )
        call.id = "toolu_01" + _b62(rng, 22)
        blocks: list[dict[str, Any]] = [
            {"type": "text", "text": "I'll have an agent survey this so we keep the main context small."},
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.input},
        ]
        self.respond(blocks)
        agent_id = f"a{rng.getrandbits(24):06x}"
        report, tools = self.run_subagent(agent_id, sub_prompt, ctx)
        total_ms = rng.randint(20_000, 180_000)
        content = [
            {"type": "text", "text": report},
            {
                "type": "text",
                "text": f"agentId: {agent_id} (use SendMessage with to: '{agent_id}' to continue this"
                f" agent)\n"
                f"<usage>total_tokens: {rng.randint(8_000, 60_000)}\ntool_uses: {tools}\n"
                f"duration_ms: {total_ms}</usage>",
            },
        ]
        result = {
            "status": "completed",
            "prompt": sub_prompt,
            "agentId": agent_id,
            "content": [{"type": "text", "text": report}],
            "totalDurationMs": total_ms,
            "totalTokens": rng.randint(8_000, 60_000),
            "totalToolUseCount": tools,
        }
        block = {"tool_use_id": call.id, "type": "tool_result", "content": content}
        self.record(
            "user", {"message": {"role": "user", "content": [block]}, "toolUseResult": result}, lo=5, hi=50
        )
        self.subagents[-1][2]["toolUseId"] = call.id
        self.subagents[-1][2]["agentType"] = agent_type
        self.subagents[-1][2]["description"] = desc
        self.final(self.summary(ctx, "survey"))

    def run_subagent(self, agent_id: str, prompt: str, ctx: dict[str, str]) -> tuple[str, int]:
        env = {**self.main.env, "isSidechain": True, "agentId": agent_id}
        chain = _Chain(env)
        self.subagents.append((agent_id, chain, {}))
        main, model = self.chain, self.model
        self.chain, self.model = chain, _MODELS[2] if self.rng.random() < 0.6 else self.model
        t = self.text
        self.record("user", {"message": {"role": "user", "content": prompt}}, None)
        tools = 0
        small = self.need() < 1_500
        for _ in range(self.rng.randint(2, 4 if small else 7)):
            kind = self.rng.random()
            if kind < 0.4:
                call = self.grep(ctx)
            elif kind < 0.55:
                call = self.glob()
            else:
                size = self.rng.randint(300, 2_500) if small else self.rng.randint(1_000, 12_000)
                call = self.read(f"{self.p.cwd}/{t.pick('file')}", t.code(size, ctx))
            self.step([call], t.pick("intro_read", ctx) if self.rng.random() < 0.3 else None)
            tools += 1
        report = t.fill(
            "## {Component}: where `{field}` is used\n\n- `{file}`: `{func}` reads it before saving. "
            "{sentence}\n"
            "- `{test_file}`: covers only the happy path.\n- The {component} assumes {things} always have"
            " `{field}`; that is the inconsistency.\n\n{thought}",
            ctx,
        )
        self.final(report)
        self.chain, self.model = main, model
        return report, tools

    def summary(self, ctx: dict[str, str], kind: str = "bugfix") -> str:
        return self.text.fill(_SUMMARIES[kind], ctx)

    def ext(self) -> str:
        return {"python": ".py", "typescript": ".ts", "rust": ".rs", "go": ".go"}[self.p.lang]

    def api_error(self) -> None:
        text = 'API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
        message = {
            "id": _uuid(self.rng),
            "type": "message",
            "role": "assistant",
            "model": "<synthetic>",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "stop_sequence",
            "stop_sequence": "",
            "usage": self.usage(0),
        }
        self.record("assistant", {"message": message, "isApiErrorMessage": True}, lo=5_000, hi=40_000)

    def slash_command(self) -> None:
        name, args, out = self.rng.choice(
            (
                ("model", "", f"Set model to {self.model}"),
                ("clear", "", ""),
                ("cost", "", f"Total cost: ${self.rng.uniform(0.1, 9):.2f}\nTotal duration (API): 4m 12s"),
                ("mcp", "", "lmm · connected"),
            )
        )
        self.prompt(_CAVEAT, meta=True)
        self.prompt(
            f"<command-name>/{name}</command-name>\n            <command-message>{name}</command-message>\n"
            f"            <command-args>{args}</command-args>",
            command=True,
        )
        if out:
            self.prompt(f"<local-command-stdout>{out}</local-command-stdout>", command=True)

    def compact(self) -> None:
        logical = self.chain.parent
        self.record(
            "system",
            {
                "subtype": "compact_boundary",
                "content": "Conversation compacted",
                "level": "info",
                "isMeta": False,
                "logicalParentUuid": logical,
                "compactMetadata": {"trigger": "auto", "preTokens": self.context_tokens},
            },
            None,
        )
        ctx = self.text.context()
        summary = self.text.fill(
            "This session is being continued from a previous conversation that ran out of context. The "
            "conversation"
            " is summarized below:\nAnalysis:\nThe user asked to fix the {component}. "
            "{cause_c}.\n\nSummary:\n"
            "1. Primary Request: {feature} for the {component}.\n2. Files: {file}, {test_file}.\n3. Pending: "
            "run"
            " `{cmd}`.",
            {**ctx, "cause_c": _upper_first(self.text.pick("cause", ctx))},
        )
        self.record(
            "user",
            {
                "message": {"role": "user", "content": summary},
                "isCompactSummary": True,
                "isVisibleInTranscriptOnly": True,
            },
        )
        self.context_tokens = self.rng.randint(9_000, 22_000)

    # -- whole session

    def run(self) -> None:
        if self.rng.random() < 0.3:
            self.slash_command()
        self.turn()
        while not self.done():
            self.turn()
        if self.rng.random() < 0.15:
            line = orjson.dumps(
                {"type": "summary", "summary": self.text.pick("title"), "leafUuid": self.main.parent}
            )
            self.main.lines.insert(0, line)
            self.main.size += len(line) + 1

    def files(self, root: Path) -> list[tuple[Path, bytes]]:
        folder = root / self.p.enc
        out = [(folder / f"{self.session_id}.jsonl", self.main.data())]
        for agent_id, chain, meta in self.subagents:
            sub = folder / self.session_id / "subagents"
            out.append((sub / f"agent-{agent_id}.jsonl", chain.data()))
            meta_bytes = orjson.dumps({k: meta[k] for k in ("agentType", "description", "toolUseId")})
            out.append((sub / f"agent-{agent_id}.meta.json", meta_bytes))
        return out


# ---------------------------------------------------------------------------------------------------- API


def write_transcripts(root: Path, total_mb: float, *, seed: int = 0, projects: int = 8) -> list[Path]:
    """Write about `total_mb` megabytes of JSONL transcripts under `root`; return the .jsonl paths.

    Layout: ``root/<enc-cwd>/<session>.jsonl`` and ``root/<enc-cwd>/<session>/subagents/agent-<id>.jsonl``
    (+ ``.meta.json``). Sessions are 50 KB - 3 MB and about 50-400 records, so the total lands within a few
    percent of `total_mb` for large trees and within 20% from 0.5 MB up; at least one session is written.
    """
    rng = random.Random(seed)
    profiles = _make_projects(projects)
    weights = [1.0 / (i + 1) ** 0.5 for i in range(len(profiles))]  # some projects are busier than others
    budget = int(total_mb * MB)
    written = 0
    clock = _START_MS
    paths: list[Path] = []
    while written == 0 or budget - written >= MIN_FILE:  # a smaller tail would only overshoot
        clock += rng.randint(10 * 60_000, 14 * 3_600_000)
        target = int(MIN_FILE * (MAX_FILE / MIN_FILE) ** (rng.random() ** 1.6))
        target = min(target, budget - written)
        if budget - written - target < 2 * MIN_FILE:  # leave no tail too small for a whole session
            target = budget - written
        target = max(MIN_FILE, min(target, MAX_FILE - 400_000))
        max_records = max(50, min(380, int(target / rng.uniform(1_500, 6_000))))
        session = _Session(rng, rng.choices(profiles, weights)[0], clock, target, max_records)
        session.run()
        clock = session.clock
        for path, data in session.files(root):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            if path.suffix == ".jsonl":
                paths.append(path)
                written += len(data)
    return paths


def synthetic_chunks(n: int, *, seed: int = 0, projects: int = 8) -> Iterator[tuple[str, str, str]]:
    """Yield `n` (project cwd, ISO timestamp, text) retrieval chunks of 100-1200 characters."""
    rng = random.Random(seed)
    texts = [_Text(rng, p) for p in _make_projects(projects)]
    clock = _START_MS
    shapes = (
        "User: {prompt}\n\nAssistant: {summary}",
        "{summary}",
        "We chose {choice} over {alt} for the {topic} in {project} because {reason}. {thought}",
        "{prompt}\n\n{thought} {thought2} {look}",
        "Ran `{cmd}`:\n{error}\n\n{found}",
        "`{func}` in {file}: {sentence} {sentence2}\n\n{code}",
    )
    for _ in range(n):
        t = rng.choice(texts)
        clock += rng.randint(2_000, 900_000)
        ctx = t.context()
        kind = rng.choice(tuple(_PROMPTS))
        shape = rng.choice(shapes)
        if "{prompt}" in shape:
            ctx["prompt"] = t.fill(rng.choice(_PROMPTS[kind]), ctx)
        if "{summary}" in shape:
            ctx["summary"] = t.fill(_SUMMARIES[rng.choice(tuple(_SUMMARIES))], ctx)
        if "{code}" in shape:
            ctx["code"] = t.code(rng.randint(150, 700), ctx)
        text = t.fill(shape, ctx)
        want = int(rng.triangular(100, 1200, 500))
        while len(text) < want:
            text += " " + t.pick(rng.choice(("thought", "sentence", "look", "after")), ctx)
        if len(text) > 1200:
            cut = text.rfind(" ", 900, 1200)
            text = text[: cut if cut > 0 else 1200]
        yield t.p.cwd, _iso(clock), text


def synthetic_queries(n: int, *, seed: int = 0) -> list[str]:
    """`n` recall queries in the vocabulary of the synthetic projects."""
    rng = random.Random(seed)
    texts = [_Text(rng, p) for p in _make_projects(len(_PROJECT_TABLE))]
    return [rng.choice(texts).fill(rng.choice(_QUERIES)) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic ~/.claude/projects tree for benchmarks.")
    parser.add_argument("out", type=Path, help="folder to write into (created if missing)")
    parser.add_argument("--mb", type=float, default=50.0, help="megabytes (10^6 bytes) of JSONL to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes")
    parser.add_argument("--projects", type=int, default=8, help="number of distinct projects (cwds)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    paths = write_transcripts(args.out, args.mb, seed=args.seed, projects=args.projects)
    secs = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in paths)
    subagents = sum(1 for p in paths if p.parent.name == "subagents")
    print(
        f"wrote {len(paths) - subagents} sessions + {subagents} sub-agents, {size / MB:.1f} MB in {secs:.2f}s"
        f" ({size / MB / secs:.1f} MB/s) under {args.out}"
    )


if __name__ == "__main__":
    main()
