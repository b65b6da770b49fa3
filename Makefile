# The two commands of the README: `make run` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Exported here, not shipped: the weights it is made from state no licence (assets/efficientnet-lite0/NOTICE.md).
EFFNET_ONNX := assets/efficientnet-lite0/efficientnet-lite0.onnx
OUT ?= runs/default

.PHONY: venv run test lint format bench clean

venv: $(STAMP) $(EFFNET_ONNX)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[onnxruntime,onnx-reference,pytorch,litert,notebook,docker,dev]'
	touch $(STAMP)

$(EFFNET_ONNX): $(STAMP) tools/export_efficientnet_lite0_onnx.py
	$(BIN)/python tools/export_efficientnet_lite0_onnx.py --out $@

run: venv
	$(BIN)/dlspec-ray run --model mnist-8@1.0.0 --dataset mnist-test@1.0.0 \
		--software onnxruntime-cpu@1.0.0 --hardware x86-64-cpu@1.0.0 \
		--reference mnist-8-onnxruntime-reference@1.0.0 --out $(OUT) --overwrite

test: venv
	$(BIN)/ruff check dlspec_ray tests benchmarks tools
	$(BIN)/ruff format --check dlspec_ray tests benchmarks tools
	$(BIN)/dlspec-ray validate manifests/
	# The docker environment's tests need a Docker engine: a private one, stopped by PID after.
	scripts/with-dockerd.sh $(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check dlspec_ray tests benchmarks tools

format:
	$(BIN)/ruff format dlspec_ray tests benchmarks tools
	$(BIN)/ruff check --fix dlspec_ray tests benchmarks tools

bench: venv
	$(BIN)/python benchmarks/bench_mnist.py
	scripts/with-dockerd.sh $(BIN)/python benchmarks/bench_environments.py
	$(BIN)/python benchmarks/bench_sweep.py
	$(BIN)/python benchmarks/bench_cluster.py --submit

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
