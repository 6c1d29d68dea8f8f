"""What a project is built with, as people say it: the stack and architecture facts stated in conversation.

    stack_drafts("It's a REST API. I want FastAPI with PostgreSQL 16, Redis for caching.", name="shop")
    # -> Drafts "shop uses FastAPI as its web framework.", "shop uses PostgreSQL 16 as its database.", ...

A lexicon of technologies (`TECH`), each with the role it plays in a project (web framework, database, cache,
queue, deploy target, CI, test runner, package manager, authentication, payments, API style, ...), is matched
as whole words in sentences that state a fact about the project: "we use", "it runs on", "built with", "I
want", "deploy to", "switch to". Questions, suggestions ("we could try X", "what about X?") and negations
("we don't use X") state nothing. A change ("we moved from Alembic to Aerich", "replace X with Y") gives the
new value with `replaces` set, so the older fact is superseded (`transcripts.extraction`) and both dates stay.

Each Draft is one clean sentence naming the project and the technology, with the version when one follows the
name ("Python 3.12", "PostgreSQL 16"); the sentence it came from stays in the memory's sources, not its text.
Pure functions of text: no model, no API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from transcripts.conversation import Draft, sentences


@dataclass(frozen=True)
class Role:
    name: str  # "database"
    template: str  # how a memory says it: {project} {tech}
    single: (
        bool  # a project has one at a time: a new one replaces the old (a database); else it adds (languages)
    )


ROLES = {
    r.name: r
    for r in (
        Role("language", "{project} is written in {tech}.", False),
        Role("web framework", "{project} uses {tech} as its web framework.", True),
        Role("frontend framework", "{project} builds its frontend with {tech}.", True),
        Role("mobile framework", "{project} builds its app with {tech}.", True),
        Role("database", "{project} uses {tech} as its database.", True),
        Role("ORM", "{project} talks to its database through {tech}.", True),
        Role("migrations", "{project} runs database migrations with {tech}.", True),
        Role("cache", "{project} caches with {tech}.", True),
        Role("queue", "{project} runs background jobs and queues on {tech}.", True),
        Role("search", "{project} searches with {tech}.", True),
        Role("object storage", "{project} stores files in {tech}.", True),
        Role("infrastructure", "{project} runs on {tech}.", False),
        Role("deploy target", "{project} deploys to {tech}.", True),
        Role("CI", "{project} runs CI on {tech}.", True),
        Role("test runner", "{project} is tested with {tech}.", False),
        Role("package manager", "{project} manages dependencies with {tech}.", True),
        Role("linter", "{project} is linted and formatted with {tech}.", False),
        Role("authentication", "{project} authenticates users with {tech}.", True),
        Role("payments", "{project} takes payments through {tech}.", True),
        Role("API style", "{project} exposes a {tech} API.", True),
        Role("state management", "{project} manages client state with {tech}.", True),
        Role("styling", "{project} styles its UI with {tech}.", True),
        Role("monitoring", "{project} is monitored with {tech}.", False),
        Role("email", "{project} sends email through {tech}.", True),
        Role("bundler", "{project} bundles with {tech}.", True),
    )
}


# Words people ask with for each role ("where is it hosted?" for a deploy target): indexed beside the memory
# (not in its text), so a question in other words still finds it.
ROLE_TERMS = {
    "language": "language written programming version",
    "web framework": "web framework backend server api http",
    "frontend framework": "frontend ui client web app framework",
    "mobile framework": "mobile app ios android",
    "database": "database db datastore data storage stored sql",
    "ORM": "orm models schema database access queries",
    "migrations": "migrations migration schema changes database",
    "cache": "cache caching cached",
    "queue": "queue jobs background workers broker messages async tasks",
    "search": "search indexing full-text",
    "object storage": "storage files uploads blobs images",
    "infrastructure": "infrastructure containers infra production runs",
    "deploy target": "hosting hosted host deploy deployed deployment production platform",
    "CI": "ci pipeline continuous integration checks builds",
    "test runner": "tests testing test runner unit e2e end-to-end",
    "package manager": "packages dependencies install package manager",
    "linter": "lint linter linting format formatter formatting style",
    "authentication": "auth authentication login sign-in users sessions tokens",
    "payments": "payments billing checkout subscriptions charges",
    "API style": "api style endpoints",
    "state management": "state store client state data fetching",
    "styling": "styling css styles design",
    "monitoring": "monitoring observability metrics errors logging alerts tracing",
    "email": "email mail notifications",
    "bundler": "bundler bundle build",
}


@dataclass(frozen=True)
class Tech:
    name: str  # as a memory writes it
    role: str  # a key of ROLES
    aliases: tuple[str, ...]  # lower-case surface forms, matched as whole words (the name itself included)


def _t(name: str, role: str, *aliases: str) -> Tech:
    return Tech(name, role, (name.lower(), *aliases))


# Common technologies by role. Aliases are the ways people write them; ambiguous plain words ("go", "rest",
# "express", "next", "rails", "spring") need a context the patterns below give them, or are left out.
TECH = (
    _t("Python", "language"),
    _t("TypeScript", "language", "ts"),
    _t("JavaScript", "language"),
    _t("Go", "language", "golang"),
    _t("Rust", "language"),
    _t("Java", "language"),
    _t("Kotlin", "language"),
    _t("Swift", "language"),
    _t("Ruby", "language"),
    _t("PHP", "language"),
    _t("Elixir", "language"),
    _t("C#", "language", "csharp"),
    _t("Node.js", "language", "node", "nodejs"),
    _t("Deno", "language"),
    _t("Bun", "package manager"),
    _t("FastAPI", "web framework"),
    _t("Django", "web framework"),
    _t("Flask", "web framework"),
    _t("Starlette", "web framework"),
    _t("Litestar", "web framework"),
    _t("Express", "web framework", "express.js", "expressjs"),
    _t("NestJS", "web framework", "nest.js"),
    _t("Fastify", "web framework"),
    _t("Hono", "web framework"),
    _t("Ruby on Rails", "web framework", "rails"),
    _t("Sinatra", "web framework"),
    _t("Laravel", "web framework"),
    _t("Spring Boot", "web framework"),
    _t("Phoenix", "web framework"),
    _t("Gin", "web framework"),
    _t("Echo", "web framework"),
    _t("Fiber", "web framework"),
    _t("Axum", "web framework"),
    _t("Actix", "web framework", "actix-web"),
    _t("ASP.NET Core", "web framework", "asp.net"),
    _t("Next.js", "frontend framework", "nextjs"),
    _t("React", "frontend framework", "reactjs", "react.js"),
    _t("Vue", "frontend framework", "vue.js", "vuejs"),
    _t("Nuxt", "frontend framework"),
    _t("Svelte", "frontend framework"),
    _t("SvelteKit", "frontend framework"),
    _t("Angular", "frontend framework"),
    _t("SolidJS", "frontend framework", "solid.js"),
    _t("Remix", "frontend framework"),
    _t("Astro", "frontend framework"),
    _t("HTMX", "frontend framework"),
    _t("React Native", "mobile framework"),
    _t("Flutter", "mobile framework"),
    _t("Expo", "mobile framework"),
    _t("PostgreSQL", "database", "postgres", "postgresql", "pg", "psql"),
    _t("MySQL", "database"),
    _t("MariaDB", "database"),
    _t("SQLite", "database", "sqlite3"),
    _t("MongoDB", "database", "mongo"),
    _t("DynamoDB", "database", "dynamo"),
    _t("CockroachDB", "database"),
    _t("Supabase", "database"),
    _t("PlanetScale", "database"),
    _t("Neon", "database"),
    _t("Firestore", "database"),
    _t("Cassandra", "database"),
    _t("ClickHouse", "database"),
    _t("TimescaleDB", "database", "timescale"),
    _t("SQLAlchemy", "ORM"),
    _t("SQLModel", "ORM"),
    _t("Django ORM", "ORM"),
    _t("Tortoise ORM", "ORM", "tortoise"),
    _t("Peewee", "ORM"),
    _t("Prisma", "ORM"),
    _t("Drizzle", "ORM", "drizzle orm"),
    _t("TypeORM", "ORM"),
    _t("Sequelize", "ORM"),
    _t("Mongoose", "ORM"),
    _t("ActiveRecord", "ORM", "active record"),
    _t("Ecto", "ORM"),
    _t("Diesel", "ORM"),
    _t("SeaORM", "ORM"),
    _t("sqlx", "ORM"),
    _t("GORM", "ORM"),
    _t("Hibernate", "ORM"),
    _t("Entity Framework", "ORM", "ef core"),
    _t("Alembic", "migrations"),
    _t("Aerich", "migrations"),
    _t("Flyway", "migrations"),
    _t("Liquibase", "migrations"),
    _t("Knex", "migrations"),
    _t("golang-migrate", "migrations"),
    _t("goose", "migrations"),
    _t("dbmate", "migrations"),
    _t("Atlas", "migrations"),
    _t("Redis", "cache"),
    _t("Memcached", "cache"),
    _t("Valkey", "cache"),
    _t("Dragonfly", "cache"),
    _t("Celery", "queue"),
    _t("RQ", "queue"),
    _t("Dramatiq", "queue"),
    _t("arq", "queue"),
    _t("Sidekiq", "queue"),
    _t("BullMQ", "queue", "bull"),
    _t("RabbitMQ", "queue", "rabbit"),
    _t("Kafka", "queue"),
    _t("Amazon SQS", "queue", "sqs"),
    _t("NATS", "queue"),
    _t("Temporal", "queue"),
    _t("Elasticsearch", "search", "elastic"),
    _t("OpenSearch", "search"),
    _t("Meilisearch", "search"),
    _t("Typesense", "search"),
    _t("Algolia", "search"),
    _t("pgvector", "search"),
    _t("Amazon S3", "object storage", "s3"),
    _t("Cloudflare R2", "object storage", "r2"),
    _t("MinIO", "object storage"),
    _t("Google Cloud Storage", "object storage", "gcs"),
    _t("Docker", "infrastructure", "docker compose", "docker-compose", "dockerfile"),
    _t("Kubernetes", "infrastructure", "k8s"),
    _t("Terraform", "infrastructure"),
    _t("Pulumi", "infrastructure"),
    _t("Ansible", "infrastructure"),
    _t("Nginx", "infrastructure"),
    _t("Caddy", "infrastructure"),
    _t("AWS", "deploy target", "amazon web services"),
    _t("AWS Lambda", "deploy target", "lambda"),
    _t("ECS", "deploy target", "fargate"),
    _t("Google Cloud", "deploy target", "gcp", "cloud run"),
    _t("Azure", "deploy target"),
    _t("Fly.io", "deploy target", "fly", "flyio"),
    _t("Heroku", "deploy target"),
    _t("Render", "deploy target", "render.com"),
    _t("Railway", "deploy target"),
    _t("Vercel", "deploy target"),
    _t("Netlify", "deploy target"),
    _t("Cloudflare Workers", "deploy target", "workers"),
    _t("Cloudflare Pages", "deploy target"),
    _t("DigitalOcean", "deploy target", "digital ocean"),
    _t("Hetzner", "deploy target"),
    _t("GitHub Actions", "CI", "gh actions", "github action"),
    _t("GitLab CI", "CI", "gitlab-ci"),
    _t("CircleCI", "CI"),
    _t("Jenkins", "CI"),
    _t("Buildkite", "CI"),
    _t("Travis CI", "CI", "travis"),
    _t("pytest", "test runner"),
    _t("unittest", "test runner"),
    _t("Jest", "test runner"),
    _t("Vitest", "test runner"),
    _t("Mocha", "test runner"),
    _t("Playwright", "test runner"),
    _t("Cypress", "test runner"),
    _t("RSpec", "test runner"),
    _t("Minitest", "test runner"),
    _t("JUnit", "test runner"),
    _t("PHPUnit", "test runner"),
    _t("ExUnit", "test runner"),
    _t("Testcontainers", "test runner"),
    _t("Hypothesis", "test runner"),
    _t("uv", "package manager"),
    _t("Poetry", "package manager"),
    _t("pip", "package manager"),
    _t("pipenv", "package manager"),
    _t("PDM", "package manager"),
    _t("Hatch", "package manager"),
    _t("conda", "package manager"),
    _t("npm", "package manager"),
    _t("pnpm", "package manager"),
    _t("Yarn", "package manager"),
    _t("Cargo", "package manager"),
    _t("Bundler", "package manager"),
    _t("Composer", "package manager"),
    _t("Gradle", "package manager"),
    _t("Maven", "package manager"),
    _t("Ruff", "linter"),
    _t("Black", "linter"),
    _t("Flake8", "linter"),
    _t("mypy", "linter"),
    _t("Pyright", "linter"),
    _t("ESLint", "linter"),
    _t("Prettier", "linter"),
    _t("Biome", "linter"),
    _t("Clippy", "linter"),
    _t("RuboCop", "linter"),
    _t("golangci-lint", "linter"),
    _t("JWT", "authentication", "jwts", "json web tokens", "json web token"),
    _t("OAuth", "authentication", "oauth2", "oauth 2"),
    _t("OpenID Connect", "authentication", "oidc"),
    _t("session cookies", "authentication", "cookie sessions", "session-based auth", "cookie-based sessions"),
    _t("magic links", "authentication", "magic link"),
    _t("passkeys", "authentication", "webauthn"),
    _t("API keys", "authentication"),
    _t("Auth0", "authentication"),
    _t("Clerk", "authentication"),
    _t("Keycloak", "authentication"),
    _t("Firebase Auth", "authentication"),
    _t("Supabase Auth", "authentication"),
    _t("NextAuth", "authentication", "auth.js", "next-auth"),
    _t("Devise", "authentication"),
    _t("Cognito", "authentication"),
    _t("Stripe", "payments"),
    _t("Paddle", "payments"),
    _t("Braintree", "payments"),
    _t("PayPal", "payments"),
    _t("Adyen", "payments"),
    _t("Lemon Squeezy", "payments", "lemonsqueezy"),
    _t("REST", "API style", "restful"),
    _t("GraphQL", "API style"),
    _t("gRPC", "API style"),
    _t("tRPC", "API style"),
    _t("WebSockets", "API style", "websocket"),
    _t("JSON-RPC", "API style"),
    _t("Redux", "state management", "redux toolkit"),
    _t("Zustand", "state management"),
    _t("MobX", "state management"),
    _t("Pinia", "state management"),
    _t("Vuex", "state management"),
    _t("Jotai", "state management"),
    _t("Recoil", "state management"),
    _t("TanStack Query", "state management", "react query", "tanstack"),
    _t("SWR", "state management"),
    _t("Tailwind CSS", "styling", "tailwind", "tailwindcss"),
    _t("CSS Modules", "styling"),
    _t("styled-components", "styling"),
    _t("Sass", "styling", "scss"),
    _t("shadcn/ui", "styling", "shadcn"),
    _t("Material UI", "styling", "mui"),
    _t("Chakra UI", "styling", "chakra"),
    _t("Bootstrap", "styling"),
    _t("Sentry", "monitoring"),
    _t("Datadog", "monitoring"),
    _t("Prometheus", "monitoring"),
    _t("Grafana", "monitoring"),
    _t("OpenTelemetry", "monitoring", "otel"),
    _t("New Relic", "monitoring"),
    _t("Honeycomb", "monitoring"),
    _t("SendGrid", "email"),
    _t("Postmark", "email"),
    _t("Mailgun", "email"),
    _t("Amazon SES", "email", "ses"),
    _t("Resend", "email"),
    _t("Vite", "bundler"),
    _t("webpack", "bundler"),
    _t("esbuild", "bundler"),
    _t("Turbopack", "bundler"),
    _t("Rollup", "bundler"),
    _t("Parcel", "bundler"),
)
# Plain words that name a technology only in a technical phrase: "Go 1.22", "written in Go", "on Render".
_NEEDS_CONTEXT = {
    "go",
    "rust",
    "swift",
    "express",
    "remix",
    "render",
    "railway",
    "fly",
    "neon",
    "echo",
    "fiber",
    "gin",
    "phoenix",
    "atlas",
    "goose",
    "temporal",
    "black",
    "hatch",
    "parcel",
    "rollup",
    "resend",
    "workers",
    "lambda",
    "elastic",
    "rabbit",
    "bull",
    "mocha",
    "clerk",
    "hypothesis",
    "bundler",
    "composer",
    "cargo",
    "pip",
    "node",
    "ts",
    "pg",
    "rq",
    "arq",
    "r2",
    "s3",
    "ses",
    "sqs",
    "ecs",
    "gcs",
    "rails",
    "expo",
    "vite",
    "rest",
    "react",
    "vue",
    "angular",
    "astro",
    "solid.js",
    "paddle",
    "diesel",
    "ecto",
    "knex",
    "prisma",
    "drizzle",
    "poetry",
    "devise",
    "celery",
    "flask",
    "jest",
    "yarn",
    "stripe",
    "ruby",
    "travis",
    "java",
}
# Of those, the everyday English words: written in lowercase ("the way to go", "express myself", "through
# poetry"), a preposition is not context enough; only a technical verb before it names the technology.
_PLAIN_WORDS = _NEEDS_CONTEXT & {
    "go", "rust", "swift", "express", "remix", "render", "railway", "fly", "echo", "fiber", "gin", "phoenix",
    "atlas", "goose", "temporal", "black", "hatch", "parcel", "rollup", "resend", "workers", "lambda",
    "elastic", "rabbit", "bull", "mocha", "clerk", "hypothesis", "composer", "cargo", "rails", "rest",
    "react", "angular", "expo", "paddle", "diesel", "drizzle", "poetry", "devise", "celery", "flask", "jest",
    "yarn", "stripe", "ruby", "java",
}  # fmt: skip
# ...and of those, people's first names too: capitalised ("hiking with Ruby", "Travis and I"), a preposition
# is not context enough either.
_GIVEN_NAMES = _NEEDS_CONTEXT & {"ruby", "travis", "phoenix"}
_BY_ALIAS = {alias: t for t in TECH for alias in t.aliases}
_ALIAS = re.compile(
    r"(?<![\w.@/-])("
    + "|".join(re.escape(a) for a in sorted(_BY_ALIAS, key=len, reverse=True))
    + r")(?:(?:[\s@v-]*|\s+to\s+v?)(\d+(?:\.\d+){0,2}(?:\.x)?))?(?![\w@/-]|\.\w)",
    re.I,
)
# The first word of every alias: a cheap test of whether a text can name a technology at all.
_WORDS = re.compile(r"[a-z0-9#][\w.#+/-]*")
_FIRST_WORDS = frozenset(w.rstrip(".") for alias in _BY_ALIAS for w in _WORDS.findall(alias)[:1])
# A sentence states a fact about the project when it says how it is built or what it uses.
_STATES = re.compile(
    r"\b(?:use[sd]?|using|runs? (?:on|in|with)|running (?:on|in)|built (?:on|with|in)|build (?:it )?(?:on|with|in)|"
    r"written in|write it in|based on|backed by|powered by|on top of|via|stack|deploy(?:s|ed|ing)? (?:to|on)|"
    r"host(?:s|ed|ing)? (?:on|at)|lives? (?:on|in)|stor(?:e|es|ed|ing) (?:in|on)|went with|go(?:ing)? with|"
    r"chose|choose|picked|pick|settled on|stick(?:ing)? with|switch(?:ed|ing)? to|mov(?:e|ed|ing) to|"
    r"migrat(?:e|ed|ing) to|replac(?:e|ed|ing)|want|need|requires?|adopt(?:ed)?|added|add|install(?:ed)?|"
    r"set up|setting up|configured|wir(?:e|ed) up|integrat(?:e|ed|ing)|on|with|through|is|are|we're on|"
    r"'re on|it's|that's|as (?:the|our)|for|switched|moved|migrated|ported|swapped|upgraded|bumped)\b",
    re.I,
)
_HYPOTHETICAL = re.compile(
    r"\b(?:should we|could we|shall we|would it|what about|how about|maybe|might|consider(?:ing)?|suggest|"
    r"recommend|alternatively|either|vs\.?|versus|compare|comparison|whether|if we|unless|pros and cons|"
    r"option|options|thinking about|wonder|do we|are we|did we|is it|can we|don't use|do not use|doesn't use|"
    r"never used|not using|instead of using|not use|no need for|without)\b",
    re.I,
)
_CHANGE = re.compile(
    r"\b(?:switch(?:ed|ing)?|mov(?:e|ed|ing)|migrat(?:e|ed|ing)|port(?:ed|ing)|replac(?:e|ed|ing)|swap(?:ped|ping)?|"
    r"chang(?:e|ed|ing)|upgrad(?:e|ed|ing)|bump(?:ed|ing)?|drop(?:s|ped|ping)?|ditch(?:es|ed|ing)?)\b",
    re.I,
)
_OLD_MARK = re.compile(
    r"\b(?:from|instead of|rather than|replace|replacing|replaced|away from|off(?: of)?|dropp?(?:ed|ing)?|ditch(?:ed|ing)?|"
    r"no longer|not|never|nor|no|retir(?:e|ed|ing)|shut(?:ting)? down|kill(?:ed|ing)?|remov(?:e|ed|ing)|"
    r"delet(?:e|ed|ing)|decommission(?:ed|ing)?|tear(?:ing)? down|tore down|get(?:ting)? rid of|got rid of|"
    r"rip(?:ped|ping)? out|sunset(?:ting)?|deprecat(?:e|ed|ing)|uninstall(?:ed|ing)?|turn(?:ed|ing)? off|"
    r"migrat(?:e|ed|ing) off|leav(?:e|ing)|left)\s+"
    r"(?:the\s+|our\s+|all\s+|using\s+|use\s+|old\s+)?(?:(?:,|/|\bor\b|\band\b|\s)+)?$",
    re.I,
)
_CONTEXT_BEFORE = re.compile(
    r"\b(?:in|on|with|to|using|use|uses|via|and|from|of|into|onto|behind|through|for|replace|replacing|than|"
    r"instead of|switch|is|are)\s+(?:the\s+)?$",
    re.I,
)

# ...or, for a plain word in lowercase, a technical verb: "use poetry", "written in go", "deploy to render",
# "moved from go to rust", "format it with black", "we're on neon", "dropping black".
_TECH_VERB_BEFORE = re.compile(
    r"(?:\b(?:use[sd]?|using|via|instead of|rather than|replac(?:e|es|ed|ing)|dropp(?:ed|ing)|drop|ditch\w*|"
    r"retir\w*|remov\w*|uninstall\w*|deprecat\w*|get(?:ting)? rid of|got rid of|away from)"
    r"|\b(?:switch\w*|mov(?:e|es|ed|ing)|migrat\w*|port(?:s|ed|ing)?|rewrit\w*|rewrote)(?:\s+[\w.-]+){0,2}?"
    r"\s+(?:to|in|from|off|onto|into)"
    r"|\b(?:deploy\w*|written|built|build\w*|host\w*|run|runs|running|format\w*|lint\w*|install\w*|upgrad\w*|"
    r"bump\w*|pin(?:s|ned)?|stor(?:e|es|ed|ing))(?:\s+(?:it|them|this|that|everything|all))?"
    r"\s+(?:to|in|on|with|onto|into|through|via)"
    r"|\b(?:go|goes|went|going)\s+(?:through|via)"
    r"|(?:'re|\bare|\bis|'s) on)\s+(?:the\s+)?$",
    re.I,
)

# ...or a technical word after it: "a REST API", "the Go service", "our Render instance".
_CONTEXT_AFTER = re.compile(
    r"\s*(?:api|apis|endpoints?|server|backend|frontend|service|services|app|framework|database|db|cache|queue|"
    r"cluster|instance|project|codebase|monorepo|stack|version|module|code|client|sdk|worker|workers|"
    r"deploy(?:ment)?|config|setup|tests?|suite|runner|components?|hooks?|router|schema|migrations?|install|"
    r"lock|lockfile|scripts?|packages?|plugins?|formatter|linter|cli)\b",
    re.I,
)


# ...or said to be gone after its name: "Prisma is gone", "Heroku is dead now", "webpack removed".
_GONE_AFTER = re.compile(
    r"\s*(?:\w+\s+){0,2}?(?:is|are|was|were|has been|have been|got|'s)?\s*(?:gone|dead|removed|retired|"
    r"deprecated|dropped|deleted|out of the (?:repo|picture|codebase)|no more|history)\b",
    re.I,
)
# A mention is where the change goes ("switch to X", "dropping A for X", "X now") only right after these.
_CHANGE_TO = re.compile(r"\b(?:to|for|with|onto|by)\s+(?:the\s+|a\s+|an\s+)?$", re.I)


# What a technology is for, right after its name: "MySQL 8 for job metadata", "S3 for the uploaded images";
# it ends where another "for" or "as" begins ("SQLite for the database for now": the rest says for how long).
_PURPOSE = re.compile(
    r"\s+(?:for|as)\s+(?:the\s+|our\s+|its\s+|all\s+|a\s+|an\s+)?(?P<what>[a-z][a-z0-9 /-]{2,40}?)"
    r"\s*(?=[,.;:)!?]|\s+(?:and|with|but|while|so|because|since|on|in|which|that|for|as)\b|$)",
    re.I,
)
# ...which is not what these say: "for now", "for example", "for a while".
_NOT_PURPOSE = frozenset({
    "now", "today", "tomorrow", "example", "instance", "while", "moment", "sure", "reference", "context", "me",
    "us", "you", "them", "it", "this", "that", "all", "everything", "free", "once", "good", "real", "years",
    "months", "weeks", "days", "ages", "well", "long", "before", "later", "hours", "minutes",
})  # fmt: skip
_PURPOSE_WORDS = 5


@dataclass(frozen=True)
class Mention:
    tech: Tech
    version: str | None
    old: bool  # named as what is being left ("from X", "instead of X", "retire X", "X is gone")
    target: bool = False  # named where a change goes ("to X", "for X")
    purpose: str | None = None  # what it is for, in the sentence's words: "job metadata"


def mentions(sentence: str) -> list[Mention]:
    """The technologies a sentence names, in order, with their versions and whether each is the old value."""
    out: list[Mention] = []
    spans: list[tuple[int, int]] = []  # earlier names: "not npm or yarn" leaves both, not only npm
    for m in _ALIAS.finditer(sentence):
        alias, version, before = m.group(1).lower(), m.group(2), sentence[: m.start()]
        bare = before
        for a, b in reversed(spans):
            bare = bare[:a] + bare[b:]
        spans.append((m.start(), m.end()))
        if alias in _NEEDS_CONTEXT and not _in_context(sentence, m, before, bare):
            continue  # "go ahead", "rest of it", "render the page": words first, names only in context
        tech = _BY_ALIAS[alias]
        old = bool(_OLD_MARK.search(bare) or _GONE_AFTER.match(sentence, m.end()))
        target = bool(_CHANGE_TO.search(bare))
        version = version.removesuffix(".x") if version else None
        out.append(Mention(tech, version, old, target, None if old else _purpose(sentence, m.end(), tech)))
    return out


def _in_context(sentence: str, m: re.Match[str], before: str, bare: str) -> bool:
    """Whether an ambiguous name (`_NEEDS_CONTEXT`) at `m` is said as the technology: a version, a technical
    word after it, a list of technologies, or the words before it (`bare`: without earlier names)."""
    if m.group(2) or _CONTEXT_AFTER.match(sentence, m.end()) or _listed(sentence, m):
        return True
    name = m.group(1)
    if (name.islower() and name in _PLAIN_WORDS) or name.lower() in _GIVEN_NAMES:
        return bool(_TECH_VERB_BEFORE.search(before))
    return bool(_CONTEXT_BEFORE.search(before) or _OLD_MARK.search(bare))


def _purpose(sentence: str, end: int, tech: Tech) -> str | None:
    """What the sentence says the technology is for, when it says more than its role does."""
    m = _PURPOSE.match(sentence, end)
    if m is None:
        return None
    what = " ".join(m.group("what").lower().split())
    words = what.split()
    if len(words) > _PURPOSE_WORDS or _ALIAS.search(what) or words[0] in _NOT_PURPOSE:
        return None  # too long to be a purpose, another technology ("Prisma for Drizzle"), "for now"
    said = set((ROLE_TERMS[tech.role] + " " + tech.role).lower().split())
    if all(w in said or w.rstrip("s") in said or w + "s" in said for w in words):
        return None  # "Redis for caching", "NATS as the job queue": the role already says it
    return what


def _listed(sentence: str, m: re.Match[str]) -> bool:
    """Part of a list of technologies: "FastAPI, Postgres, Redis" (a comma or "and" next to another name)."""
    near = sentence[max(0, m.start() - 3) : m.end() + 3]
    return ("," in near or "+" in near or "/" in near) and len(_ALIAS.findall(sentence)) >= 2


def stack_drafts(text: str, *, name: str, by_user: bool = True) -> list[Draft]:
    """The stack facts a prompt (`by_user`) or a reply states, one Draft per technology and role."""
    drafts: list[Draft] = []
    if not _FIRST_WORDS & {
        w.rstrip(".") for w in _WORDS.findall(text.lower())
    }:  # most turns name no technology: a set
        return drafts  # lookup instead of the big pattern on every sentence
    for sentence in sentences(text):
        if sentence.rstrip().endswith("?") or _HYPOTHETICAL.search(sentence):
            continue
        found = mentions(sentence)
        if not found or not _STATES.search(sentence):
            continue
        changed = bool(_CHANGE.search(sentence))
        olds = [f for f in found if f.old]
        for f in found:
            if f.old:
                continue
            replaced = next((o for o in olds if o.tech.role == f.tech.role and o.tech != f.tech), None)
            drafts.append(
                _draft(f, name, replaced.tech.name if replaced else None, by_user, changed and f.target)
            )
    return drafts


def _draft(f: Mention, name: str, replaces: str | None, by_user: bool, changed: bool) -> Draft:
    role = ROLES[f.tech.role]
    attrs = {"kind": "stack", "role": role.name, "choice": f.tech.name, "terms": ROLE_TERMS[role.name]}
    if role.single:
        attrs["topic"] = f"stack-{role.name}"
    if changed:  # said as a change: it replaces whatever the role held before (transcripts.extraction)
        attrs["changed"] = "1"
    if replaces:
        attrs["replaces"] = replaces
    if f.version:
        attrs["version"] = f.version
    if f.purpose:
        attrs["purpose"] = f.purpose
    salience = (0.7 if by_user else 0.55) + (0.1 if replaces or changed else 0.0)
    subject = f"stack-{_slug(role.name)}-{_slug(f.tech.name)}"
    text = stack_text(name, attrs)
    return Draft("project_fact", text, subject, salience, keywords=[f.tech.name, role.name], attrs=attrs)


def stack_text(name: str, attrs: dict[str, str]) -> str:
    """The sentence of a stack fact from its attributes, so that one said again keeps what was said before
    ("MySQL 8 for job metadata" then "MySQL": still the version and what it is for)."""
    tech = f"{attrs['choice']} {attrs['version']}" if attrs.get("version") else attrs["choice"]
    text = ROLES[attrs["role"]].template.format(project=name, tech=tech)
    if attrs.get("purpose"):
        text = text[:-1] + f" (for {attrs['purpose']})."
    if attrs.get("replaces"):
        verb = "moved from" if attrs.get("changed") else "rather than"
        text = text[:-1] + f" ({verb} {attrs['replaces']})."
    return text


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
