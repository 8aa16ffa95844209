# The README's commands. Each target installs what it needs (as root on Debian), then runs.
#   make run    - build the lab, scan it for real, show results, tear the lab down
#   make test   - lint, type check, then the whole test suite (unit, bpf, net; bpf and net
#                 need root)
#   make bench  - side-by-side benchmarks into bench/results/

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
APT_PACKAGES := clang llvm gcc make pkg-config libbpf-dev libxdp-dev xdp-tools bpftool \
                iproute2 nftables ethtool python3-dev python3-venv libroaring-dev \
                netbase jq libxml2-utils tshark masscan zmap
# netbase: /etc/services for -oG's service names; jq, xmllint (libxml2-utils), tshark: the
# readers the output tests feed pyscan's files to; masscan, zmap: the truth their formats and
# command lines are checked against (and the bench's contenders); libroaring-dev: the exact
# dedup's bitmaps (CRoaring, linked into the extension).
BENCH_APT   := masscan zmap

.PHONY: run test bench build system-deps lint clean

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
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $@

build: system-deps $(VENV)/.deps
	$(PY) setup.py -q build_ext --inplace

run: build
	$(PY) -m pyscan.demo

test: build
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -q -p no:cacheprovider tests

bench: EXTRA_APT = $(BENCH_APT)
bench: build
	$(PY) -m bench.run

lint: build
	$(PY) -m ruff check .
	$(PY) -m mypy

clean:
	rm -rf build $(VENV) pyscan/_native*.so pyscan/bpf/*.bpf.o
