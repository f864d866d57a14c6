# glua-book: `make book` builds the executed book, `make test` runs every test.
# Both create .venv and install from pyproject.toml with the exact pins of constraints.txt.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

# The CPU profile and a cache folder inside the repo for every kernel started below
# (book build, nbval, papermill inherit the environment). Override on the command line.
export GLUA_PROFILE ?= demo
export GLUA_CACHE   ?= $(CURDIR)/.cache/glua
export MPLBACKEND   ?= Agg
export PYDEVD_DISABLE_FILE_VALIDATION := 1

# Widget JavaScript and MathJax (one file, SVG output, no fonts to fetch), served from the book
# itself so widgets and equations render offline.
WIDGETS_DIR  := book/_widgets_js
HTML_MANAGER := @jupyter-widgets/html-manager@1.0.15
REQUIREJS    := requirejs@2.3.8
MATHJAX      := mathjax@3.2.2
WIDGETS_JS   := $(WIDGETS_DIR)/static/embed-amd.js $(WIDGETS_DIR)/static/require.js \
                $(WIDGETS_DIR)/static/mathjax/tex-svg.js
# embed-amd.js asks for its icon fonts relative to each page (book/*.html), under
# @jupyter-widgets/html-manager/dist/ or under @jupyter-widgets/ depending on which of its AMD
# modules loads first (both seen in headless Chromium): html_extra_path copies extra/ to the root
# of the site, so they land in both places it looks.
FONTS_DIR    := $(WIDGETS_DIR).new/extra/book/@jupyter-widgets
FONTS_DIRS   := $(FONTS_DIR) $(FONTS_DIR)/html-manager/dist

PYTEST_WORKERS ?= 2

.PHONY: help setup widgets-js book html test unit clean clean-cache ablation style-quality book-runs

help:
	@echo "make book   set up .venv, train the runs chapters 2 and 3 teach, install the committed ones the others read and execute every chapter (profile $$GLUA_PROFILE), BOOK_WORKERS=2 at a time; build _build/html"
	@echo "make test   set up .venv, build the book, run unit tests + nbval + papermill + browser check"
	@echo "make unit   unit tests only (fast)"
	@echo "make ablation   every method, both tasks and directions, the profile's seeds -> benchmarks/results/"
	@echo "make style-quality   what global alignment did, per class, task, direction and seed -> benchmarks/results/"
	@echo "make book-runs   retrain the demo segmenters committed in book/runs (after a change to the training code)"
	@echo "make clean  remove _build (keeps .venv and the cache)"

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[book,test]"
	touch $@

setup: $(STAMP) $(WIDGETS_JS)

$(WIDGETS_JS): book/widgets-js.sha256
	@command -v npm >/dev/null || { echo "error: npm is needed once to fetch the widget JavaScript and MathJax ($(HTML_MANAGER), $(REQUIREJS), $(MATHJAX)); install Node.js"; exit 1; }
	rm -rf $(WIDGETS_DIR).tmp && mkdir -p $(WIDGETS_DIR).tmp
	cd $(WIDGETS_DIR).tmp && npm pack --silent $(HTML_MANAGER) $(REQUIREJS) $(MATHJAX) >/dev/null
	cd $(WIDGETS_DIR).tmp && for t in *.tgz; do mkdir -p "$${t%.tgz}" && tar -xzf "$$t" -C "$${t%.tgz}"; done
	mkdir -p $(WIDGETS_DIR).new/static/mathjax $(FONTS_DIRS)
	cp $(WIDGETS_DIR).tmp/jupyter-widgets-html-manager-*/package/dist/embed-amd.js $(WIDGETS_DIR).new/static/
	for d in $(FONTS_DIRS); do cp $(WIDGETS_DIR).tmp/jupyter-widgets-html-manager-*/package/dist/*.{woff2,woff,ttf,eot,svg} $$d/; done
	cp $(WIDGETS_DIR).tmp/requirejs-*/package/require.js $(WIDGETS_DIR).new/static/
	cp $(WIDGETS_DIR).tmp/mathjax-*/package/es5/tex-svg.js $(WIDGETS_DIR).new/static/mathjax/
	cd $(WIDGETS_DIR).new/static && sha256sum --quiet -c ../../widgets-js.sha256
	rm -rf $(WIDGETS_DIR) $(WIDGETS_DIR).tmp && mv $(WIDGETS_DIR).new $(WIDGETS_DIR)
	touch $(WIDGETS_JS)

widgets-js: $(WIDGETS_JS)

