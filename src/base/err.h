/*
 * err.h - healer's closed set of error codes and the caller-owned error context.
 *
 * Every fallible function returns 0 on success or -HL_E* on failure, and may
 * fill a caller-owned struct hl_err (which may be NULL) with a one-line,
 * lower-case message naming the subject in 'quotes'. The codes are chosen by
 * what the caller will do with them, not by where they came from.
 */
#ifndef HL_BASE_ERR_H
#define HL_BASE_ERR_H

#include <stdarg.h>

enum hl_errcode {
	HL_OK = 0,
	HL_ENOMEM = 1,   /* allocation failed */
	HL_EINVAL,       /* bad argument or input */
	HL_EPARSE,       /* malformed JSON, YAML, template, rule */
	HL_EAUTH,        /* bad signature, token or credentials */
	HL_ENOTFOUND,    /* no such object */
	HL_ECONFLICT,    /* already exists / duplicate */
	HL_ETOOBIG,      /* over a size cap */
	HL_EIO,          /* file or socket I/O */
	HL_ETIMEOUT,     /* a deadline passed */
	HL_EUPSTREAM,    /* an upstream answered badly (retryable) */
	HL_EDB,          /* the store failed */
	HL_EINTERNAL,    /* a bug */
	HL_EUNSUPPORTED, /* valid but not handled (event, feature) */
	HL_E_MAX
};

struct hl_err {
	int code;
	char msg[256];
};

#define HL_ERR_INIT       \
	{                 \
		0,        \
		{         \
			0 \
		}         \
	}

#if defined(__GNUC__)
#define HL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define HL_MUST_CHECK   __attribute__((warn_unused_result))
#else
#define HL_PRINTF(a, b)
#define HL_MUST_CHECK
#endif

/* Fills err (when not NULL) and returns -code, so failures are one line:
 * return hl_err_set(err, HL_EPARSE, "line %d: unknown key '%s'", n, k); */
int hl_err_set(struct hl_err *err, int code, const char *fmt, ...) HL_PRINTF(3, 4);
int hl_err_vset(struct hl_err *err, int code, const char *fmt, va_list ap) HL_PRINTF(3, 0);

/* Prefixes an existing message: "context: old message". Returns -err->code. */
int hl_err_wrap(struct hl_err *err, const char *fmt, ...) HL_PRINTF(2, 3);

/* A short, stable name for a code ("parse", "auth", ...), used in JSON errors. */
const char *hl_err_name(int code);

#endif
