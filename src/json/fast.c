/*
 * fast.c - recursive-descent JSON parser building jansson values (see
 * fast.h). Invariants: the input is never read past end; every
 * failure path releases what was built; recursion is bounded by
 * JF_MAX_DEPTH; strings without escapes are validated and copied once.
 */
#include "json/fast.h"

#include "base/buf.h"

#include <errno.h>
#include <float.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define JF_MAX_DEPTH 2048

struct jf {
	const char *start, *p, *end;
	int depth;
	int discard;                            /* > 0: values are checked, not built */
	const struct hl_json_prune_rule *rules; /* for the root object's members */
	const char *const *keep_next;           /* the next object keeps only these */
	struct hl_err *err;
	const char *why;
	const char *at;
	struct hl_buf scratch; /* decoded strings with escapes */
};

static json_t *jf_value(struct jf *s);

static void *
jf_fail(struct jf *s, const char *at, const char *why)
{
	if (!s->why) {
		s->why = why;
		s->at = at;
	}
	return NULL;
}

static inline void
jf_ws(struct jf *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
		s->p++;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static size_t
jf_utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	size_t n, i;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if (c == 0xe0 && p[1] < 0xa0) /* overlong */
		return 0;
	if (c == 0xed && p[1] >= 0xa0) /* surrogates */
		return 0;
	if (c == 0xf0 && p[1] < 0x90) /* overlong */
		return 0;
	if (c == 0xf4 && p[1] >= 0x90) /* above U+10FFFF */
		return 0;
	return n;
}

static int
jf_hex4(const char *p, const char *end, unsigned *out)
{
	unsigned v = 0;
	int i;

	if (end - p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static void
jf_put_utf8(struct hl_buf *b, unsigned cp)
{
	char u[4];

	if (cp < 0x80) {
		hl_buf_append_char(b, (char)cp);
		return;
	}
	if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		hl_buf_append(b, u, 2);
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		hl_buf_append(b, u, 3);
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		hl_buf_append(b, u, 4);
	}
}

/* The first byte at or after p (before end) that a string cannot take as
 * it is: '"', '\\', a control character or a byte >= 0x80. Sixteen bytes
 * at a time where SSE2 is there (all x86-64): GitHub's strings are mostly
 * URLs, tens of bytes of plain ASCII. */
static inline const unsigned char *
jf_plain_run(const unsigned char *p, const unsigned char *end)
{
#ifdef __SSE2__
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
	const __m128i space = _mm_set1_epi8(0x20);

	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		/* bytes >= 0x80 are negative: a signed v < 0x20 catches them
		 * and the control characters at once */
		__m128i m = _mm_or_si128(
		        _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
		        _mm_cmplt_epi8(v, space));
		int bits = _mm_movemask_epi8(m);

		if (bits)
			return p + __builtin_ctz((unsigned)bits);
		p += 16;
	}
#endif
	while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80)
		p++;
	return p;
}

/*
 * Parses a string starting after its opening quote. On success out and len
 * point either into the input (no escapes) or into s->scratch, and s->p is
 * past the closing quote. *has_nul tells whether it decoded a NUL.
 */
