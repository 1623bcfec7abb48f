# healer - thin wrapper over Meson. The README's two commands:
#   make run    build and start the server on embedded defaults
#   make test   build and run the whole suite (plain and ASan+UBSan builds)
# Both install missing Debian/npm packages first (scripts/install-deps.sh).

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
LISTEN     ?= 127.0.0.1:8080
MESON_TEST_ARGS ?= --print-errorlogs --num-processes 2

.PHONY: all deps build build-asan run test test-plain test-asan fuzz bench clean format

all: build

deps:
	@scripts/install-deps.sh

deps-build:
	@scripts/install-deps.sh --build-only

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized -Dwerror=true

$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) --buildtype=debug -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false

$(BUILD_FUZZ)/build.ninja:
	CC=clang meson setup $(BUILD_FUZZ) --buildtype=debug -Dwerror=true -Dfuzz=true \
		-Dfuzz_seconds=$(FUZZ_SECONDS_TEST) -Db_sanitize=address,undefined -Db_lundef=false

build: deps-build $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-asan: deps-build $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)

run: build
	@scripts/run-server.sh $(BUILD)/healer $(LISTEN)

# The whole suite runs twice, in a plain optimized build and in an ASan+UBSan
# build (each replays every fuzz corpus), then every libFuzzer target of
# tests/fuzz runs for FUZZ_SECONDS_TEST seconds (clang; 10 targets x 8 s, two
# at a time). The last line is "N passed, N failed" over all of them.
FUZZ_TARGETS ?= webhook sensor alerts rules classify config services kubeconfig watch tmpl
FUZZERS = $(FUZZ_TARGETS:%=tests/fuzz/fuzz_%)
FUZZ_SECONDS_TEST ?= 8
SANITIZER_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp

test: deps build build-asan $(BUILD_FUZZ)/build.ninja
	@rc=0; \
	meson test -C $(BUILD) $(MESON_TEST_ARGS) || rc=1; \
	$(SANITIZER_ENV) meson test -C $(BUILD_ASAN) $(MESON_TEST_ARGS) --timeout-multiplier 3 || rc=1; \
	ninja -C $(BUILD_FUZZ) $(FUZZERS) >/dev/null || rc=1; \
	$(SANITIZER_ENV) meson test -C $(BUILD_FUZZ) --no-rebuild --print-errorlogs --num-processes 2 \
		--suite fuzz || rc=1; \
	python3 scripts/test-summary.py $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) || rc=1; \
	exit $$rc

# A longer fuzzing session, each target in turn:
#   make fuzz FUZZ_SECONDS=600 [FUZZ_TARGETS=webhook]
# New inputs stay in a scratch directory; a crash's input is kept under
# $(BUILD_FUZZ)/fuzz-artifacts/ (add it to tests/fuzz/corpus/<target>/ as
# regress-<what> with the fix).
FUZZ_SECONDS ?= 60
fuzz: deps-build $(BUILD_FUZZ)/build.ninja
	ninja -C $(BUILD_FUZZ) $(FUZZERS)
	@rc=0; for t in $(FUZZ_TARGETS); do \
		$(SANITIZER_ENV) HEALER_BUILD_ROOT=$(BUILD_FUZZ) python3 tests/fuzz/run_fuzz.py \
			$(BUILD_FUZZ)/tests/fuzz/fuzz_$$t tests/fuzz/corpus/$$t $(FUZZ_SECONDS) || rc=1; \
	done; exit $$rc

test-plain: deps build
	meson test -C $(BUILD) $(MESON_TEST_ARGS)

bench: deps build
	@for b in bench/*/run.sh; do echo "== $$b"; bash $$b $(BUILD)/healer || exit 1; done

format:
	clang-format -i $$(git ls-files 'src/*.[ch]' 'tests/*.[ch]')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
