# The two commands of the README: `make run` and `make test`. Python 3.12+ and make are enough.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha256sum requirements.lock | cut -c1-12)
HOST   ?= 127.0.0.1
PORT   ?= 8000
DEV_ENV := DEBUG=true SITE_URL=http://$(HOST):$(PORT)

.PHONY: install run test lint audit format bench load chaos clean vnu backup restore

$(STAMP): requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "credportal needs Python 3.12 or newer (found " + sys.version.split()[0] + ").")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(DEV_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEV_ENV) $(BIN)/python manage.py seed_demo
	@echo
	@echo "  credportal is starting at http://$(HOST):$(PORT)/   (Ctrl-C stops web, worker and beat)"
	@echo "  Mail sent by the app is written to var/mail/."
	@echo
	$(DEV_ENV) WEB_ADDR=$(HOST):$(PORT) PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho --no-colour start -f Procfile.dev

test: install vnu
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The Nu Html Checker for the browser suite (needs Java and npm; without them the browser
# suite skips the HTML check locally, and CI installs both).
VNU_JAR := devtools/vnu/node_modules/vnu-jar/build/dist/vnu.jar
vnu: $(VNU_JAR)
$(VNU_JAR): devtools/vnu/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix devtools/vnu --no-audit --no-fund --loglevel=error && touch $(VNU_JAR); \
	else echo "npm not found: the browser suite's HTML check will be skipped"; fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/bandit --quiet --severity-level low --recursive portal clients workflows reports notifications \
		--exclude '*/migrations/*'

# Known vulnerabilities in the locked versions (needs pypi.org's JSON API; says plainly when
# it cannot reach it).
audit: install
	$(BIN)/python devtools/audit_dependencies.py

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# A consistent backup of the database and the credential documents, one archive under
# var/backups/; restore refuses a database that is not empty unless FORCE=1 (docs/deploy.md,
# "Backup and restore"). DEBUG defaults to true only so the embedded default needs no secrets.
backup: install
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py backup

restore: install
	@test -n "$(BACKUP)" || { echo "usage: make restore BACKUP=var/backups/credportal-<time>.tar [FORCE=1]"; exit 2; }
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py restore "$(BACKUP)" $(if $(filter 1 yes true,$(FORCE)),--force)

# The benchmark, on a database of its own (its data is replaced): PostgreSQL by default, as
# the figures that count are PostgreSQL's. BENCH_DATABASE_URL=sqlite:///... works too.
SIZE ?= S
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/credportal_bench_$(SIZE)
BENCH_BROKER_URL ?= redis://127.0.0.1:6379/12
BENCH_ENV := DATABASE_URL=$(BENCH_DATABASE_URL) CELERY_BROKER_URL=$(BENCH_BROKER_URL) VAR_DIR=$(CURDIR)/var DEBUG=false ALLOWED_HOSTS=testserver,127.0.0.1,localhost SECRET_KEY=bench-only-$(shell hostname)-not-a-production-secret-0123456789abcdef \
	SECURE_SSL_REDIRECT=false EMAIL_URL=smtp://127.0.0.1:25
bench: install
	$(BIN)/python devtools/ensure_database.py "$(BENCH_DATABASE_URL)"
	$(BENCH_ENV) $(BIN)/python manage.py migrate --noinput -v0
	$(BENCH_ENV) $(BIN)/python manage.py collectstatic --noinput -v0
	$(BENCH_ENV) $(BIN)/python manage.py seed_scale --size $(SIZE) --reuse
	$(BENCH_ENV) $(BIN)/python manage.py bench --size $(SIZE) $(BENCH_ARGS)

# 60 seconds of 30 simulated people against gunicorn (run `make bench` first for the data).
load: install
	$(BENCH_ENV) $(BIN)/python manage.py load_sessions
	$(BENCH_ENV) $(BIN)/gunicorn portal.wsgi --bind 127.0.0.1:8100 --workers 3 --daemon \
		--pid var/bench/gunicorn.pid --forwarded-allow-ips=127.0.0.1
	sleep 2
	$(BENCH_ENV) $(BIN)/locust -f devtools/locustfile.py --headless --host http://127.0.0.1:8100 \
		-u 30 -r 10 -t 60s --only-summary --csv var/bench/load; status=$$?; \
		kill $$(cat var/bench/gunicorn.pid); exit $$status

# Faults at scale: thousands of due reminders and invitations through real workers that are
# SIGKILLed (some while sending an invitation), a broker killed and restarted, an SMTP sink
# that refuses, answers 421 and hangs, and PostgreSQL stopped mid-delivery; prints throughput
# and one summary line (see docs/reliability.md). About 2 minutes. Database: with a PostgreSQL
# DATABASE_URL, a private server started from the installed binaries (CHAOS_ARGS="--postgres
# shared" for DATABASE_URL's, database CHAOS_DATABASE_NAME, default credportal_chaos); else
# SQLite.
chaos: install
	$(BIN)/python devtools/chaos.py $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
