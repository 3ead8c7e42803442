# The course's two commands (see README):
#   make book   set everything up, then build the website, executing every chapter (CPU, fast profile)
#   make test   set everything up, then run the whole test suite (unit tests, nbval, the book build)
# Both create a virtual environment in .venv from the pinned requirements.txt on first use.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.cmrlab-installed
JOBS   ?= 2

.PHONY: setup book test unit notebooks clean strip lab-student

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# The website: _build/html/index.html. CMRLAB_STATIC=1 is also set by book/_ext/cmrlab_book.py.
# (No MPLBACKEND here: notebook kernels must keep matplotlib's inline backend to show figures.)
book: $(STAMP)
	CMRLAB_STATIC=1 $(BIN)/jupyter-book build . --all -W --keep-going
	$(BIN)/python -c "from tests.site_checks import check_built_site as c; import sys; p=c('_build/html'); print(*p, sep='\n'); sys.exit(bool(p))"
	@echo "Website built: open _build/html/index.html"

# Everything: unit tests + nbval (lax) over every notebook in book/ and labs/ + the full book build
# (tests/test_book_build.py), spread over $(JOBS) processes (one notebook per process at a time;
# --dist loadscope keeps the cells of a notebook together). One math thread per process: $(JOBS)
# processes with several threads each would fight over the cores and run tiny torch ops slowly.
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
test: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -p no:cacheprovider -n $(JOBS) --dist loadscope --nbval-lax tests book labs

unit: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -p no:cacheprovider -n $(JOBS) tests -m "not book"

notebooks: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -p no:cacheprovider -n $(JOBS) --dist loadscope --nbval-lax book labs

# Remove outputs from notebooks, keeping only the outputs of `# NBVAL_CHECK_OUTPUT` cells.
strip: $(STAMP)
	$(BIN)/cmrlab-strip-outputs book labs

clean:
	rm -rf _build .pytest_cache