static int
jf_string(struct jf *s, const char **out, size_t *len, int *has_nul)
{
	const unsigned char *p = (const unsigned char *)s->p;
	const unsigned char *end = (const unsigned char *)s->end;
	const unsigned char *run;
	bool escaped = false;
	size_t n;

	*has_nul = 0;
	run = p;
	for (;;) {
		p = jf_plain_run(p, end);
		if (p >= end) {
			jf_fail(s, (const char *)p, "premature end of input");
			return -1;
		}
		if (*p == '"')
			break;
		if (*p < 0x20) {
			jf_fail(s, (const char *)p, "control character in string");
			return -1;
		}
		if (*p >= 0x80) {
			n = jf_utf8_len(p, end);
			if (!n) {
				jf_fail(s, (const char *)p, "invalid UTF-8 in string");
				return -1;
			}
			p += n;
			continue;
		}
		/* A backslash: switch to decoding into scratch. */
		if (!escaped) {
			escaped = true;
			hl_buf_reset(&s->scratch);
		}
		hl_buf_append(&s->scratch, run, (size_t)(p - run));
		p++;
		if (p >= end) {
			jf_fail(s, (const char *)p, "premature end of input");
			return -1;
		}
		switch (*p) {
		case '"':
		case '\\':
		case '/':
			hl_buf_append_char(&s->scratch, (char)*p);
			p++;
			break;
		case 'b':
			hl_buf_append_char(&s->scratch, '\b');
			p++;
			break;
		case 'f':
			hl_buf_append_char(&s->scratch, '\f');
			p++;
			break;
		case 'n':
			hl_buf_append_char(&s->scratch, '\n');
			p++;
			break;
		case 'r':
			hl_buf_append_char(&s->scratch, '\r');
			p++;
			break;
		case 't':
			hl_buf_append_char(&s->scratch, '\t');
			p++;
			break;
		case 'u': {
			unsigned cp, lo;

			if (jf_hex4((const char *)p + 1, (const char *)end, &cp) < 0) {
				jf_fail(s, (const char *)p, "invalid \\u escape");
				return -1;
			}
			p += 5;
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				jf_fail(s, (const char *)p, "invalid Unicode: lone low surrogate");
				return -1;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
				    jf_hex4((const char *)p + 2, (const char *)end, &lo) < 0 ||
				    lo < 0xdc00 || lo > 0xdfff) {
					jf_fail(s, (const char *)p,
					        "invalid Unicode: lone high surrogate");
					return -1;
				}
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp == 0)
				*has_nul = 1;
			jf_put_utf8(&s->scratch, cp);
			break;
		}
		default:
			jf_fail(s, (const char *)p, "invalid escape");
			return -1;
		}
		run = p;
	}
	if (escaped) {
		hl_buf_append(&s->scratch, run, (size_t)(p - run));
		if (hl_buf_error(&s->scratch)) {
			jf_fail(s, (const char *)p, "out of memory");
			return -1;
		}
		*out = s->scratch.data;
		*len = s->scratch.len;
	} else {
		*out = (const char *)run;
		*len = (size_t)(p - run);
	}
	s->p = (const char *)p + 1;
	return 0;
}

static json_t *
jf_number(struct jf *s)
{
	const char *p = s->p, *start = s->p;
	char small[64], *copy = small;
	bool real = false;
	size_t n;
	json_t *v;

	if (p < s->end && *p == '-')
		p++;
	if (p >= s->end)
		return jf_fail(s, p, "invalid number");
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		while (p < s->end && *p >= '0' && *p <= '9')
			p++;
	} else {
		return jf_fail(s, p, "invalid number");
	}
	if (p < s->end && *p == '.') {
		real = true;
		p++;
		if (p >= s->end || *p < '0' || *p > '9')
			return jf_fail(s, p, "invalid number");
		while (p < s->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < s->end && (*p == 'e' || *p == 'E')) {
		real = true;
		p++;
		if (p < s->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= s->end || *p < '0' || *p > '9')
			return jf_fail(s, p, "invalid number");
		while (p < s->end && *p >= '0' && *p <= '9')
			p++;
	}
	n = (size_t)(p - start);
	if (!real && n - (*start == '-') <= 18) {
		/* up to 18 digits always fit: no copy, no strtoll */
		const char *d = start + (*start == '-');
		long long i = 0;

		for (; d < p; d++)
			i = i * 10 + (*d - '0');
		s->p = p;
		return json_integer(*start == '-' ? -i : i);
	}
	if (n >= sizeof(small)) {
		copy = malloc(n + 1);
		if (!copy)
			return jf_fail(s, start, "out of memory");
	}
	memcpy(copy, start, n);
	copy[n] = '\0';
	errno = 0;
	if (!real) {
		long long i = strtoll(copy, NULL, 10);

		/* valid JSON beyond json_int_t: a real (fast.h) */
		v = errno == ERANGE ? json_real(strtod(copy, NULL)) : json_integer(i);
	} else {
		double d = strtod(copy, NULL);

		/* beyond a double (strtod's HUGE_VAL, which jansson cannot
		 * hold): the largest double of its sign */
		if (errno == ERANGE && (d > 1.0 || d < -1.0))
			d = d > 0 ? DBL_MAX : -DBL_MAX;
		v = json_real(d);
	}
	if (!v)
		v = jf_fail(s, start, "out of memory");
	if (copy != small)
		free(copy);
	s->p = p;
	return v;
}

