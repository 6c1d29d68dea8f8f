"""ledgerline: a Django invoicing backend, nine sessions from January 5 to February 6, 2026.

Told in prose and seen in tool output: the stack (Django 5.0 then 5.1, DRF, Postgres 16, Redis, Celery on
RabbitMQ, Poetry), JWT auth, money as integer cents, credit notes, Stripe Checkout webhooks (a signature bug),
a broker URL bug on staging, the move from Heroku to Fly.io, a CI run that is only tool output, black replaced
by ruff format, partial refunds. Open tasks close most sessions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .spec import LEDGERLINE, Spec

if TYPE_CHECKING:
    from lmm_mcp.samples.build import Session

PYPROJECT = """\
[tool.poetry]
name = "ledgerline"
version = "0.18.2"
description = "Invoicing backend"
packages = [{include = "billing"}, {include = "customers"}, {include = "accounts"}]

[tool.poetry.dependencies]
python = "^3.12"
django = "~5.0.6"
djangorestframework = "^3.15.1"
djangorestframework-simplejwt = "^5.3.1"
psycopg = {extras = ["binary"], version = "^3.1.19"}
celery = "^5.3.6"
redis = "^5.0.4"
django-environ = "^0.11.2"
stripe = "^9.9.0"
weasyprint = "^62.1"
gunicorn = "^22.0.0"

[tool.poetry.group.dev.dependencies]
pytest = "^8.2"
pytest-django = "^4.8"
factory-boy = "^3.3"
black = "^24.4"
ruff = "^0.4.8"

[tool.pytest.ini_options]
DJANGO_SETTINGS_MODULE = "config.settings.test"
addopts = "--reuse-db -p no:cacheprovider"
filterwarnings = ["error"]

[tool.black]
line-length = 100
"""

MODELS_BEFORE = """\
class Invoice(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        SENT = "sent"
        PAID = "paid"
        VOID = "void"

    number = models.CharField(max_length=32, unique=True)
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="invoices")
    amount_cents = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3, default="EUR")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    issued_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    stripe_checkout_session = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(check=models.Q(amount_cents__gt=0), name="invoice_amount_positive"),
        ]

    def balance_cents(self) -> int:
        return self.amount_cents
"""

CREDIT_NOTE = """\
class CreditNote(models.Model):
    number = models.CharField(max_length=32, unique=True)  # CN-0001, its own sequence
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    amount_cents = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.TextField(blank=True)
    issued_at = models.DateTimeField(default=timezone.now)

    def clean(self):
        if self.currency != self.invoice.currency:
            raise ValidationError("credit note currency must match the invoice")
        if self.amount_cents > self.invoice.balance_cents():
            raise ValidationError("credit note exceeds what is still owed")
"""

TEST_CREDIT_NOTES = """\
import pytest

from billing.models import CreditNote
from billing.tests.factories import InvoiceFactory

pytestmark = pytest.mark.django_db


def test_credit_note_reduces_balance():
    invoice = InvoiceFactory(amount_cents=10_000)
    CreditNote.objects.create(number="CN-0001", invoice=invoice, amount_cents=2_500, currency="EUR")
    assert invoice.balance_cents() == 7_500


def test_credit_notes_for_two_invoices():
    first, second = InvoiceFactory(), InvoiceFactory()
    CreditNote.objects.create(number="CN-0002", invoice=first, amount_cents=100, currency="EUR")
    CreditNote.objects.create(number="CN-0003", invoice=second, amount_cents=100, currency="EUR")
    assert first.credit_notes.count() == second.credit_notes.count() == 1
