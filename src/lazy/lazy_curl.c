/*
 * lazy_curl.c - libcurl, opened on the first call (see lazy.h): the
 * functions healer calls, forwarded to libcurl.so.4.
 *
 * The variadic setters pass their one argument on with the type libcurl
 * reads for the option: curl_easy_setopt by the option's CURLOPTTYPE range
 * (long, object or function pointer, curl_off_t, blob pointer),
 * curl_easy_getinfo always a pointer, curl_share_setopt an int (what
 * libcurl reads) for
 * (UN)SHARE and a pointer otherwise. A function pointer travels as a
 * data pointer, as it does through libcurl's own va_arg on every platform
 * libcurl supports.
 */
#define CURL_DISABLE_TYPECHECK 1
#include "lazy.h"

#include <curl/curl.h>
#include <stdarg.h>

#define CURL_LIST(F, V, N)                                                                        \
	F(CURLcode, curl_global_init, (long flags), (flags))                                      \
	F(CURL *, curl_easy_init, (void), ())                                                     \
	V(curl_easy_cleanup, (CURL * c), (c))                                                     \
	V(curl_easy_reset, (CURL * c), (c))                                                       \
	F(CURLcode, curl_easy_perform, (CURL * c), (c))                                           \
	F(const char *, curl_easy_strerror, (CURLcode e), (e))                                    \
	N(curl_easy_setopt)                                                                       \
	N(curl_easy_getinfo)                                                                      \
	V(curl_free, (void *p), (p))                                                              \
	F(time_t, curl_getdate, (const char *s, const time_t *now), (s, now))                     \
	F(CURLM *, curl_multi_init, (void), ())                                                   \
	F(CURLMcode, curl_multi_cleanup, (CURLM * m), (m))                                        \
	F(CURLMcode, curl_multi_add_handle, (CURLM * m, CURL * c), (m, c))                        \
	F(CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL * c), (m, c))                     \
	F(CURLMsg *, curl_multi_info_read, (CURLM * m, int *q), (m, q))                           \
	F(CURLMcode, curl_multi_perform, (CURLM * m, int *running), (m, running))                 \
	F(CURLMcode, curl_multi_poll,                                                             \
	  (CURLM * m, struct curl_waitfd extra[], unsigned int n, int ms, int *ret),              \
	  (m, extra, n, ms, ret))                                                                 \
	F(CURLSH *, curl_share_init, (void), ())                                                  \
	N(curl_share_setopt)                                                                      \
	F(CURLSHcode, curl_share_cleanup, (CURLSH * sh), (sh))                                    \
	F(struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s), (l, s)) \
	V(curl_slist_free_all, (struct curl_slist * l), (l))                                      \
	F(CURLU *, curl_url, (void), ())                                                          \
	V(curl_url_cleanup, (CURLU * u), (u))                                                     \
	F(CURLUcode, curl_url_get, (CURLU * u, CURLUPart what, char **part, unsigned f),          \
	  (u, what, part, f))                                                                     \
	F(CURLUcode, curl_url_set, (CURLU * u, CURLUPart what, const char *part, unsigned f),     \
	  (u, what, part, f))

enum { CURL_LIST(HL_LAZY_ENUM_F, HL_LAZY_ENUM_V, HL_LAZY_ENUM_N) LAZY_CURL_N };
static const char *const lazy_curl_names[] = { CURL_LIST(HL_LAZY_NAME_F, HL_LAZY_NAME_V,
	                                                 HL_LAZY_NAME_N) };
static void *lazy_curl_fns[LAZY_CURL_N];

struct hl_lazy_lib hl_lazy_curl = {
	.soname = "libcurl.so.4",
	.names = lazy_curl_names,
	.fns = lazy_curl_fns,
	.n = LAZY_CURL_N,
	.once = PTHREAD_ONCE_INIT,
};

static void
lazy_open_hl_lazy_curl(void)
{
	hl_lazy_open(&hl_lazy_curl);
}

#define CURL_DEF_F(r, name, p, a) HL_LAZY_DEF_F(hl_lazy_curl, r, name, p, a)
#define CURL_DEF_V(name, p, a)    HL_LAZY_DEF_V(hl_lazy_curl, name, p, a)
CURL_LIST(CURL_DEF_F, CURL_DEF_V, HL_LAZY_SKIP_N)

CURLcode
curl_easy_setopt(CURL *c, CURLoption opt, ...)
{
	CURLcode (*fn)(CURL *, CURLoption, ...) =
	        (CURLcode(*)(CURL *, CURLoption, ...))HL_LAZY_FN(hl_lazy_curl, curl_easy_setopt);
	CURLcode rc;
	va_list ap;

	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		rc = fn(c, opt, va_arg(ap, long));
	else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB)
		rc = fn(c, opt, va_arg(ap, curl_off_t));
	else
		rc = fn(c, opt, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode
curl_easy_getinfo(CURL *c, CURLINFO info, ...)
{
	CURLcode (*fn)(CURL *, CURLINFO, ...) =
	        (CURLcode(*)(CURL *, CURLINFO, ...))HL_LAZY_FN(hl_lazy_curl, curl_easy_getinfo);
	CURLcode rc;
	va_list ap;

	va_start(ap, info);
	rc = fn(c, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLSHcode
curl_share_setopt(CURLSH *sh, CURLSHoption opt, ...)
{
	CURLSHcode (*fn)(CURLSH *, CURLSHoption, ...) =
	        (CURLSHcode(*)(CURLSH *, CURLSHoption, ...))HL_LAZY_FN(hl_lazy_curl,
	                                                               curl_share_setopt);
	CURLSHcode rc;
	va_list ap;

	va_start(ap, opt);
	if (opt == CURLSHOPT_SHARE || opt == CURLSHOPT_UNSHARE)
		rc = fn(sh, opt, va_arg(ap, int));
	else
		rc = fn(sh, opt, va_arg(ap, void *));
	va_end(ap);
	return rc;
}