static json_t *
jf_literal(struct jf *s, const char *word, size_t n, json_t *v)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return jf_fail(s, s->p, "invalid token");
	s->p += n;
	return v;
}

/* Whether the NUL-terminated name is key (klen bytes, not terminated):
 * most names differ at their first byte, so that is looked at first. */
static inline bool
jf_name_is(const char *name, const char *key, size_t klen)
{
	if (klen == 0)
		return name[0] == '\0';
	return name[0] == key[0] && strnlen(name, klen + 1) == klen && memcmp(name, key, klen) == 0;
}

/* Whether key (klen bytes) is one of the NULL-terminated list. */
static bool
jf_listed(const char *const *list, const char *key, size_t klen)
{
	for (; *list; list++)
		if (jf_name_is(*list, key, klen))
			return true;
	return false;
}

/* What becomes of the member named key (a pruned parse, see fast.h):
 * built (0) or only checked (1); sets s->keep_next for a member whose
 * object keeps only some keys. */
static int
jf_member_mode(struct jf *s, const struct hl_json_prune_rule *rules, const char *const *keep,
               const char *key, size_t klen)
{
	if (keep && !jf_listed(keep, key, klen))
		return 1;
	for (; rules && rules->key; rules++) {
		if (!jf_name_is(rules->key, key, klen))
			continue;
		if (!rules->keep)
			return 1;
		jf_ws(s);
		if (s->p < s->end && *s->p == '{')
			s->keep_next = rules->keep;
		return 0;
	}
	return 0;
}

static json_t *
jf_object(struct jf *s)
{
	const struct hl_json_prune_rule *rules = s->depth == 1 && !s->discard ? s->rules : NULL;
	const char *const *keep = s->discard ? NULL : s->keep_next;
	bool build = !s->discard;
	json_t *obj = build ? json_object() : json_null(), *v;
	const char *key;
	size_t klen;
	int nul, skip;
	char *kcopy;

	s->keep_next = NULL;
	if (!obj)
		return jf_fail(s, s->p, "out of memory");
	s->p++; /* { */
	jf_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return obj;
	}
	for (;;) {
		jf_ws(s);
		if (s->p >= s->end || *s->p != '"') {
			jf_fail(s, s->p, "string or '}' expected");
			goto fail;
		}
		s->p++;
		if (jf_string(s, &key, &klen, &nul) < 0)
			goto fail;
		if (nul) {
			jf_fail(s, s->p, "NUL byte in object key not supported");
			goto fail;
		}
		/* A key decoded into scratch must be copied: the value may
		 * reuse scratch. Keys without escapes point into the input. */
		kcopy = NULL;
		if (build && key == s->scratch.data) {
			kcopy = malloc(klen + 1);
			if (!kcopy) {
				jf_fail(s, s->p, "out of memory");
				goto fail;
			}
			memcpy(kcopy, key, klen);
			kcopy[klen] = '\0';
			key = kcopy;
		}
		jf_ws(s);
		if (s->p >= s->end || *s->p != ':') {
			free(kcopy);
			jf_fail(s, s->p, "':' expected");
			goto fail;
		}
		s->p++;
		skip = build && (rules || keep) ? jf_member_mode(s, rules, keep, key, klen) : 0;
		s->discard += skip;
		v = jf_value(s);
		s->discard -= skip;
		s->keep_next = NULL;
		if (!v) {
			free(kcopy);
			goto fail;
		}
		if (build && !skip && json_object_setn_new_nocheck(obj, key, klen, v) < 0) {
			free(kcopy);
			jf_fail(s, s->p, "out of memory");
			goto fail;
		}
		free(kcopy);
		jf_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			return obj;
		}
		jf_fail(s, s->p, "',' or '}' expected");
		goto fail;
	}
fail:
	json_decref(obj);
	return NULL;
}

