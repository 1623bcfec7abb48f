/*
 * fuzz.h - what the libFuzzer targets of tests/fuzz share: the entry point's
 * prototype and input helpers. Every target is built twice: with
 * -fsanitize=fuzzer (meson -Dfuzz=true, clang) as a fuzzer, and with
 * replay.c as a plain program that runs its checked-in corpus
 * (tests/fuzz/corpus/<target>/) in every build.
 *
 * A target must not crash, leak, hang or abort on any input; a property it
 * checks (a differential oracle, a round trip) aborts through FUZZ_CHECK so
 * the fuzzer keeps the input.
 */
#ifndef HL_TESTS_FUZZ_H
#define HL_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                         \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                 \
		}                                                                                \
	} while (0)

/*
 * Writes size bytes into an anonymous in-memory file and stores a path that
 * opens it ("/proc/self/fd/N") in path; returns the descriptor (close it
 * when done) or -1. For parsers that take a file name.
 */
int fuzz_memfile(char *path, size_t path_size, const uint8_t *data, size_t size);

/*
 * Splits the input at its first newline: *head (NUL-terminated copy of the
 * first line, at most head_size - 1 bytes) and the rest. Without a newline
 * the head is empty and the whole input is the rest.
 */
void fuzz_split_line(char *head, size_t head_size, const uint8_t **rest, size_t *rest_size,
                     const uint8_t *data, size_t size);

#endif
