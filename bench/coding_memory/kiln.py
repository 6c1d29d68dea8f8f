"""kiln: a Go image pipeline, nine sessions from January 6 to February 9, 2026.

The stack (Go 1.22 then 1.23, chi, MySQL 8, S3/MinIO, NATS JetStream, k3s on Hetzner with Helm, GitLab CI,
golangci-lint), conventions (wrapped errors, no panics in handlers, table-driven stdlib tests), golang-migrate
and its dirty state, then goose; a data race, OOM kills on huge images, libvips through govips and a base-image
correction, a dead-letter subject, and one nearly empty session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .spec import KILN, Spec

if TYPE_CHECKING:
    from lmm_mcp.samples.build import Session

GO_MOD = """\
module git.ana.dev/platform/kiln

go 1.22.5

require (
	github.com/aws/aws-sdk-go-v2 v1.30.3
	github.com/aws/aws-sdk-go-v2/service/s3 v1.58.2
	github.com/go-chi/chi/v5 v5.1.0
	github.com/go-sql-driver/mysql v1.8.1
	github.com/nats-io/nats.go v1.37.0
	golang.org/x/image v0.19.0
)
"""

HEALTH = """\
package httpapi

import (
	"context"
	"database/sql"
	"net/http"
	"time"
)

// Health answers /healthz: 200 when MySQL answers a ping within a second, 503 otherwise.
func Health(db *sql.DB) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			http.Error(w, "mysql unreachable", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok"))
	}
}
"""

HEALTH_TEST = """\
package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHealth(t *testing.T) {
	tests := []struct {
		name string
		down bool
		want int
	}{
		{"mysql up", false, http.StatusOK},
		{"mysql down", true, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := fakeDB(t, tt.down)
			rec := httptest.NewRecorder()
			Health(db)(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if rec.Code != tt.want {
				t.Fatalf("status = %d, want %d", rec.Code, tt.want)
			}
		})
	}
}
"""


def k01_health(s: Session) -> None:
    s.user(
        "Some context on kiln first: it's our image pipeline. Clients upload an original, kiln generates "
        "thumbnails and WebP variants and writes them to object storage. Go 1.22, chi as the router, MySQL 8 "
        "for job metadata, S3 for the images (MinIO in docker compose locally), and NATS JetStream as the job "
        "queue. It runs on our k3s cluster on Hetzner and gets deployed with Helm.\n\nFirst task: add a "
        "/healthz endpoint that checks the MySQL connection."
    )
    s.read("go.mod", GO_MOD)
    s.write("internal/httpapi/health.go", HEALTH)
    s.write("internal/httpapi/health_test.go", HEALTH_TEST)
    s.edit(
        "internal/httpapi/router.go",
        '\tr.Post("/v1/uploads", h.Upload)',
        '\tr.Get("/healthz", Health(h.db))\n\tr.Post("/v1/uploads", h.Upload)',
    )
    s.bash(
        "make test",
        "go test -race ./...\nok  \tgit.ana.dev/platform/kiln/internal/httpapi\t0.412s\n"
        "ok  \tgit.ana.dev/platform/kiln/internal/imaging\t1.207s\nok  \tgit.ana.dev/platform/kiln/internal/jobs\t0.088s\n"
        "ok  \tgit.ana.dev/platform/kiln/internal/worker\t0.951s",
    )
    s.user(
        "Fine. A few conventions in this repo. Wrap errors with fmt.Errorf and %w and say what you were doing — "
        "don't just return a bare err from something that does more than one step. No panics in request "
        "handlers, ever: return an error response. Tests are table-driven with the standard library only, "
        "no testify."
    )
    s.say(
        "Got it: wrapped errors with context, no panics in handlers, table-driven stdlib tests (no testify)."
    )
    s.user(
        "And CI is GitLab CI, .gitlab-ci.yml at the root; it runs make lint (golangci-lint) and make test. Push "
        "this on a branch."
    )
    s.bash(
        'git checkout -b feat/healthz && git commit -am "Add /healthz with a MySQL ping" && git push -u origin feat/healthz',
        "Switched to a new branch 'feat/healthz'\n[feat/healthz 1f2e9a0] Add /healthz with a MySQL ping\n"
        " 3 files changed, 58 insertions(+)\nremote: To create a merge request for feat/healthz, visit:\n"
        "remote:   https://git.ana.dev/platform/kiln/-/merge_requests/new?merge_request%5Bsource_branch%5D=feat%2Fhealthz",
    )


def k02_variants_column(s: Session) -> None:
    s.user(
        "We need to keep the list of generated variants per job. Add a JSON column `variants` to the jobs table. "
        "Migrations are golang-migrate: numbered up/down files in db/migrations, `make migrate-up` applies them."
    )
    s.bash(
        "ls db/migrations",
        "000001_create_jobs.down.sql\n000001_create_jobs.up.sql\n000002_add_job_status_index.down.sql\n"
        "000002_add_job_status_index.up.sql\n000003_create_uploads.down.sql\n000003_create_uploads.up.sql\n"
        "000004_add_upload_checksum.down.sql\n000004_add_upload_checksum.up.sql\n"
        "000005_add_job_attempts.down.sql\n000005_add_job_attempts.up.sql\n"
        "000006_add_job_priority.down.sql\n000006_add_job_priority.up.sql",
    )
    s.write(
        "db/migrations/000007_add_job_variants.up.sql", "ALTER TABLE jobs ADD COLUMN variants JSON NULL;\n"
    )
    s.write("db/migrations/000007_add_job_variants.down.sql", "ALTER TABLE jobs DROP COLUMN variants;\n")
    s.bash(
        "make migrate-up",
        'migrate -path db/migrations -database "mysql://kiln:kiln@tcp(localhost:3306)/kiln" up\n'
        "error: migration failed in line 0: ALTER TABLE jobs ADD COLUMN variants JSON NULL; (details: Error 1060 "
        "(42S21): Duplicate column name 'variants')\nmake: *** [Makefile:31: migrate-up] Error 1",
        error=True,
    )
    s.bash(
        "make migrate-up",
        "error: Dirty database version 7. Fix and force version.\nmake: *** [Makefile:31: migrate-up] Error 1",
        error=True,
    )
    s.user("Ah. I added that column by hand last night while testing something. My bad.")
    s.say(
        "Then the schema already matches migration 7, and golang-migrate only needs to be told: `force 7` marks "
        "version 7 as applied and clears the dirty flag. On any other database the migration runs normally."
    )
    s.bash(
        'migrate -path db/migrations -database "mysql://kiln:kiln@tcp(localhost:3306)/kiln" force 7 && make migrate-up',
        "no change",
    )
    s.user("I really dislike that dirty flag business. Anyway — where does the Job struct live?")
    s.read(
        "internal/jobs/job.go",
        'package jobs\n\nimport "time"\n\ntype Status string\n\nconst (\n\tQueued  Status = "queued"\n'
        '\tRunning Status = "running"\n\tDone    Status = "done"\n\tFailed  Status = "failed"\n)\n\n'
        "type Job struct {\n\tID        int64\n\tUploadKey string\n\tStatus    Status\n\tAttempts  int\n"
        "\tPriority  int\n\tCreatedAt time.Time\n}\n",
        say="It's in `internal/jobs/job.go`.",
    )
    s.edit(
        "internal/jobs/job.go",
        "\tPriority  int\n",
        '\tPriority  int\n\tVariants  []Variant `json:"variants"`\n',
    )
    s.say("Added `Variants []Variant` to `Job`; the store reads and writes it as JSON.")


POOL_BEFORE = """\
type Pool struct {
	jobs      chan jobs.Job
	processed int64
	failed    int64
}

