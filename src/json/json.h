/*
 * json.h - typed accessors over jansson values by dotted path.
 *
 * Paths are dot-separated object keys with optional [N] array indexes:
 * "workflow_job.steps[2].name". Getters borrow: the returned pointers live as
 * long as the root value. A missing key, a null, or a value of the wrong
 * type all read as absent (NULL / the fallback).
 */
#ifndef HL_JSON_JSON_H
#define HL_JSON_JSON_H

#include "base/buf.h"
#include "base/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

json_t *hl_json_path(const json_t *root, const char *path);
/* The string at path, or NULL. */
const char *hl_json_str(const json_t *root, const char *path);
/* The string at path, or fallback. */
const char *hl_json_str_or(const json_t *root, const char *path, const char *fallback);
/* The integer at path (numbers and numeric strings that fit int64), or
 * fallback. */
int64_t hl_json_int(const json_t *root, const char *path, int64_t fallback);
/* The boolean at path, or fallback. */
bool hl_json_bool(const json_t *root, const char *path, bool fallback);

/* Parses n bytes; on failure err says "line L column C: reason". */
int hl_json_parse(json_t **out, const char *text, size_t n, struct hl_err *err);

/* Sets key to a string copy when s is not NULL (else JSON null). */
int hl_json_set_str(json_t *obj, const char *key, const char *s);

/* Serializes compactly with sorted keys (stable output for goldens). */
char *hl_json_dump_sorted(const json_t *v, bool pretty);

#endif
