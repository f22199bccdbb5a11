# The DEX: local stack, tests and deployment. See scripts/ for what each target does.
#   make run                          the whole DEX on http://127.0.0.1:9000
#   make test ARGS="-E test(stats)"   the suite against a private local stack
#   make bench ARGS=--quick           the benchmarks, short (ARGS go to dex-bench; --help)
#   make load ARGS=--quick            the load test, short (LOAD_SECS=300 make load; ARGS go to dex-load)
#   make tools                        install what the scripts need (idempotent)
#   make invoke FN=stats              invoke one function with its sample event (make run first)
#   make routes                       rewrite what is generated from routes.toml

ARGS ?=
# Passed through the environment, so that no shell re-parses it (parentheses, quotes).
export DEX_TEST_ARGS := $(ARGS)

.PHONY: run test lint fmt build release validate bench load deploy clean-local tools invoke routes

run:
	scripts/run-local.sh

test:
	scripts/test.sh

lint:
	scripts/lint.sh

fmt:
	cargo fmt --all

build:
	cargo build --workspace --bins

# Lambda zips for arm64 (AWS deployments go through `make deploy`, whose `sam build`
# follows template.yaml).
release:
	scripts/lib.sh ensure_arm64_target
	scripts/lib.sh with_python_tools cargo lambda build --release --arm64 --output-format zip

validate:
	scripts/validate-template.sh

bench:
	scripts/bench.sh $(ARGS)

# Not part of `make test`: minutes of the ecosystem's mix on a private stack, exact totals checked.
load:
	scripts/load.sh $(ARGS)

# The whole deployment (scripts/lib.sh deploy): sam build, then sam deploy (--guided the first
# time); keys and the first admin are made on first use, no step after it. SAM's telemetry is
# off in every script (scripts/lib.sh).
deploy:
	scripts/lib.sh deploy

FN ?=
invoke:
	scripts/invoke.sh "$(FN)"

# The router, the template's functions and the default route's table, from routes.toml.
routes:
	DEX_WRITE_ROUTES=1 cargo test -q -p dex-tests --test routes the_generated_files_are_fresh

clean-local:
	rm -rf .dex

tools:
	scripts/lib.sh ensure_tools