func (p *Pool) process(j jobs.Job) {
	if err := p.handle(j); err != nil {
		p.failed++
		return
	}
	p.processed++
}

func (p *Pool) Stats() Stats {
	return Stats{Processed: p.processed, Failed: p.failed}
}
"""


def k03_race(s: Session) -> None:
    s.user("make test started failing on CI with the race detector. Can you reproduce it?")
    s.bash(
        "go test -race ./internal/worker/...",
        "==================\nWARNING: DATA RACE\nWrite at 0x00c0001b4010 by goroutine 23:\n"
        "  git.ana.dev/platform/kiln/internal/worker.(*Pool).process()\n"
        "      /home/ana/src/kiln/internal/worker/pool.go:88 +0x1a4\n\nPrevious read at 0x00c0001b4010 by "
        "goroutine 7:\n  git.ana.dev/platform/kiln/internal/worker.(*Pool).Stats()\n"
        "      /home/ana/src/kiln/internal/worker/pool.go:112 +0x44\n==================\n"
        "--- FAIL: TestPoolProcessesAllJobs (0.03s)\n    testing.go:1398: race detected during execution of test\n"
        "FAIL\nFAIL\tgit.ana.dev/platform/kiln/internal/worker\t0.217s",
        error=True,
    )
    s.read("internal/worker/pool.go", POOL_BEFORE)
    s.say(
        "The workers increment `processed` and `failed` while `Stats()` reads them from another goroutine, "
        "with no synchronisation. Counters like these are what `sync/atomic` is for."
    )
    s.edit(
        "internal/worker/pool.go",
        "\tprocessed int64\n\tfailed    int64\n",
        "\tprocessed atomic.Int64\n\tfailed    atomic.Int64\n",
    )
    s.edit("internal/worker/pool.go", "\t\tp.failed++", "\t\tp.failed.Add(1)")
    s.edit("internal/worker/pool.go", "\tp.processed++", "\tp.processed.Add(1)")
    s.edit(
        "internal/worker/pool.go",
        "\treturn Stats{Processed: p.processed, Failed: p.failed}",
        "\treturn Stats{Processed: p.processed.Load(), Failed: p.failed.Load()}",
    )
    s.bash(
        "go test -race -count=20 ./internal/worker/...",
        "ok  \tgit.ana.dev/platform/kiln/internal/worker\t4.806s",
    )
    s.user(
        "Good. While we're on tests: for the store's integration tests I want testcontainers-go with a real "
        "MySQL rather than mocking the store interface. I'd rather have slower tests that hit a real database "
        "than mocks that lie."
    )
    s.say("testcontainers-go isn't in go.mod yet — OK to add it (and its mysql module)?")
    s.user("Yes, add it.")
    s.bash(
        "go get github.com/testcontainers/testcontainers-go/modules/mysql@v0.33.0",
        "go: added github.com/testcontainers/testcontainers-go v0.33.0\n"
        "go: added github.com/testcontainers/testcontainers-go/modules/mysql v0.33.0",
    )
    s.say("Added. Store tests will start a MySQL 8 container once per package in `TestMain`.")


def k04_oom(s: Session) -> None:
    s.user("kiln-worker pods keep restarting in prod. Can you see why?")
    s.bash(
        "kubectl -n kiln get pods -l app=kiln-worker",
        "NAME                          READY   STATUS             RESTARTS      AGE\n"
        "kiln-worker-7d9c5b8f6-xk2lp   0/1     CrashLoopBackOff   14 (2m ago)   3d\n"
        "kiln-worker-7d9c5b8f6-r8tqm   1/1     Running            9 (41m ago)   3d",
    )
    s.bash(
        "kubectl -n kiln describe pod kiln-worker-7d9c5b8f6-xk2lp | grep -A6 'Last State'",
        "    Last State:     Terminated\n      Reason:       OOMKilled\n      Exit Code:    137\n"
        "    Ready:          False\n    Restart Count:  14\n    Limits:\n      memory:  512Mi",
    )
    s.bash(
        "kubectl -n kiln logs kiln-worker-7d9c5b8f6-xk2lp --previous | tail -n 3",
        '{"level":"info","msg":"processing job","job":8812,"key":"uploads/2026/01/18/IMG_5521.png",'
        '"bytes":48211904,"width":12000,"height":9000}',
    )
    s.say(
        "OOMKilled at the 512Mi limit, right after it starts on a 12000x9000 PNG. Decoded to RGBA that's "
        "432 MB before any resize buffer, so the worker can't survive it, and the job is redelivered and kills "
        "the next pod too."
    )
    s.user(
        "Right. Two things then: reject anything over 50 megapixels up front, and give the worker more room."
    )
    s.edit(
        "internal/imaging/decode.go",
        "func Decode(r io.ReadSeeker) (image.Image, error) {\n",
        "// MaxPixels bounds what we decode: 50 megapixels, ~200 MB as RGBA.\nconst MaxPixels = 50_000_000\n\n"
        "func Decode(r io.ReadSeeker) (image.Image, error) {\n\tcfg, _, err := image.DecodeConfig(r)\n"
        '\tif err != nil {\n\t\treturn nil, fmt.Errorf("read image header: %w", err)\n\t}\n'
        '\tif cfg.Width*cfg.Height > MaxPixels {\n\t\treturn nil, fmt.Errorf("image %dx%d over %d pixels: %w", '
        "cfg.Width, cfg.Height, MaxPixels, ErrTooLarge)\n\t}\n\tif _, err := r.Seek(0, io.SeekStart); err != nil {\n"
        '\t\treturn nil, fmt.Errorf("rewind image: %w", err)\n\t}\n',
    )
    s.edit(
        "deploy/helm/kiln/values.yaml",
        "worker:\n  resources:\n    limits:\n      memory: 512Mi",
        "worker:\n  resources:\n    limits:\n      memory: 1Gi",
    )
    s.user(
        "Jobs rejected for size should go straight to failed with reason too_large, not be retried. Then "
        "deploy it."
    )
    s.edit(
        "internal/worker/pool.go",
        "\tif err := p.handle(j); err != nil {",
        "\terr := p.handle(j)\n\tif errors.Is(err, imaging.ErrTooLarge) {\n"
        '\t\tp.store.Fail(ctx, j.ID, "too_large")\n\t\treturn\n\t}\n\tif err != nil {',
    )
    s.bash(
        "make test && helm upgrade kiln deploy/helm/kiln -n kiln -f deploy/helm/kiln/values-prod.yaml",
        "go test -race ./...\nok  \tgit.ana.dev/platform/kiln/internal/imaging\t1.311s\n"
        "ok  \tgit.ana.dev/platform/kiln/internal/worker\t1.022s\n"
        'Release "kiln" has been upgraded. Happy Helming!\nNAME: kiln\nNAMESPACE: kiln\nSTATUS: deployed\nREVISION: 41',
    )


DOCKERFILE_ALPINE = """\
FROM golang:1.22-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libvips-dev
WORKDIR /src
COPY . .
RUN CGO_ENABLED=1 go build -o /out/kiln ./cmd/kiln