"""


def l01_orientation(s: Session) -> None:
    s.user(
        "Morning! Before we start on credit notes this week I want you to get to know ledgerline. Quick "
        "background: it's the invoicing backend behind our freelancer app. Django 5.0 on Python 3.12, Django "
        "REST Framework (DRF) for the API, Postgres 16 as the database, Redis for caching, and Celery workers "
        "with RabbitMQ as the broker for anything slow (emails, PDFs). Dependencies are managed with Poetry. "
        "It runs on Heroku right now, two web dynos and one worker dyno."
    )
    s.read("pyproject.toml", PYPROJECT, say="I'll start with the project file.")
    s.bash(
        "ls billing customers accounts config/settings",
        "accounts:\n__init__.py  apps.py  migrations  models.py  serializers.py  urls.py  views.py\n\n"
        "billing:\n__init__.py  admin.py  apps.py  migrations  models.py  pdf.py  serializers.py  services.py"
        "  tasks.py  templates  tests  urls.py  views.py\n\ncustomers:\n__init__.py  apps.py  migrations  "
        "models.py  serializers.py  tests  urls.py  views.py\n\nconfig/settings:\n__init__.py  base.py  "
        "local.py  production.py  test.py",
    )
    s.bash(
        "poetry run pytest -q",
        "........................................................ [ 26%]\n" * 3 + "212 passed in 41.83s",
    )
    s.say(
        "Three apps: `billing` (invoices, PDFs via WeasyPrint, Celery tasks), `customers` and `accounts`. "
        "Settings are split under `config/settings/` (base, local, test, production) and read the "
        "environment through django-environ. pytest-django runs with `--reuse-db` and turns warnings into "
        "errors (`filterwarnings = error`). All 212 tests pass."
    )
    s.user(
        "Right. How we work here: tests hit a real Postgres — the docker compose one on port 5433 — never "
        "sqlite, and please don't mock the ORM. And more generally: don't pull in new packages without asking "
        "me first. That goes for every repo, not just this one, I've been burnt by transitive junk before."
    )
    s.say(
        "Understood: real Postgres on 5433 for tests, no ORM mocks, and I'll ask before adding any dependency."
    )
    s.user(
        "API conventions: everything lives under /api/v1/, DRF viewsets registered on routers, and we version "
        "by URL prefix, not by headers. API clients authenticate with JWT (simplejwt): 15 minute access tokens "
        "and 7 day refresh tokens. The dashboard is a separate SPA that talks to this API."
    )
    s.read(
        "config/settings/base.py",
        'SIMPLE_JWT = {\n    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),\n'
        '    "REFRESH_TOKEN_LIFETIME": timedelta(days=7),\n    "ROTATE_REFRESH_TOKENS": True,\n}\n\n'
        'REST_FRAMEWORK = {\n    "DEFAULT_AUTHENTICATION_CLASSES": [\n'
        '        "rest_framework_simplejwt.authentication.JWTAuthentication",\n    ],\n'
        '    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",\n    "PAGE_SIZE": 50,\n}\n',
        say="Checking the JWT settings match.",
    )
    s.say("They match: 15 minutes / 7 days with refresh rotation, and cursor pagination at 50 per page.")
    s.user(
        "Ok that's enough for today. Next time: credit notes. A credit note points at an invoice and reduces "
        "what's owed on it. Write down what we'll need so we don't forget."
    )
    s.say(
        "Plan for credit notes:\n1. `CreditNote` model in `billing/models.py` (invoice FK, amount, currency, "
        "reason, own number sequence).\n2. Invoice balance = amount minus credit notes.\n3. Serializer and "
        "viewset at `/api/v1/credit-notes/`.\n4. PDF rendering with WeasyPrint, same template family as "
        "invoices.\n5. Tests against the real database."
    )


def l02_credit_notes(s: Session) -> None:
    s.user("Let's pick up the credit notes plan from Monday. Model first.")
    s.read("billing/models.py", MODELS_BEFORE)
    s.say(
        "I'd add a `CreditNote` with an FK to `Invoice`, `amount = DecimalField(max_digits=12, "
        "decimal_places=2)`, currency, reason and issue date, and make `Invoice.balance` subtract them."
    )
    s.user(
        "Careful, no. Amounts are amount_cents, an integer. We never store money as float or Decimal in this "
        "codebase — always integer minor units plus an ISO currency code. And credit notes get their own "
        "number sequence with the prefix CN-."
    )
    s.edit(
        "billing/models.py",
        "    def balance_cents(self) -> int:\n        return self.amount_cents\n",
        '    def balance_cents(self) -> int:\n        credited = self.credit_notes.aggregate(s=Sum("amount_cents"))["s"] or 0\n'
        "        return self.amount_cents - credited\n\n\n" + CREDIT_NOTE,
        say="Integer cents it is.",
    )
    s.bash(
        "poetry run python manage.py makemigrations billing",
        "Migrations for 'billing':\n  billing/migrations/0014_creditnote.py\n    - Create model CreditNote",
    )
    s.write("billing/tests/test_credit_notes.py", TEST_CREDIT_NOTES)
    s.bash(
        "poetry run pytest billing/tests/test_credit_notes.py -q",
        ".F                                                                       [100%]\n"
        "=================================== FAILURES ===================================\n"
        "_______________________ test_credit_notes_for_two_invoices _______________________\n"
        "django.db.utils.IntegrityError: duplicate key value violates unique constraint "
        '"billing_invoice_number_key"\nDETAIL:  Key (number)=(INV-0001) already exists.\n'
        "billing/tests/factories.py:14: IntegrityError\n"
        "=========================== short test summary info ============================\n"
        "FAILED billing/tests/test_credit_notes.py::test_credit_notes_for_two_invoices - "
        "django.db.utils.IntegrityError: duplicate key value violates unique constraint\n1 failed, 1 passed in 2.31s",
        error=True,
    )
    s.say(
        'The model is fine; the factory isn\'t. `InvoiceFactory` hard-codes `number = "INV-0001"`, so the '
        "second invoice in one test collides with the unique constraint. It never showed up before because "
        "no test created two invoices. A sequence fixes it."
    )
    s.edit(
        "billing/tests/factories.py",
        '    number = "INV-0001"',
        '    number = factory.Sequence(lambda n: f"INV-{n:04d}")',
    )
    s.bash(
        "poetry run pytest billing -q",
        "...............................................   [100%]\n47 passed in 6.02s",
    )
    s.user(
        "Nice. Commit it. And about commit messages, for the record: imperative mood, a short subject line "
        "under 72 characters, no feat:/fix: prefixes please, I find them noisy."
    )
    s.bash(
        'git add billing && git commit -m "Add CreditNote model and subtract credit notes from balance"',
        "[feat/credit-notes 4be91c2] Add CreditNote model and subtract credit notes from balance\n"
        " 4 files changed, 96 insertions(+), 3 deletions(-)\n create mode 100644 billing/migrations/0014_creditnote.py\n"
        " create mode 100644 billing/tests/test_credit_notes.py",
    )
    s.user(
        "Stop here for today. Still missing: the viewset/serializer for credit notes, and the credit note PDF "
        "(reuse the invoice WeasyPrint template). Marta said she might take the PDF."
    )
    s.say(
        "Noted as open: credit note serializer + viewset at /api/v1/credit-notes/, and the PDF (maybe Marta)."
    )


WEBHOOK_V1 = '''\
"""Stripe webhooks: Checkout tells us an invoice was paid."""

import json

import stripe
from django.conf import settings
from django.http import HttpResponse
from rest_framework.decorators import api_view, authentication_classes, permission_classes

from billing.models import Invoice


@api_view(["POST"])
@authentication_classes([])
@permission_classes([])
def stripe_webhook(request):
    payload = json.dumps(request.data)
    signature = request.headers.get("Stripe-Signature", "")
    event = stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
    if event["type"] == "checkout.session.completed":
        session = event["data"]["object"]
        Invoice.objects.filter(stripe_checkout_session=session["id"]).update(status=Invoice.Status.PAID)
    return HttpResponse(status=200)
'''


def l03_stripe(s: Session) -> None:
    s.user(
        "Payments today. Customers pay invoices by card through Stripe Checkout: we create a Checkout Session "
        "per invoice and Stripe redirects them back to the dashboard. What's missing is the webhook — when "
        "checkout.session.completed comes in, the invoice should flip to paid. Put the endpoint at "
        "/api/v1/webhooks/stripe/. The stripe package is already a dependency."
    )
    s.write("billing/webhooks.py", WEBHOOK_V1)
    s.edit(
        "billing/urls.py",
        "urlpatterns = router.urls",
        'urlpatterns = router.urls + [\n    path("webhooks/stripe/", stripe_webhook, name="stripe-webhook"),\n]',
    )
    s.bash(
        "stripe trigger checkout.session.completed && tail -n 20 logs/django.log",
        "Setting up fixture for: checkout_session\nRunning fixture for: checkout_session\nTrigger succeeded! "
        "Check dashboard for event details.\n"
        "2026-01-13 10:41:07 ERROR django.request Internal Server Error: /api/v1/webhooks/stripe/\n"
        'Traceback (most recent call last):\n  File "/home/ana/src/ledgerline/billing/webhooks.py", line 19, in '
        "stripe_webhook\n    event = stripe.Webhook.construct_event(payload, signature, "
        "settings.STRIPE_WEBHOOK_SECRET)\nstripe._error.SignatureVerificationError: No signatures found "
        "matching the expected signature for payload",
    )
    s.say(
        "The signature is an HMAC over the exact bytes Stripe sent. I re-serialised `request.data`, which "
        "changes whitespace and key order, so it can never match. The view has to verify `request.body`, "
        "the raw bytes, before anything parses it."
    )
    s.edit("billing/webhooks.py", "    payload = json.dumps(request.data)", "    payload = request.body")
    s.bash(
        "stripe trigger checkout.session.completed",
        "Trigger succeeded! Check dashboard for event details.\n"
        "2026-01-13 10:44:52   --> checkout.session.completed [evt_1QgT2bLkdIwHu7ix0dFGmX4e]\n"
        "2026-01-13 10:44:52  <--  [200] POST http://localhost:8000/api/v1/webhooks/stripe/",
    )
    s.user(
        "It also has to be idempotent — Stripe retries on timeouts and we'll get the same event twice. Keep the "
        "ids of events we've processed. And the signing secret comes from the STRIPE_WEBHOOK_SECRET env var, "
        "don't hardcode anything."
    )
    s.edit(
        "billing/webhooks.py",
        '    if event["type"] == "checkout.session.completed":',
        '    _, created = ProcessedStripeEvent.objects.get_or_create(event_id=event["id"])\n'
        "    if not created:\n        return HttpResponse(status=200)  # a retry of an event we handled\n"
        '    if event["type"] == "checkout.session.completed":',
        say="A table of handled event ids (`ProcessedStripeEvent`, unique `event_id`) makes retries no-ops.",
    )
    s.bash(
        "poetry run python manage.py makemigrations billing && poetry run pytest billing -q",
        "Migrations for 'billing':\n  billing/migrations/0015_processedstripeevent.py\n    - Create model "
        "ProcessedStripeEvent\n.....................................................   [100%]\n53 passed in 6.77s",
    )
    s.user("Good. Refunds will come later, not today. That's it.")
    s.say("Done: webhook verifies the raw body, marks invoices paid, and ignores repeated events.")


def l04_broker(s: Session) -> None:
    s.user(
        "Invoice emails aren't going out on staging. The send_invoice_email task never runs. The worker log "
        "is full of this:\n\n[2026-01-16 08:51:12,004: ERROR/MainProcess] consumer: Cannot connect to "
        "amqp://guest:**@localhost:5672//: [Errno 111] Connection refused.\nTrying again in 32.00 seconds... "
        "(16/100)\nkombu.exceptions.OperationalError: [Errno 111] Connection refused"
    )
    s.read(
        "config/settings/production.py",
        'from .base import *  # noqa\n\nDEBUG = False\nDATABASES = {"default": env.db("DATABASE_URL")}\n'
        'CACHES = {"default": env.cache("REDIS_URL")}\n'
        'CELERY_BROKER_URL = env("BROKER_URL", default="amqp://guest:guest@localhost:5672//")\n'
        'EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"\n',
    )
    s.bash(
        "heroku config -a ledgerline-staging | grep -i -e amqp -e broker",
        "CLOUDAMQP_APIKEY: 3f0c…\nCLOUDAMQP_URL:    amqps://kzqfwrme:****@rattlesnake.rmq.cloudamqp.com/kzqfwrme",
    )
    s.say(
        "Found it. The CloudAMQP add-on exports `CLOUDAMQP_URL`, but production settings read `BROKER_URL`, "
        "which isn't set on staging, so Celery falls back to the default — a RabbitMQ on localhost that "
        "doesn't exist. Reading `CLOUDAMQP_URL` fixes it."
    )
    s.user("Yes, and drop the default. I'd rather it crash at boot than silently point at localhost again.")
    s.edit(
        "config/settings/production.py",
        'CELERY_BROKER_URL = env("BROKER_URL", default="amqp://guest:guest@localhost:5672//")',
        'CELERY_BROKER_URL = env("CLOUDAMQP_URL")  # no default: a missing broker must fail at boot',
    )
    s.bash(
        "git push heroku-staging main && heroku logs -a ledgerline-staging --ps worker -n 5",
        "remote: Verifying deploy... done.\n"
        "2026-01-16T09:14:40 app[worker.1]: [2026-01-16 09:14:40,311: INFO/MainProcess] Connected to "
        "amqps://kzqfwrme:**@rattlesnake.rmq.cloudamqp.com:5671/kzqfwrme\n"
        "2026-01-16T09:14:41 app[worker.1]: celery@4d1c ready.\n"
        "2026-01-16T09:15:02 app[worker.1]: Task billing.tasks.send_invoice_email[9f1e…] succeeded in 1.21s",
    )
    s.user(
        "Works, emails are flowing. Btw — keep your answers shorter. I don't need the recap paragraph at the "
        "end of every reply, in any project."
    )
    s.say("Got it.")
    s.user(
        "One for later, not now: send_invoice_email should retry with exponential backoff when the SMTP server "
        "hiccups. Right now one failure and the email is lost."
    )
    s.say("Noted for later: retries with exponential backoff on send_invoice_email.")


def l05_retries_and_django(s: Session) -> None:
    s.user("Let's do the email retries we parked last week.")
    s.read(
        "billing/tasks.py",
        "from celery import shared_task\n\nfrom billing.emails import render_invoice_email\n\n\n@shared_task\n"
        "def send_invoice_email(invoice_id: int) -> None:\n    message = render_invoice_email(invoice_id)\n"
        "    message.send()\n",
    )
    s.edit(
        "billing/tasks.py",
        "@shared_task\ndef send_invoice_email",
        "@shared_task(\n    autoretry_for=(SMTPException, ConnectionError),\n    retry_backoff=True,\n"
        "    retry_backoff_max=600,\n    max_retries=5,\n)\ndef send_invoice_email",
    )
    s.bash("poetry run pytest billing/tests/test_tasks.py -q", "......   [100%]\n6 passed in 1.12s")
    s.user(
        "While we're at it: bump Django to 5.1. 5.0 goes out of support in April anyway and I'd rather do it "
        "now than in a hurry."
    )
    s.bash(
        "poetry add django@~5.1.5",
        "Updating dependencies\nResolving dependencies... (1.9s)\n\nPackage operations: 0 installs, 1 update, "
        "0 removals\n\n  - Updating django (5.0.6 -> 5.1.5)\n\nWriting lock file",
    )
    s.bash(
        "poetry run pytest -q",
        "ImportError while loading conftest '/home/ana/src/ledgerline/conftest.py'.\n"
        "billing/models.py:31: in Meta\n    models.CheckConstraint(check=models.Q(amount_cents__gt=0), "
        'name="invoice_amount_positive"),\ndjango.utils.deprecation.RemovedInDjango60Warning: '
        "CheckConstraint.check is deprecated in favor of `.condition`.",
        error=True,
    )
    s.say(
        "Django 5.1 renamed `CheckConstraint(check=...)` to `condition=`; the old name warns, and our pytest "
        "config turns warnings into errors. Renaming the argument is the whole fix (the migration state is "
        "unchanged)."
    )
    s.edit(
        "billing/models.py",
        "models.CheckConstraint(check=models.Q(amount_cents__gt=0)",
        "models.CheckConstraint(condition=models.Q(amount_cents__gt=0)",
    )
    s.bash("poetry run pytest -q", "231 passed in 44.90s")
    s.user("Good, commit both.")
    s.bash(
        'git commit -am "Retry invoice emails with backoff and upgrade Django to 5.1"',
        "[main 7d3a0e1] Retry invoice emails with backoff and upgrade Django to 5.1\n 4 files changed, 23 "
        "insertions(+), 9 deletions(-)",
    )


FLY_TOML = """\
app = "ledgerline"
primary_region = "ams"

