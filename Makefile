# Vigil: `make demo` runs the whole thing, `make test` runs the tests (README.md).
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)
SWIFT ?= swift
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all setup build release test resilience demo clean

all: build

setup:
	@bash scripts/setup

build: setup
	$(SWIFT) build

release: setup
	$(SWIFT) build -c release

# Builds everything (the integration tests run the real vigild binary), then runs every test.
test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Failure scenarios against the real vigild (broker restart, SIGKILL, cloud outage, full disk,
# malformed flood, slow actions); each prints its figures as `[resilience] ...` lines. Part of `make test` too.
resilience: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter ResilienceTests

demo: release
	@bash scripts/demo

clean:
	rm -rf .build