FROM alpine:3.20
RUN apk add --no-cache vips ca-certificates
COPY --from=build /out/kiln /usr/local/bin/kiln
ENTRYPOINT ["kiln"]
"""


def k05_govips(s: Session) -> None:
    s.user(
        "Resizing is slow and memory hungry with the pure-Go x/image/draw path. I want to try libvips through "
        "govips: it streams the image instead of decoding it whole and it's much faster on big JPEGs. Yes I know "
        "it means cgo. Worth it."
    )
    s.say("govips (github.com/davidbyttow/govips/v2) would be a new dependency. Shall I add it?")
    s.user("Yes, go ahead, I'm the one asking for it.")
    s.bash(
        "go get github.com/davidbyttow/govips/v2@v2.15.0",
        "go: added github.com/davidbyttow/govips/v2 v2.15.0",
    )
    s.edit(
        "internal/imaging/resize.go",
        "func Resize(src image.Image, width int) image.Image {",
        "func ResizeFile(path string, width int) ([]byte, error) {\n\timg, err := vips.NewThumbnailFromFile(path, "
        'width, 0, vips.InterestingNone)\n\tif err != nil {\n\t\treturn nil, fmt.Errorf("thumbnail %s: %w", path, '
        "err)\n\t}\n\tdefer img.Close()\n\tout, _, err := img.ExportWebp(vips.NewWebpExportParams())\n"
        '\tif err != nil {\n\t\treturn nil, fmt.Errorf("export webp: %w", err)\n\t}\n\treturn out, nil\n}\n\n'
        "func Resize(src image.Image, width int) image.Image {",
    )
    s.write("Dockerfile", DOCKERFILE_ALPINE, say="The runtime image needs libvips too.")
    s.user(
        "No — stay on debian bookworm-slim for the runtime image. We tried alpine last year and musl plus vips "
        "segfaulted under load. Install libvips42 from apt."
    )
    s.edit(
        "Dockerfile",
        "FROM alpine:3.20\nRUN apk add --no-cache vips ca-certificates",
        "FROM debian:bookworm-slim\nRUN apt-get update \\\n    && apt-get install -y --no-install-recommends "
        "libvips42 ca-certificates \\\n    && rm -rf /var/lib/apt/lists/*",
    )
    s.bash(
        "go test -run '^$' -bench=ResizeJPEG24MP -benchmem ./internal/imaging/",
        "goos: linux\ngoarch: amd64\npkg: git.ana.dev/platform/kiln/internal/imaging\n"
        "BenchmarkResizeJPEG24MP/draw-2         3   412093112 ns/op   302318592 B/op   41 allocs/op\n"
        "BenchmarkResizeJPEG24MP/vips-2        18    63912055 ns/op     1843200 B/op   12 allocs/op\nPASS",
    )
    s.user("6x faster and a fraction of the memory. Ship it.")
    s.bash(
        'git commit -am "Resize with libvips through govips" && git push',
        "[main 88c1e2b] Resize with libvips through govips\n 5 files changed, 74 insertions(+), 12 deletions(-)",
    )


GOOSE_MIGRATION = """\
-- +goose Up
ALTER TABLE jobs ADD COLUMN variants JSON NULL;

