# memqa: `make demo` trains a reader on bAbI task 1 and asks it a question; `make test` runs the tests.
# Both install everything into .venv first. TORCH picks the torch build to install before the
# project (default: the CPU build 2.13.0; any torch>=2.4 works, e.g. make TORCH=torch).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.memqa-installed

.PHONY: install demo test data bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# bAbI is read from $MEMQA_BABI_DIR when set; otherwise it is downloaded once into data/.
data: install
	@if [ -z "$$MEMQA_BABI_DIR" ]; then $(BIN)/memqa download; fi

demo: data
	$(BIN)/memqa train --reader memn2n --task 1 --data en --out runs/demo-task1
	$(BIN)/memqa ask runs/demo-task1 --text "Mary moved to the bathroom. John went to the hallway. Mary travelled to the office." --question "Where is Mary?"

test: install
	$(BIN)/python -m pytest -q

bench: data
	$(BIN)/python benchmarks/train_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache
