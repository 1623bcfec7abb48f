# healer - thin wrapper over Meson. The README's two commands:
#   make run    build and start the server on embedded defaults
#   make test   build and run the whole suite (plain, ASan+UBSan, ThreadSanitizer
#               and libFuzzer builds)
# Both install missing Debian/npm packages first (scripts/install-deps.sh).

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
BUILD_TSAN ?= build-tsan
LISTEN     ?= 127.0.0.1:8080
# Eight tests at a time on two cores: most of the suite waits on timers,
# stand-ins and servers (four at a time kept the CPU about 40% busy); the
# longest tests carry a meson priority so they start first, and the few that
# must run alone (is_parallel false: they time intake under load) a negative
# one, so they run last instead of draining the pool halfway.
MESON_TEST_ARGS ?= --print-errorlogs --num-processes 8
# The sanitizer builds take two to ten times the CPU: six at a time there.
SANITIZER_JOBS ?= 6

.PHONY: all deps build build-asan build-tsan run test test-plain test-asan test-tsan fuzz soak bench clean format

all: build

deps:
	@scripts/install-deps.sh

deps-build:
	@scripts/install-deps.sh --build-only

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized -Dwerror=true

$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) --buildtype=debug -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false

$(BUILD_TSAN)/build.ninja:
	meson setup $(BUILD_TSAN) --buildtype=debugoptimized -Dwerror=true -Db_sanitize=thread -Db_lundef=false

$(BUILD_FUZZ)/build.ninja:
	CC=clang meson setup $(BUILD_FUZZ) --buildtype=debug -Dwerror=true -Dfuzz=true \
		-Dfuzz_seconds=$(FUZZ_SECONDS_TEST) -Db_sanitize=address,undefined -Db_lundef=false

build: deps-build $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-asan: deps-build $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)

build-tsan: deps-build $(BUILD_TSAN)/build.ninja
	ninja -C $(BUILD_TSAN)

run: build
	@scripts/run-server.sh $(BUILD)/healer $(LISTEN)

# The whole suite runs in a plain optimized build, and again in an
# ASan+UBSan build (each replays every fuzz corpus) but for SANITIZER_SKIP:
# the suites that measure the server under load or time it (chaos, soak,
# timing), the pages in chromium (browser), the drivers run once more
# on PostgreSQL whose code above the store is the SQLite run's (pg-rerun;
# the PostgreSQL store runs sanitized in store-pg, webhook-pg and the
# PostgreSQL-only tests) and the checks of deploy/ that do not run the
# server (manifests). Then every libFuzzer target of tests/fuzz runs
# for FUZZ_SECONDS_TEST seconds (clang; 11 targets x 8 s, two at a time).
# The last line is "N passed, N failed" over all of them.
SANITIZER_SKIP ?= chaos soak timing browser pg-rerun manifests
FUZZ_TARGETS ?= webhook sensor alerts rules classify config services kubeconfig watch tmpl upstream
FUZZERS = $(FUZZ_TARGETS:%=tests/fuzz/fuzz_%)
FUZZ_SECONDS_TEST ?= 8
SANITIZER_ENV = HEALER_TEST_TIME_SCALE=3 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp

# The ThreadSanitizer build runs the suites whose code runs threads; every
# report is written under $(BUILD_TSAN)/tsan-reports/ and counts as a failure
# (scripts/test-summary.py), whether or not the test noticed it. Tests named
# on meson's command line run in the order named: the longest first.
TSAN_TESTS ?= loop e2e store-pg alerts redeliver heal-replicas-pg notify_limits store limits \
	memory webhook-pg webhook replicas-pg outbox-replicas-pg duplicate-stall-pg fast \
	retention fetch-threads log
TSAN_ENV = HEALER_TEST_TIME_SCALE=3 TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 \
	log_path=$(CURDIR)/$(BUILD_TSAN)/tsan-reports/report \
	suppressions=$(CURDIR)/tests/tsan.supp"

# The ThreadSanitizer build is configured here and built by its meson test,
# which builds only what TSAN_TESTS need.
test: deps build build-asan $(BUILD_TSAN)/build.ninja $(BUILD_FUZZ)/build.ninja
	@rc=0; \
	meson test -C $(BUILD) $(MESON_TEST_ARGS) || rc=1; \
	$(SANITIZER_ENV) meson test -C $(BUILD_ASAN) $(MESON_TEST_ARGS) --num-processes $(SANITIZER_JOBS) \
		--timeout-multiplier 3 \
		$(SANITIZER_SKIP:%=--no-suite %) || rc=1; \
	rm -rf $(BUILD_TSAN)/tsan-reports; mkdir -p $(BUILD_TSAN)/tsan-reports; \
	$(TSAN_ENV) meson test -C $(BUILD_TSAN) $(MESON_TEST_ARGS) --num-processes $(SANITIZER_JOBS) \
		--timeout-multiplier 4 \
		$(TSAN_TESTS) || rc=1; \
	ninja -C $(BUILD_FUZZ) $(FUZZERS) >/dev/null || rc=1; \
	$(SANITIZER_ENV) meson test -C $(BUILD_FUZZ) --no-rebuild --print-errorlogs --num-processes 2 \
		--suite fuzz || rc=1; \
	python3 scripts/test-summary.py $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_FUZZ) || rc=1; \
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

test-tsan: deps build-tsan
	@rm -rf $(BUILD_TSAN)/tsan-reports; mkdir -p $(BUILD_TSAN)/tsan-reports; rc=0; \
	$(TSAN_ENV) meson test -C $(BUILD_TSAN) $(MESON_TEST_ARGS) --num-processes $(SANITIZER_JOBS) \
		--timeout-multiplier 4 \
		$(TSAN_TESTS) || rc=1; \
	python3 scripts/test-summary.py $(BUILD_TSAN) || rc=1; exit $$rc

# The soak test alone, longer: make soak SOAK_SECONDS=1800 [SOAK_RATE=40]
SOAK_SECONDS ?= 600
soak: deps build
	SOAK_SECONDS=$(SOAK_SECONDS) meson test -C $(BUILD) --print-errorlogs --suite soak \
		--timeout-multiplier $$(( $(SOAK_SECONDS) / 100 + 1 ))

bench: deps build
	@for b in bench/*/run.sh; do echo "== $$b"; bash $$b $(BUILD)/healer || exit 1; done

format:
	clang-format -i $$(git ls-files 'src/*.[ch]' 'tests/*.[ch]')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_FUZZ)