static json_t *
jf_array(struct jf *s)
{
	bool build = !s->discard;
	json_t *arr = build ? json_array() : json_null(), *v;

	s->keep_next = NULL;
	if (!arr)
		return jf_fail(s, s->p, "out of memory");
	s->p++; /* [ */
	jf_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return arr;
	}
	for (;;) {
		v = jf_value(s);
		if (!v || (build && json_array_append_new(arr, v) < 0)) {
			jf_fail(s, s->p, "out of memory");
			json_decref(arr);
			return NULL;
		}
		jf_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			return arr;
		}
		jf_fail(s, s->p, "',' or ']' expected");
		json_decref(arr);
		return NULL;
	}
}

static json_t *
jf_value(struct jf *s)
{
	const char *str;
	size_t len;
	int nul;
	json_t *v;

	jf_ws(s);
	if (s->p >= s->end)
		return jf_fail(s, s->p, "premature end of input");
	switch (*s->p) {
	case '{':
	case '[':
		if (++s->depth > JF_MAX_DEPTH)
			return jf_fail(s, s->p, "maximum parsing depth reached");
		v = *s->p == '{' ? jf_object(s) : jf_array(s);
		s->depth--;
		return v;
	case '"':
		s->p++;
		if (jf_string(s, &str, &len, &nul) < 0)
			return NULL;
		if (s->discard)
			return json_null();
		v = json_stringn_nocheck(str, len);
		return v ? v : jf_fail(s, s->p, "out of memory");
	case 't':
		return jf_literal(s, "true", 4, json_true());
	case 'f':
		return jf_literal(s, "false", 5, json_false());
	case 'n':
		return jf_literal(s, "null", 4, json_null());
	default:
		if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) {
			v = jf_number(s);
			if (v && s->discard) {
				json_decref(v);
				v = json_null();
			}
			return v;
		}
		return jf_fail(s, s->p, "invalid token");
	}
}

int
hl_json_fast_parse(json_t **out, const char *text, size_t n, struct hl_err *err)
{
	return hl_json_fast_parse_pruned(out, text, n, NULL, err);
}

int
hl_json_fast_parse_pruned(json_t **out, const char *text, size_t n,
                          const struct hl_json_prune_rule *rules, struct hl_err *err)
{
	struct jf s = { .start = text, .p = text, .end = text + n, .rules = rules };
	json_t *v;
	const char *q;
	int line = 1, col = 0;

	hl_buf_init(&s.scratch, 0);
	v = jf_value(&s);
	if (v) {
		jf_ws(&s);
		if (s.p < s.end) {
			json_decref(v);
			v = jf_fail(&s, s.p, "end of file expected");
		}
	}
	hl_buf_release(&s.scratch);
	if (!v) {
		for (q = text; q < s.at && q < s.end; q++) {
			if (*q == '\n') {
				line++;
				col = 0;
			} else {
				col++;
			}
		}
		return hl_err_set(err, HL_EPARSE, "line %d column %d: %s", line, col + 1,
		                  s.why ? s.why : "invalid JSON");
	}
	*out = v;
	return 0;
}

/*
 * The arena. Each thread that calls begin owns one registered block
 * (JF_ARENA_SIZE bytes, kept for the process lifetime so registered ranges
 * never dangle). An allocation inside a scope is bumped from the block
 * (16-byte aligned) or, when it does not fit, taken from malloc. Frees
 * find the owning block by address across the whole registry, so a value
 * freed on another thread is accounted to the right block: the owner
 * counts its own frees without atomics, other threads count theirs in
 * remote_frees. A block is rewound at begin only when nothing from it is
 * alive (allocs == frees + remote_frees).
 */
#define JF_ARENA_SIZE  (256 * 1024)
#define JF_ARENA_SLOTS 64

struct jf_arena {
	char *base;                         /* set once, before the slot is published */
	atomic_bool owned;                  /* a live thread uses this slot */
	size_t used;                        /* owner only */
	unsigned long allocs;               /* owner only: allocations from base */
	unsigned long frees;                /* owner only: of them freed by the owner */
	_Atomic unsigned long remote_frees; /* freed by other threads */
	size_t served, spilled;             /* owner only: statistics */
};

static struct jf_arena jf_slots[JF_ARENA_SLOTS];
static atomic_int jf_nslots; /* slots [0, n) have base set */
static pthread_mutex_t jf_slot_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t jf_key;
static pthread_once_t jf_once = PTHREAD_ONCE_INIT;
static __thread struct jf_arena *jf_cur; /* the thread's slot */
static __thread bool jf_active;

