# The README's commands. Each target installs what it needs (as root on Debian), then runs.
#   make run    - build the lab, scan it for real, show results, tear the lab down
#   make test   - lint, type check, then the whole test suite (unit, bpf, net; bpf and net
#                 need root), a 30 s fuzz smoke and the unit tests on the sanitizer build
#   make fuzz   - every fuzzer for FUZZ_SECONDS each (fuzz/run.py; crashes in build/fuzz/crashes)
#   make test-sanitize - the unit tests on an ASan + UBSan (-Werror) build of the extension
#   make bench  - side-by-side benchmarks into bench/results/

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
APT_PACKAGES := clang llvm gcc make pkg-config libbpf-dev libxdp-dev xdp-tools bpftool \
                iproute2 nftables ethtool python3-dev python3-venv libroaring-dev \
                netbase jq libxml2-utils tshark masscan zmap libpcap0.8 libclang-rt-14-dev
# netbase: /etc/services for -oG's service names; jq, xmllint (libxml2-utils), tshark: the
# readers the output tests feed pyscan's files to; masscan, zmap: the truth their formats and
# command lines are checked against (and the bench's contenders); libpcap: its classic-BPF
# interpreter runs af-packet's socket filter in tests; libclang-rt: libFuzzer (make fuzz);
# libroaring-dev: the exact dedup's bitmaps (CRoaring, linked into the extension).
BENCH_APT   := masscan zmap

.PHONY: run test bench build system-deps lint clean fuzz test-sanitize

FUZZ_SECONDS ?= 30
FUZZ_SMOKE_SECONDS ?= 30
SANITIZE_DIR := build/sanitize

system-deps:
	@missing=$$(for p in $(APT_PACKAGES) $(EXTRA_APT); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(VENV)/.deps: pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench,cluster]'
	touch $@

build: system-deps $(VENV)/.deps
	$(PY) setup.py -q build_ext --inplace

run: build
	$(PY) -m pyscan.demo

test: build
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -q -p no:cacheprovider tests
	$(PY) -m fuzz.run --budget $(FUZZ_SMOKE_SECONDS)
	$(MAKE) --no-print-directory test-sanitize

fuzz: build
	$(PY) -m fuzz.run --seconds $(FUZZ_SECONDS)

# gcc's ASan runtime must be loaded before Python itself; leaks are not checked (CPython
# keeps its objects at exit). The build goes to its own directory and is picked up through
# PYSCAN_NATIVE, so the normal in-place build is left alone.
test-sanitize: build
	PYSCAN_SANITIZE=1 $(PY) setup.py -q build_ext --build-lib $(SANITIZE_DIR) \
	    --build-temp $(SANITIZE_DIR)/tmp
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0 \
	    UBSAN_OPTIONS=print_stacktrace=1 \
	    PYSCAN_NATIVE="$$(ls $(CURDIR)/$(SANITIZE_DIR)/pyscan/_native*.so)" \
	    $(PY) -m pytest -q -p no:cacheprovider tests/unit

bench: EXTRA_APT = $(BENCH_APT)
bench: build
	$(PY) -m bench.run

lint: build
	$(PY) -m ruff check .
	$(PY) -m mypy

clean:
	rm -rf build $(VENV) pyscan/_native*.so pyscan/bpf/*.bpf.o