-- +goose Down
ALTER TABLE jobs DROP COLUMN variants;
"""


def k06_goose(s: Session) -> None:
    s.user(
        "I want to get rid of golang-migrate. The dirty-state thing bit us again on staging this morning, and "
        "I need a migration that backfills variants for old jobs written in Go, which golang-migrate can't do. "
        "Let's switch to goose: Go migrations are first class, and each SQL migration runs in a transaction, so "
        "no dirty flag."
    )
    s.bash(
        "go install github.com/pressly/goose/v3/cmd/goose@v3.22.1 && goose --version",
        "goose version: v3.22.1",
    )
    s.bash(
        "./scripts/convert-migrations-to-goose.sh db/migrations && ls db/migrations",
        "converted 7 migrations\n00001_create_jobs.sql\n00002_add_job_status_index.sql\n00003_create_uploads.sql\n"
        "00004_add_upload_checksum.sql\n00005_add_job_attempts.sql\n00006_add_job_priority.sql\n"
        "00007_add_job_variants.sql",
    )
    s.read("db/migrations/00007_add_job_variants.sql", GOOSE_MIGRATION)
    s.edit(
        "Makefile",
        'migrate-up:\n\tmigrate -path db/migrations -database "$(MYSQL_URL)" up',
        'migrate:\n\tgoose -dir db/migrations mysql "$(MYSQL_DSN)" up',
    )
    s.user(
        "Existing databases already have those 7 applied, so goose needs a baseline: create goose_db_version and "
        "mark 1-7 as applied. Do it in the Helm pre-upgrade migration job, before goose up."
    )
    s.bash(
        "make migrate",
        'goose -dir db/migrations mysql "kiln:kiln@tcp(localhost:3306)/kiln?parseTime=true" up\n'
        "2026/01/27 11:02:13 goose: no migrations to run. current version: 7",
    )
    s.user(
        "Write it down in docs/development.md: `make migrate` runs goose, and new migrations come from "
        "`goose -dir db/migrations create <name> sql` (or `go` for code migrations)."
    )
    s.edit(
        "docs/development.md",
        "## Migrations\n\nUse golang-migrate: `make migrate-up`.",
        "## Migrations\n\nWe use goose (since January 2026; golang-migrate before). `make migrate` applies them.\n"
        "New migration: `goose -dir db/migrations create add_something sql` — or `go` for a migration in code.",
    )
    s.user("Next time: the Go backfill migration for variants on old jobs.")
    s.say("Next: a goose Go migration that backfills `variants` for old jobs.")


def k07_go123(s: Session) -> None:
    s.user("Let's move kiln to Go 1.23. 1.22 stops getting fixes once 1.24 lands this month.")
    s.edit("go.mod", "go 1.22.5", "go 1.23.4")
    s.edit("Dockerfile", "FROM golang:1.22-bookworm AS build", "FROM golang:1.23-bookworm AS build")
    s.edit(".gitlab-ci.yml", "image: golang:1.22", "image: golang:1.23")
    s.bash(
        "go mod tidy && make test",
        "go test -race ./...\nok  \tgit.ana.dev/platform/kiln/internal/httpapi\t0.398s\n"
        "ok  \tgit.ana.dev/platform/kiln/internal/imaging\t1.904s\nok  \tgit.ana.dev/platform/kiln/internal/worker\t1.009s",
    )
    s.bash(
        "make lint",
        "golangci-lint run ./...\nError: can't load config: the Go language version (go1.22) used to build "
        "golangci-lint is lower than the targeted Go version (1.23.4)\nFailed executing command with error: can't "
        "load config\nmake: *** [Makefile:18: lint] Error 3",
        error=True,
    )
    s.say(
        "The pinned golangci-lint (v1.59.1) was built with Go 1.22 and refuses to lint a module targeting 1.23. "
        "Bumping it to v1.61.0 in the Makefile and in CI."
    )
    s.edit("Makefile", "GOLANGCI_LINT_VERSION := v1.59.1", "GOLANGCI_LINT_VERSION := v1.61.0")
    s.edit(".gitlab-ci.yml", "golangci/golangci-lint:v1.59.1", "golangci/golangci-lint:v1.61.0")
    s.bash("make lint", "golangci-lint run ./...\n0 issues.")
    s.user("Merged. Thanks.")


def k08_empty(s: Session) -> None:
    """A session that was opened and left."""
    s.user("hey, you there?")
    s.say("Yes. What would you like to do?")


BACKFILL = """\
package migrations

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pressly/goose/v3"
)

