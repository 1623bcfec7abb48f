/*
 * fast.h - a fast JSON text -> jansson value parser for untrusted payloads (intake and workers).
 *
 * jansson's own reader lexes one character at a time through a callback
 * and a growable token buffer; on GitHub payloads it runs at ~40 MB/s,
 * which made parsing the largest per-request cost. This parser scans
 * spans in place and builds the same jansson values directly (~10x
 * faster). Accepted language = json_loadb(text, n, JSON_DECODE_ANY |
 * JSON_ALLOW_NUL): strict RFC 8259, valid UTF-8 only, no lone surrogates,
 * NUL allowed in strings but not in object keys, duplicate keys keep the
 * last value, nesting at most 2048 levels. Two differences: jansson also
 * takes NUL bytes right after a number or a literal ("6\0", "[1\0]",
 * {"a":1\0}); NUL is not JSON whitespace, so this parser refuses them
 * (found by tests/fuzz/fuzz_webhook.c). And jansson refuses numbers it
 * cannot hold, which RFC 8259 allows (a payload is valid JSON whatever
 * its numbers' size): here an integer that does not fit json_int_t is a
 * real (18446744073709551616 -> 1.8446744073709552e19) and a real beyond
 * a double the largest double of its sign (1e400 -> DBL_MAX), so readers
 * see a value no id can be (json/json.h, event/normalize.c).
 * Thread-safe (the parser has no shared state; the arena registry below
 * is lock-free).
 */
#ifndef HL_JSON_FAST_H
#define HL_JSON_FAST_H

#include "base/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Parses n bytes into *out (a new reference). On failure returns
 * -HL_EPARSE with err "line L column C: reason". */
int hl_json_fast_parse(json_t **out, const char *text, size_t n, struct hl_err *err);

/*
 * A member of the root object the reader does not need: keep == NULL drops
 * it; otherwise, when it is an object, only its members named in keep
 * (NULL-terminated) are built. A list of rules ends with { NULL, NULL }.
 */
struct hl_json_prune_rule {
	const char *key;
	const char *const *keep;
};

/* As hl_json_fast_parse, but the root object's members named by rules
 * are pruned as they say: checked exactly as in a full parse (the same
 * text is accepted and refused, with the same error), never built. Most
 * of a GitHub payload is the repository, sender and organization objects,
 * of which normalization reads a few fields. */
int hl_json_fast_parse_pruned(json_t **out, const char *text, size_t n,
                              const struct hl_json_prune_rule *rules, struct hl_err *err);

/*
 * Request-scoped arena for jansson values. A payload tree is hundreds of
 * small allocations that live only until the event is normalized; between
 * begin and end on one thread, jansson allocates them by bumping a
 * per-thread block instead of calling malloc, and frees them for free.
 *
 * install: routes jansson's allocator through the arena (json_set_alloc_funcs);
 *   call once before starting threads that use jansson; idempotent. Outside
 *   a begin/end scope every jansson allocation is a plain malloc/free.
 * begin: the calling thread's jansson allocations go to its arena until
 *   end. Returns false (and allocations stay on malloc) when no arena
 *   could be set up. Scopes do not nest.
 * end: stops the scope. The block is reused only once every value
 *   allocated in it was freed (on any thread), so a value that outlives
 *   the scope stays valid; it just keeps the block from being recycled.
 * Rule: memory handed to non-jansson code to free() (json_dumps results)
 *   must not be produced inside a scope.
 */
void hl_json_arena_install(void);
bool hl_json_arena_begin(void);
void hl_json_arena_end(void);

/* Statistics of the calling thread's arena, for tests: bytes served from
 * the block and allocations that spilled to malloc since the thread's
 * arena was created; live = allocations of that block not yet freed. */
void hl_json_arena_stats(size_t *served, size_t *spilled, long *live);

#endif
