# Vigil: `make demo` runs the whole thing, `make test` runs the tests (README.md).
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)
SWIFT ?= swift
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all setup build release test resilience demo bench bench-figures clean install install-bin install-files deb check-deb lint-deb check-unit

all: build

setup:
	@bash scripts/setup

build: setup
	$(SWIFT) build

# The same flags as the package (INSTALL_BUILD below): other flags recompile every module
# (measured: `swift build -c release` after a static build took 8 min 12 s), so `make deb`
# after `make release` only links.
release: setup
	@bash packaging/build-deps
	$(SWIFT) build $(INSTALL_BUILD)

# Builds everything (the integration tests run the real vigild binary), then runs every test.
test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-swift-testing

# Failure scenarios against the real vigild (broker restart, SIGKILL, cloud outage, full disk,
# malformed flood, slow actions); each prints its figures as `[resilience] ...` lines. Part of `make test` too.
resilience: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-swift-testing --filter ResilienceTests

demo: release
	@bash scripts/demo

# vigild against a straightforward Python service on the same models and load (docs/benchmarks.md).
bench: release
	@bash scripts/bench $(BENCH_ARGS)

# The per-stage figures the test suite prints but `make test` skips (scripts/bench-figures).
bench-figures: setup
	@sh scripts/bench-figures

clean:
	rm -rf .build

# --- Install and package (docs/service.md) ---------------------------------------------
# `make install` (PREFIX=/usr/local, DESTDIR=): one multi-call binary installed as vigild with
# vigilctl a symlink to it (packaging/link-vigil), models in $(PREFIX)/share/vigil/models, config
# in /etc/vigil, unit, sysusers.d and tmpfiles.d under $(PREFIX)/lib, man pages. Paths inside the
# installed config and unit follow PREFIX. The Swift runtime is linked statically with a trimmed
# ICU data set, and the binary looks in /usr/lib/vigil first (a bundled ONNX Runtime).
SYSCONFDIR ?= /etc
INSTALL_BUILD = -c release --static-swift-stdlib -Xlinker -rpath -Xlinker /usr/lib/vigil
BIN_DIR ?= $(shell $(SWIFT) build $(INSTALL_BUILD) --show-bin-path 2>/dev/null)

install-bin: setup
	@bash packaging/build-deps
	$(SWIFT) build $(INSTALL_BUILD) --product vigild
	$(SWIFT) build $(INSTALL_BUILD) --product vigilctl
	BIN_DIR="$(BIN_DIR)" STATIC=1 bash packaging/link-vigil >/dev/null

install: install-bin
	$(MAKE) install-files

# Installs what is already built in BIN_DIR (tests use the debug build: BIN_DIR=.build/debug MULTICALL=).
# MULTICALL= (empty) installs SwiftPM's two binaries instead of the multi-call one.
MULTICALL ?= $(BIN_DIR)/vigil-multicall
install-files:
	BIN_DIR="$(BIN_DIR)" MULTICALL="$(MULTICALL)" DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" SYSCONFDIR="$(SYSCONFDIR)" bash packaging/install-files

# The .deb (dpkg-deb, Depends from dpkg-shlibdeps): /usr layout, creates the vigil user, enables
# vigild.service. amd64 or arm64, whichever this machine is (docs/service.md).
deb: install-bin
	BIN_DIR="$(BIN_DIR)" MULTICALL="$(MULTICALL)" bash packaging/build-deb .build

# Installs the .deb on this machine (root), checks user, unit, conffile, then purges it.
check-deb: deb
	DEB="$$(ls -t .build/vigil_*.deb | head -1)" bash scripts/check-deb

# lintian on the .deb (installs lintian when missing; not part of `make test`).
lint-deb: deb
	bash packaging/lint-deb "$$(ls -t .build/vigil_*.deb | head -1)"

# systemd-analyze verify + security --offline=true for systemd/vigild.service.
check-unit:
	@bash scripts/check-unit