func init() {
	goose.AddMigrationContext(upBackfillVariants, downBackfillVariants)
}

// upBackfillVariants lists the objects each finished job left in the bucket and records them as variants.
func upBackfillVariants(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, "SELECT id, upload_key FROM jobs WHERE status = 'done' AND variants IS NULL")
	if err != nil {
		return fmt.Errorf("select jobs to backfill: %w", err)
	}
	defer rows.Close()
	return backfill(ctx, tx, rows)
}

func downBackfillVariants(ctx context.Context, tx *sql.Tx) error { return nil }
"""


def k09_backfill_dlq(s: Session) -> None:
    s.user("Where did we leave kiln? I think the variants backfill was next.")
    s.bash(
        "git log --oneline -8",
        "2c7d9f1 Upgrade to Go 1.23 and golangci-lint v1.61.0\n0b1e4aa Baseline goose in the Helm migration job\n"
        "9f3a6c0 Switch migrations from golang-migrate to goose\n88c1e2b Resize with libvips through govips\n"
        "d41f0b7 Reject images over 50 megapixels; worker limit 1Gi\n4a8b2c9 Use atomic counters in the worker pool\n"
        "7e0d3f2 Add variants to jobs\n1f2e9a0 Add /healthz with a MySQL ping",
        say="Checking the history.",
    )
    s.say(
        "The last commits are the goose switch and the Go 1.23 upgrade; the backfill migration isn't there yet."
    )
    s.write("db/migrations/00012_backfill_variants.go", BACKFILL)
    s.bash(
        "make migrate",
        'goose -dir db/migrations mysql "kiln:kiln@tcp(localhost:3306)/kiln?parseTime=true" up\n'
        "2026/02/09 10:12:44 OK   00012_backfill_variants.go (2.31s)\n"
        "2026/02/09 10:12:44 goose: successfully migrated database to version: 12",
    )
    s.user(
        "Also poison jobs: a job that fails five times should go to a dead letter subject instead of being "
        "redelivered forever. Set MaxDeliver to 5 on the JetStream consumer, and on the last attempt publish it "
        "to kiln.jobs.dlq."
    )
    s.edit(
        "internal/queue/consumer.go",
        "\t\tAckPolicy:     jetstream.AckExplicitPolicy,\n",
        "\t\tAckPolicy:     jetstream.AckExplicitPolicy,\n\t\tMaxDeliver:    5,\n\t\tBackOff:       "
        "[]time.Duration{10 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute},\n",
    )
    s.edit(
        "internal/queue/consumer.go",
        "\tif err := handle(ctx, msg); err != nil {\n\t\treturn msg.Nak()\n\t}",
        "\tif err := handle(ctx, msg); err != nil {\n\t\tif meta, _ := msg.Metadata(); meta != nil && "
        "meta.NumDelivered >= 5 {\n\t\t\treturn c.deadLetter(ctx, msg, err) // publishes to kiln.jobs.dlq, then acks"
        "\n\t\t}\n\t\treturn msg.Nak()\n\t}",
    )
    s.bash("make test", "go test -race ./...\nok  \tgit.ana.dev/platform/kiln/internal/queue\t2.114s")
    s.user(
        "Good. Open items for this week: a Grafana dashboard for queue lag, and make the presigned URL expiry "
        "configurable — it's hardcoded to 15 minutes. Stop here."
    )
    s.say(
        "Open: Grafana dashboard for queue lag; configurable presigned URL expiry (hardcoded 15 minutes now)."
    )


SESSIONS = [
    Spec("K01", KILN, "2026-01-06T14:30:00Z", "main", "kiln /healthz", k01_health),
    Spec(
        "K02",
        KILN,
        "2026-01-09T13:20:00Z",
        "feat/variants",
        "Variants column, dirty migration",
        k02_variants_column,
    ),
    Spec("K03", KILN, "2026-01-14T15:02:00Z", "fix/pool-race", "Data race in the worker pool", k03_race),
    Spec("K04", KILN, "2026-01-19T08:55:00Z", "main", "Worker OOMKilled on huge images", k04_oom),
    Spec("K05", KILN, "2026-01-26T09:15:00Z", "feat/govips", "Resize with libvips", k05_govips),
    Spec("K06", KILN, "2026-01-27T10:40:00Z", "chore/goose", "golang-migrate to goose", k06_goose),
    Spec("K07", KILN, "2026-02-03T11:00:00Z", "chore/go1.23", "Go 1.23", k07_go123),
    Spec("K08", KILN, "2026-02-05T17:50:00Z", "main", "hey", k08_empty),
    Spec("K09", KILN, "2026-02-09T09:45:00Z", "main", "Backfill variants, dead letters", k09_backfill_dlq),
]