# Executes every chapter (a raising cell fails the build) and treats Sphinx warnings as errors.
# First the machine's speed and what it means here (benchmarks/machine_speed.py). Then
# book/_ext/execute_book.py keeps BOOK_WORKERS processes busy with one torch thread each: it
# trains the runs the chapters read into the cache (those a chapter teaches, chapter 2's style
# run and chapter 3's `local`, bit for bit as a 1-thread chapter would; the segmenters committed
# in book/runs are installed, see `book-runs`) and executes each chapter, into the Jupyter cache
# of _config.yml, as soon as the runs it reads are there: chapters 1, 3 and 4 while the style
# run trains. jupyter-book then takes the executed chapters from that cache. The log goes to
# $(BOOK_LOG) as well (benchmarks/book_times.py reads it).
BOOK_WORKERS ?= 2
BOOK_LOG     := _build/book-build.log
html: setup
	@mkdir -p _build; start=$$(date +%s); \
	$(if $(SPEED_SHOWN),,$(PY) benchmarks/machine_speed.py;) \
	$(PY) book/_ext/execute_book.py --workers $(BOOK_WORKERS) --threads 1 2>&1 | tee $(BOOK_LOG); \
	$(VENV)/bin/jupyter-book build . --warningiserror --nitpick --keep-going 2>&1 | tee -a $(BOOK_LOG); \
	echo "make book: $$(( $$(date +%s) - start )) s" | tee -a $(BOOK_LOG)
	@echo "book: $(CURDIR)/_build/html/index.html"

book: html

unit: setup
	$(PY) -m pytest -q tests -m "not browser and not slow"

# Every test, on two cores. The two long jobs need nothing from each other, so they run side by
# side with one torch thread each (two 1-thread jobs get more out of two cores than two 2-thread
# jobs one after the other): the book build, which fills the cache the chapter checks reuse, and
# a pytest run of everything that does not need the built book (chapter 4 under papermill from
# an empty cache, and the unit tests; its output goes to $(SOLO_LOG) and
# is printed when it ends), run `nice`: the book build's style run is the critical path, and the
# tests take the CPU time it leaves. Then, on both cores, what needs the built book and its cache:
# `--nbval-lax` over every chapter, papermill on the other chapters, the browser check. Any
# failure fails the target; a failure of the book build or of these checks also stops the side
# job. Each pytest run lists its slowest tests at the end, to see where CI time goes.
SOLO_LOG   := _build/test-solo.log
BOOK_TESTS := tests/test_papermill.py tests/test_browser.py
test: setup
	@mkdir -p _build; start=$$(date +%s); \
	$(PY) benchmarks/machine_speed.py --save _build/speed.json; \
	set -m; \
	OMP_NUM_THREADS=1 nice -n 10 $(PY) -m pytest --durations=10 \
		$(addprefix --ignore=,$(BOOK_TESTS)) tests > $(SOLO_LOG) 2>&1 & solo=$$!; \
	trap 'kill -- -'$$solo' 2>/dev/null || true' EXIT INT TERM; \
	echo "tests that need no built book: running beside the book build ($(SOLO_LOG))"; \
	OMP_NUM_THREADS=1 $(MAKE) --no-print-directory html SPEED_SHOWN=1; \
	OMP_NUM_THREADS=1 $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=10 \
		--nbval-lax --nbval-current-env $(BOOK_TESTS) book; \
	rc=0; wait $$solo || rc=$$?; trap - EXIT INT TERM; \
	echo "--- $(SOLO_LOG) ---"; cat $(SOLO_LOG); \
	$(PY) benchmarks/book_times.py --speed _build/speed.json --book-log $(BOOK_LOG) \
		--make-test-s $$(( $$(date +%s) - start )) --out _build/book-times.json; \
	exit $$rc

clean:
	rm -rf _build

clean-cache:
	rm -rf $(GLUA_CACHE)

# The segmenters committed with the book (book/runs): trained in an empty cache, two at a time,
# stored small (glua_lib.committed), and checked by installing each into another empty cache.
book-runs: setup
	$(PY) -m glua_lib commit-book-runs --workers $(BOOK_WORKERS)

# The ablation: every method, both tasks and directions, the profile's seeds (cached runs are
# reused); writes the results file chapter 4 shows.
ablation: setup
	$(PY) benchmarks/ablation.py --profile $(GLUA_PROFILE) \
		--out benchmarks/results/ablation-$(GLUA_PROFILE).json

# Global alignment measured (appearance gap before/after and its floor, style spread, edges, the
# judge's Dice) for every style run of the profile's seeds (the ablation's, from the cache, or
# trained).
style-quality: setup
	$(PY) benchmarks/style_quality.py --profile $(GLUA_PROFILE) \
		--out benchmarks/results/style-quality-$(GLUA_PROFILE).json