static void
jf_arena_release(void *p)
{
	struct jf_arena *a = p;

	jf_cur = NULL;
	atomic_store(&a->owned, false);
}

static void
jf_arena_once(void)
{
	pthread_key_create(&jf_key, jf_arena_release);
}

static struct jf_arena *
jf_arena_find(const void *p)
{
	int i, n = atomic_load_explicit(&jf_nslots, memory_order_acquire);
	const char *c = p;

	for (i = 0; i < n; i++)
		if (c >= jf_slots[i].base && c < jf_slots[i].base + JF_ARENA_SIZE)
			return &jf_slots[i];
	return NULL;
}

/* Allocations of a's block not yet freed; owner only. */
static long
jf_arena_live(struct jf_arena *a)
{
	return (long)(a->allocs - a->frees -
	              atomic_load_explicit(&a->remote_frees, memory_order_acquire));
}

static void *
jf_arena_malloc(size_t n)
{
	struct jf_arena *a = jf_cur;
	size_t need = (n + 15) & ~(size_t)15;
	void *p;

	if (!jf_active || !a)
		return malloc(n);
	if (need < n || need > JF_ARENA_SIZE - a->used) {
		a->spilled++;
		return malloc(n);
	}
	p = a->base + a->used;
	a->used += need;
	a->served += need;
	a->allocs++;
	return p;
}

static void
jf_arena_free(void *p)
{
	struct jf_arena *a;

	if (!p)
		return;
	a = jf_cur && (char *)p >= jf_cur->base && (char *)p < jf_cur->base + JF_ARENA_SIZE
	            ? jf_cur
	            : jf_arena_find(p);
	if (a == jf_cur && a)
		a->frees++;
	else if (a)
		atomic_fetch_add_explicit(&a->remote_frees, 1, memory_order_release);
	else
		free(p);
}

void
hl_json_arena_install(void)
{
	json_malloc_t m;
	json_free_t f;

	json_get_alloc_funcs(&m, &f);
	if (m != jf_arena_malloc)
		json_set_alloc_funcs(jf_arena_malloc, jf_arena_free);
}

/* Claims a free slot for the calling thread (a released one or a new one). */
static struct jf_arena *
jf_arena_claim(void)
{
	struct jf_arena *a = NULL;
	int i, n;

	pthread_once(&jf_once, jf_arena_once);
	pthread_mutex_lock(&jf_slot_lock);
	n = atomic_load(&jf_nslots);
	for (i = 0; i < n && !a; i++)
		if (!atomic_load(&jf_slots[i].owned))
			a = &jf_slots[i];
	if (!a && n < JF_ARENA_SLOTS) {
		char *base = malloc(JF_ARENA_SIZE);

		if (base) {
			a = &jf_slots[n];
			a->base = base;
			atomic_store_explicit(&jf_nslots, n + 1, memory_order_release);
		}
	}
	if (a) {
		atomic_store(&a->owned, true);
		a->served = a->spilled = 0;
		if (pthread_setspecific(jf_key, a) != 0) {
			atomic_store(&a->owned, false);
			a = NULL;
		}
	}
	pthread_mutex_unlock(&jf_slot_lock);
	return a;
}

bool
hl_json_arena_begin(void)
{
	json_malloc_t m;
	json_free_t f;

	json_get_alloc_funcs(&m, &f);
	if (m != jf_arena_malloc)
		return false;
	if (!jf_cur)
		jf_cur = jf_arena_claim();
	if (!jf_cur)
		return false;
	/* Rewind only when nothing allocated from the block is alive. */
	if (jf_arena_live(jf_cur) == 0)
		jf_cur->used = 0;
	jf_active = true;
	return true;
}

void
hl_json_arena_end(void)
{
	jf_active = false;
}

void
hl_json_arena_stats(size_t *served, size_t *spilled, long *live)
{
	struct jf_arena *a = jf_cur;

	*served = a ? a->served : 0;
	*spilled = a ? a->spilled : 0;
	*live = a ? jf_arena_live(a) : 0;
}
