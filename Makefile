# The two commands: `make demo` (main job on the embedded engine) and `make test`.
# Both bootstrap uv when it is missing, then install the locked environment.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: demo test bootstrap lint bench
bootstrap:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet --compile-bytecode
	@# the project's own modules too (an editable install: --compile-bytecode skips them), for
	@# interpreters that do not write bytecode caches themselves (PYTHONDONTWRITEBYTECODE=1)
	@$(UV) run --frozen --quiet python -m compileall -q -j 0 cli assets resources checks api \
		creditlake definitions.py bench >/dev/null

demo: bootstrap
	$(UV) run creditlake demo

test: bootstrap
	$(UV) run ruff check .
	$(UV) run lint-imports
	$(UV) run pytest

lint: bootstrap
	$(UV) run ruff check .
	$(UV) run lint-imports

bench: bootstrap
	$(UV) run python bench/ingest_bench.py
