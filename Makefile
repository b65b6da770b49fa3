# The two commands of the README: `make run` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Exported here, not shipped: the weights it is made from state no licence (assets/efficientnet-lite0/NOTICE.md).
EFFNET_ONNX := assets/efficientnet-lite0/efficientnet-lite0.onnx
OUT ?= runs/default
# Wheels the tests install offline (scripts/test-prep.py fills it; kept across runs).
WHEELHOUSE ?= $(HOME)/.cache/dlspec-ray/wheelhouse
# dlspec-ray's own dependencies, for the test that installs the wheel into a fresh venv.
PACKAGE_WHEELS ?= $(HOME)/.cache/dlspec-ray/package-wheels
# `make run` needs the default task's framework only; `make test` installs every extra.
RUN_STAMP := $(VENV)/.installed-run

.PHONY: venv run test test-prep lint format bench bench-1m bench-driver soak fuzz clean

venv: $(STAMP) $(EFFNET_ONNX)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[onnxruntime,onnx-reference,pytorch,litert,notebook,docker,loadgen,dev]'
	touch $(STAMP)

$(EFFNET_ONNX): $(STAMP) tools/export_efficientnet_lite0_onnx.py
	$(BIN)/python tools/export_efficientnet_lite0_onnx.py --out $@

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -f $(STAMP) -a $(STAMP) -nt pyproject.toml || \
		$(BIN)/python -m pip install -q -e '.[onnxruntime]'
	touch $@

run: $(RUN_STAMP)
	$(BIN)/dlspec-ray run --model mnist-8@1.0.0 --dataset mnist-test@1.0.0 \
		--software onnxruntime-cpu@1.0.0 --hardware x86-64-cpu@1.0.0 \
		--reference mnist-8-onnxruntime-reference@1.0.0 --out $(OUT) --overwrite

# Outside the namespace, with the network: installs docker.io and debootstrap when missing,
# builds the framework images and fills the wheelhouse (scripts/test-prep.py); as root, also
# bubblewrap, for the process sandbox's test (which skips, saying so, without it).
test-prep: $(STAMP)
	DLSPEC_RAY_WHEELHOUSE=$(WHEELHOUSE) DLSPEC_RAY_PACKAGE_WHEELS=$(PACKAGE_WHEELS) \
		scripts/with-dockerd.sh $(BIN)/python scripts/test-prep.py
	command -v bwrap >/dev/null || [ "$$(id -u)" != 0 ] || { apt-get update -q >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends bubblewrap >/dev/null; }

test: venv test-prep
	$(BIN)/ruff check dlspec_ray tests benchmarks tools
	$(BIN)/ruff format --check dlspec_ray tests benchmarks tools
	$(BIN)/dlspec-ray validate manifests/
	# The suite runs in a private network namespace holding only loopback; inside it, a
	# private Docker engine for the docker environment's tests, stopped by PID after. No
	# package index can be reached there: pip uses the wheelhouse alone.
	DLSPEC_RAY_WHEELHOUSE=$(WHEELHOUSE) DLSPEC_RAY_PACKAGE_WHEELS=$(PACKAGE_WHEELS) PIP_NO_INDEX=1 \
		scripts/in-private-net.sh scripts/with-dockerd.sh $(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check dlspec_ray tests benchmarks tools

format:
	$(BIN)/ruff format dlspec_ray tests benchmarks tools
	$(BIN)/ruff check --fix dlspec_ray tests benchmarks tools

# Every benchmark, one after another, each printing its own ratios; one JSON of all their
# figures with the machine's details goes to benchmarks/results/ (benchmarks/bench_all.py).
bench: venv
	scripts/in-private-net.sh scripts/with-dockerd.sh $(BIN)/python benchmarks/bench_all.py

# Long: the CLI, a Ray Data script and a bare loop on 1M samples (tiled MNIST), each a whole
# process with its own Ray start (about 6 min for 3 runs on 2 cores).
bench-1m: venv
	scripts/in-private-net.sh $(BIN)/python benchmarks/bench_ray_data.py --tiles 100 --runs 3

# Long: mnist-8 on 10k, 100k and 1M samples; the driver's peak RSS and streaming throughput.
bench-driver: venv
	$(BIN)/python benchmarks/bench_driver_memory.py

# Long: 1M samples through a host actor crash, a driver SIGKILL, env gc and --resume (about
# 10 min on 2 cores), then the leak test with a sweep of 50 tiny tasks (about 2 min).
soak: venv
	$(BIN)/python benchmarks/soak_faults.py
	DLSPEC_RAY_SOAK_SWEEP_TASKS=50 $(BIN)/python -m pytest -q tests/sweeps/test_runner.py -k tiny

# Long: 100,000 examples per fuzz test of the manifest loader and validator (about 70 min).
fuzz: venv
	DLSPEC_RAY_FUZZ_EXAMPLES=100000 $(BIN)/python -m pytest -q tests/spec/test_fuzz.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