[build]
  dockerfile = "Dockerfile"

[deploy]
  release_command = "python manage.py migrate --noinput"

[processes]
  web = "gunicorn config.wsgi:application --bind 0.0.0.0:8000 --workers 3"
  worker = "celery -A config worker -l info --concurrency 4"

[http_service]
  internal_port = 8000
  processes = ["web"]
  force_https = true
  min_machines_running = 1
"""

DOCKERFILE = """\
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 POETRY_VIRTUALENVS_CREATE=false
WORKDIR /app
RUN pip install --no-cache-dir poetry==1.8.3
COPY pyproject.toml poetry.lock ./
RUN poetry install --only main --no-root --no-interaction
COPY . .
RUN python manage.py collectstatic --noinput
"""


def l06_fly(s: Session) -> None:
    s.user(
        "Decision from yesterday's call with Marta: we're leaving Heroku. ledgerline moves to Fly.io, region "
        "ams. Two reasons: the bill went up again with the new dyno pricing, and most of our customers are in "
        "the Netherlands and Belgium so Amsterdam is the obvious place. The database goes to Fly Postgres; we "
        "keep CloudAMQP for RabbitMQ for now. Web and the Celery worker should be separate process groups."
    )
    s.write("fly.toml", FLY_TOML)
    s.user("There's no Dockerfile, Heroku built us with the Python buildpack. Write one, python:3.12-slim.")
    s.write("Dockerfile", DOCKERFILE)
    s.bash(
        "fly deploy",
        "==> Verifying app config\n--> Verified app config\n==> Building image\n...\n"
        "--> Pushing image done\n==> Running release command: python manage.py migrate --noinput\n"
        "django.core.exceptions.ImproperlyConfigured: Set the DATABASE_URL environment variable\n"
        "Error: release command failed - aborting deployment. error running release_command machine: exit code 1",
        error=True,
    )
    s.say(
        "The image builds; the release command fails because the app has no `DATABASE_URL` yet. Attaching the "
        "Fly Postgres cluster to the app sets that secret."
    )
    s.bash(
        "fly postgres attach ledgerline-db --app ledgerline && fly deploy",
        "Checking for existing attachments\nRegistering attachment\nCreating database\nCreating user\n\n"
        "Postgres cluster ledgerline-db is now attached to ledgerline\nThe following secret was added to "
        "ledgerline:\n  DATABASE_URL=postgres://ledgerline:****@ledgerline-db.flycast:5432/ledgerline?sslmode=disable\n"
        "...\n==> Running release command: python manage.py migrate --noinput\n  No migrations to apply.\n"
        "--> release_command succeeded\nUpdating existing machines in 'ledgerline' with rolling strategy\n"
        "  [1/3] Machine 3d8d1e4b web ✓\n  [2/3] Machine 9185e21f web ✓\n  [3/3] Machine e82d4a0c worker ✓\n"
        "Visit your newly deployed app at https://ledgerline.fly.dev/",
    )
    s.user(
        "Update the README: deploys are `fly deploy` from main now, nobody should `git push heroku main` anymore."
    )
    s.edit(
        "README.md",
        "## Deploy\n\n`git push heroku main` (Heroku, app `ledgerline-prod`).",
        "## Deploy\n\n`fly deploy` from `main` (Fly.io, region ams; web and worker process groups). "
        "Heroku was retired in January 2026.",
    )
    s.user(
        "Open for next time: decommission the Heroku apps once Fly has run clean for a week, and move staging "
        "to Fly as well."
    )
    s.say("Open: retire the Heroku apps after a clean week on Fly; move staging to Fly.")


def l07_ci_output(s: Session) -> None:
    """Only tool output: a scheduled run, no one typing."""
    s.bash(
        "poetry run pytest -q",
        "........................................................................ [ 29%]\n"
        "...............................F........................................ [ 59%]\n"
        "...................................................................      [100%]\n"
        "=================================== FAILURES ===================================\n"
        "______________________ test_credit_note_pdf_renders ______________________\n"
        "billing/pdf.py:12: in render_pdf\n    from weasyprint import HTML\n"
        "OSError: cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open shared object file: "
        "No such file or directory\n"
        "FAILED billing/tests/test_pdf.py::test_credit_note_pdf_renders - OSError: cannot load library "
        "'libpango-1.0-0'\n1 failed, 240 passed in 52.10s",
        error=True,
    )
    s.bash(
        "git log --oneline -6",
        "e51f0a9 Render credit note PDFs with the invoice template\n"
        "c08b7d2 Add credit note serializer and viewset\n0a9c3ee Move deploys to Fly.io\n"
        "7d3a0e1 Retry invoice emails with backoff and upgrade Django to 5.1\n"
        "b7e2f10 Read the broker URL from CLOUDAMQP_URL\n91c4d5a Verify Stripe webhooks on the raw body",
    )
    s.bash(
        "docker run --rm ledgerline:ci python -c 'import weasyprint'",
        "OSError: cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open shared object file: No such "
        "file or directory. Additionally, ctypes.util.find_library() did not manage to locate a library called "
        "'libpango-1.0-0'",
        error=True,
    )


def l08_weasyprint_ruff(s: Session) -> None:
    s.user(
        "The CI run on Friday failed on the credit note PDF test, libpango missing. Marta wrote the PDF rendering "
        "last week and it works on her Mac, so I bet it's the slim image."
    )
    s.read("Dockerfile", DOCKERFILE)
    s.say(
        "Yes: WeasyPrint loads Pango through cffi at import time, and python:3.12-slim ships without it. Her "
        "Mac has it from Homebrew. The image needs the Pango runtime libraries."
    )
    s.edit(
        "Dockerfile",
        "WORKDIR /app\n",
        "WORKDIR /app\nRUN apt-get update \\\n    && apt-get install -y --no-install-recommends libpango-1.0-0 "
        "libpangoft2-1.0-0 \\\n    && rm -rf /var/lib/apt/lists/*\n",
    )
    s.bash(
        "docker build -t ledgerline:ci . && docker run --rm ledgerline:ci pytest billing/tests/test_pdf.py -q",
        "[+] Building 48.2s (12/12) FINISHED\n...\n...   [100%]\n3 passed in 3.40s",
    )
    s.user(
        "Good. Second thing: formatting. We're dropping black and using ruff format from now on, same line "
        "length 100. Ruff is already our linter, so it's one tool less."
    )
    s.edit(
        "pyproject.toml",
        'black = "^24.4"\nruff = "^0.4.8"',
        'ruff = "^0.4.8"',
    )
    s.edit(
        "pyproject.toml",
        "[tool.black]\nline-length = 100\n",
        '[tool.ruff]\nline-length = 100\n\n[tool.ruff.format]\nquote-style = "double"\n',
    )
    s.bash(
        "poetry lock --no-update && poetry install && poetry run ruff format . && poetry run ruff check .",
        "Resolving dependencies...\nWriting lock file\nInstalling dependencies from lock file\n\nPackage "
        "operations: 0 installs, 0 updates, 1 removal\n\n  - Removing black (24.4.2)\n"
        "37 files reformatted, 112 files left unchanged\nAll checks passed!",
    )
    s.user(
        "Next up for ledgerline: partial refunds through Stripe, then dunning emails for overdue invoices. "
        "Refunds first. Let's stop here."
    )
    s.say("Next: partial refunds via Stripe, then dunning emails.")


REFUNDS = '''\
"""Refunds: part or all of a paid invoice goes back to the customer as a credit note."""

import stripe
from django.db import transaction

from billing.models import CreditNote, Invoice
from billing.numbers import next_credit_note_number


def refund_invoice(invoice: Invoice, amount_cents: int, reason: str) -> CreditNote:
    if invoice.status != Invoice.Status.PAID:
        raise ValueError("only paid invoices can be refunded")
    with transaction.atomic():
        note = CreditNote.objects.create(
            number=next_credit_note_number(),
            invoice=invoice,
            amount_cents=amount_cents,
            currency=invoice.currency,
            reason=reason,
        )
        note.full_clean()
        stripe.Refund.create(
            payment_intent=invoice.stripe_payment_intent,
            amount=amount_cents,
            idempotency_key=f"refund-{note.number}",
        )
    return note
'''


def l09_refunds(s: Session) -> None:
    s.user(
        "Refunds, as planned on Monday. Support needs to refund part of a paid invoice: it should create a "
        "credit note for the refunded amount and call Stripe. Let's go."
    )
    s.write("billing/refunds.py", REFUNDS)
    s.edit(
        "billing/admin.py",
        "    actions = [mark_void]",
        "    actions = [mark_void, refund_partially]",
    )
    s.bash(
        "poetry run pytest billing/tests/test_refunds.py -q",
        "..F                                                                      [100%]\n"
        "FAILED billing/tests/test_refunds.py::test_admin_partial_refund - stripe._error.InvalidRequestError: "
        "Request req_Xy7aQp3Lr2: Invalid integer: 12.5\n1 failed, 2 passed in 1.88s",
        error=True,
    )
    s.say(
        "Stripe wants an integer amount in cents. I'll convert in the service: "
        "`amount_cents = int(Decimal(amount) * 100)` so callers can pass euros."
    )
    s.user(
        "No — refund_invoice takes amount_cents already, like everything else here. The bug is the admin "
        "action: it passes the form's amount field (euros) instead of amount_cents. Fix it there."
    )
    s.edit(
        "billing/admin.py",
        'refund_invoice(invoice, form.cleaned_data["amount"], form.cleaned_data["reason"])',
        'refund_invoice(invoice, form.cleaned_data["amount_cents"], form.cleaned_data["reason"])',
    )
    s.bash("poetry run pytest billing/tests/test_refunds.py -q", "...   [100%]\n3 passed in 1.71s")
    s.user(
        "Refunds can also be made straight from the Stripe dashboard. Handle charge.refunded in the webhook "
        "so those show up as credit notes too."
    )
    s.edit(
        "billing/webhooks.py",
        '    if event["type"] == "checkout.session.completed":',
        '    if event["type"] == "charge.refunded":\n        record_dashboard_refund(event["data"]["object"])\n'
        '    elif event["type"] == "checkout.session.completed":',
    )
    s.bash("poetry run pytest billing -q", "68 passed in 8.13s")
    s.user(
        "Good. Left for later: dunning emails (reminders 3, 7 and 14 days after the due date). And the Heroku "
        "apps are still running — kill them on Monday."
    )
    s.say("Open: dunning reminders at 3/7/14 days past due; shut down the Heroku apps on Monday.")


SESSIONS = [
    Spec("L01", LEDGERLINE, "2026-01-05T09:12:00Z", "main", "Getting to know ledgerline", l01_orientation),
    Spec(
        "L02", LEDGERLINE, "2026-01-08T08:47:00Z", "feat/credit-notes", "Credit note model", l02_credit_notes
    ),
    Spec(
        "L03",
        LEDGERLINE,
        "2026-01-13T10:15:00Z",
        "feat/stripe-webhooks",
        "Stripe Checkout webhook",
        l03_stripe,
    ),
    Spec("L04", LEDGERLINE, "2026-01-16T09:05:00Z", "main", "Staging emails: Celery broker URL", l04_broker),
    Spec(
        "L05", LEDGERLINE, "2026-01-21T09:30:00Z", "main", "Email retries, Django 5.1", l05_retries_and_django
    ),
    Spec("L06", LEDGERLINE, "2026-01-22T10:00:00Z", "chore/fly", "Move from Heroku to Fly.io", l06_fly),
    Spec("L07", LEDGERLINE, "2026-01-30T07:58:00Z", "main", "Nightly test run", l07_ci_output),
    Spec(
        "L08",
        LEDGERLINE,
        "2026-02-02T09:20:00Z",
        "main",
        "WeasyPrint in Docker, ruff format",
        l08_weasyprint_ruff,
    ),
    Spec("L09", LEDGERLINE, "2026-02-06T09:10:00Z", "feat/refunds", "Partial refunds", l09_refunds),
]
