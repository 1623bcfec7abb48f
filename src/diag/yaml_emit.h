/*
 * yaml_emit.h - JSON to YAML with libyaml's emitter, for the diagnostics
 * files people read (`<pod>-events.yaml`): block style, UTF-8 kept, no line
 * folding, and a string quoted whenever a plain scalar would read back as
 * something else (true, null, 1e3, "", ...).
 */
#ifndef HL_DIAG_YAML_EMIT_H
#define HL_DIAG_YAML_EMIT_H

#include "base/buf.h"
#include "base/err.h"

#include <jansson.h>

/*
 * Appends v (borrowed) to out as one YAML document (implicit start and end
 * markers, so a mapping starts with its first key). Nesting deeper than 64 levels is
 * refused with HL_EINVAL; out's cap gives HL_ETOOBIG. On failure out may
 * hold a partial document. Thread-safe (no shared state).
 */
int hl_diag_json_to_yaml(struct hl_buf *out, const json_t *v, struct hl_err *err);

#endif
