/*
 * err.c - error context helpers; see err.h.
 */
#include "err.h"

#include <stdio.h>
#include <string.h>

int
hl_err_vset(struct hl_err *err, int code, const char *fmt, va_list ap)
{
	if (code < 0)
		code = -code;
	if (err) {
		err->code = code;
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	}
	return -code;
}

int
hl_err_set(struct hl_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = hl_err_vset(err, code, fmt, ap);
	va_end(ap);
	return rc;
}

int
hl_err_wrap(struct hl_err *err, const char *fmt, ...)
{
	char prefix[128], old[sizeof(err->msg)], joined[sizeof(prefix) + sizeof(old) + 2];
	va_list ap;

	if (!err)
		return -HL_EINTERNAL;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(joined, sizeof(joined), "%s: %s", prefix, old);
	memcpy(err->msg, joined, sizeof(err->msg) - 1);
	err->msg[sizeof(err->msg) - 1] = '\0';
	return -(err->code ? err->code : HL_EINTERNAL);
}

const char *
hl_err_name(int code)
{
	static const char *const names[HL_E_MAX] = {
		[HL_OK] = "ok",
		[HL_ENOMEM] = "out_of_memory",
		[HL_EINVAL] = "invalid",
		[HL_EPARSE] = "parse_error",
		[HL_EAUTH] = "unauthorized",
		[HL_ENOTFOUND] = "not_found",
		[HL_ECONFLICT] = "conflict",
		[HL_ETOOBIG] = "too_large",
		[HL_EIO] = "io_error",
		[HL_ETIMEOUT] = "timeout",
		[HL_EUPSTREAM] = "upstream_error",
		[HL_EDB] = "store_error",
		[HL_EINTERNAL] = "internal",
		[HL_EUNSUPPORTED] = "unsupported",
	};
	if (code < 0)
		code = -code;
	if (code >= HL_E_MAX || !names[code])
		return "internal";
	return names[code];
}
