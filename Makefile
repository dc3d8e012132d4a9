# Every target creates .venv when it is missing, so a fresh clone needs only python3 and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo sim lint test bench bench-quick bench-large clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,soap]'
	touch $(STAMP)

# A lab set-up: no CPE authentication, one shared connection-request credential in var/.
var/cr.pw:
	mkdir -p var
	umask 077 && $(PY) -c 'import secrets; print(secrets.token_urlsafe(18))' > var/cr.pw

# An operator token for the CLI against 'make run' (export ACS_TOKEN_FILE=var/token).
var/token: $(STAMP)
	mkdir -p var
	umask 077 && $(BIN)/acs-security tokens create --db sqlite:///$(CURDIR)/var/acs.db --name make-run-$$(date +%s) --role operator > var/token.tmp && mv var/token.tmp var/token

# No per-address connection cap: the simulated phones of 'make sim' all come from 127.0.0.1.
run: $(STAMP) var/cr.pw var/token
	@echo "web console: http://127.0.0.1:7557/ (sign in with the operator token in var/token)"
	$(BIN)/acs-security serve --db sqlite:///$(CURDIR)/var/acs.db --no-cpe-auth \
		--public-url http://acs.example.net:7547/ --cr-username acs --cr-password-file var/cr.pw \
		--max-connections-per-ip 0

# The main job on the embedded default: server on SQLite in a temporary folder, 500
# simulated phones, the example hardening policy pushed, progress and report, exit 0.
demo: $(STAMP)
	$(BIN)/acs-security demo --phones 500

# Simulated phones against the server of 'make run' (another terminal).
sim: $(STAMP) var/cr.pw
	$(BIN)/acs-security simulate --acs http://acs.example.net:7547/ --resolve acs.example.net:127.0.0.1 \
		--phones 1000 --inform-interval 60 --cr-password-mode shared --cr-username acs --cr-password-file var/cr.pw

# ruff and mypy on the code, tests and benchmarks (mypy's settings in pyproject.toml, the
# same for all three).
lint: $(STAMP)
	$(BIN)/ruff check acs_security tests bench
	$(BIN)/mypy acs_security tests bench

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

# Benchmarks (docs/performance.md): every figure next to its baseline, the table printed and
# bench/results/latest.json written; about 10 minutes, bench-quick about 2-3. Never part of
# 'make test'. PostgreSQL figures need ACS_BENCH_POSTGRES_URL (or ACS_TEST_POSTGRES_URL).
bench: $(STAMP)
	$(BIN)/python -c 'import psutil' 2>/dev/null || $(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -c 'import psutil' 2>/dev/null || $(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench.run --quick

# 100,000 phones (PHONES=N to change) registered and pushed on one node, SQLite then
# PostgreSQL (ACS_BENCH_POSTGRES_URL); about half an hour on 2 cores. Not part of 'make bench'.
PHONES ?= 100000
bench-large: $(STAMP)
	$(BIN)/python -c 'import psutil' 2>/dev/null || $(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench.large --phones $(PHONES)

clean:
	rm -rf $(VENV) var .pytest_cache
