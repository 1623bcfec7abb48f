/*
 * lazy_mhd.c - libmicrohttpd, opened on the first call (see lazy.h): the
 * functions the HTTP server calls, forwarded to libmicrohttpd.so.12. Only
 * `healer server` opens it.
 *
 * MHD_start_daemon forwards its option list through MHD_start_daemon_va;
 * MHD_get_connection_info takes no argument after the type for the types
 * healer asks for, so none is passed on.
 */
#include "lazy.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/socket.h>

#define MHD_LIST(F, V, N)                                                                        \
	F(struct MHD_Daemon *, MHD_start_daemon_va,                                              \
	  (unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc, void *apc_cls,       \
	   MHD_AccessHandlerCallback dh, void *dh_cls, va_list ap),                              \
	  (flags, port, apc, apc_cls, dh, dh_cls, ap))                                           \
	N(MHD_start_daemon)                                                                      \
	V(MHD_stop_daemon, (struct MHD_Daemon * d), (d))                                         \
	F(const char *, MHD_lookup_connection_value,                                             \
	  (struct MHD_Connection * c, enum MHD_ValueKind kind, const char *key), (c, kind, key)) \
	F(int, MHD_get_connection_values,                                                        \
	  (struct MHD_Connection * c, enum MHD_ValueKind kind, MHD_KeyValueIterator it,          \
	   void *cls),                                                                           \
	  (c, kind, it, cls))                                                                    \
	N(MHD_get_connection_info)                                                               \
	V(MHD_suspend_connection, (struct MHD_Connection * c), (c))                              \
	V(MHD_resume_connection, (struct MHD_Connection * c), (c))                               \
	F(struct MHD_Response *, MHD_create_response_from_buffer,                                \
	  (size_t size, void *buffer, enum MHD_ResponseMemoryMode mode), (size, buffer, mode))   \
	F(enum MHD_Result, MHD_add_response_header,                                              \
	  (struct MHD_Response * r, const char *header, const char *content),                    \
	  (r, header, content))                                                                  \
	F(enum MHD_Result, MHD_queue_response,                                                   \
	  (struct MHD_Connection * c, unsigned int status, struct MHD_Response *r),              \
	  (c, status, r))                                                                        \
	V(MHD_destroy_response, (struct MHD_Response * r), (r))

enum { MHD_LIST(HL_LAZY_ENUM_F, HL_LAZY_ENUM_V, HL_LAZY_ENUM_N) LAZY_MHD_N };
static const char *const lazy_mhd_names[] = { MHD_LIST(HL_LAZY_NAME_F, HL_LAZY_NAME_V,
	                                               HL_LAZY_NAME_N) };
static void *lazy_mhd_fns[LAZY_MHD_N];

struct hl_lazy_lib hl_lazy_mhd = {
	.soname = "libmicrohttpd.so.12",
	.names = lazy_mhd_names,
	.fns = lazy_mhd_fns,
	.n = LAZY_MHD_N,
	.once = PTHREAD_ONCE_INIT,
};

static void
lazy_open_hl_lazy_mhd(void)
{
	hl_lazy_open(&hl_lazy_mhd);
}

#define MHD_DEF_F(r, name, p, a) HL_LAZY_DEF_F(hl_lazy_mhd, r, name, p, a)
#define MHD_DEF_V(name, p, a)    HL_LAZY_DEF_V(hl_lazy_mhd, name, p, a)
MHD_LIST(MHD_DEF_F, MHD_DEF_V, HL_LAZY_SKIP_N)

struct MHD_Daemon *
MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc, void *apc_cls,
                 MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	struct MHD_Daemon *d;
	va_list ap;

	va_start(ap, dh_cls);
	d = MHD_start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return d;
}

const union MHD_ConnectionInfo *
MHD_get_connection_info(struct MHD_Connection *c, enum MHD_ConnectionInfoType type, ...)
{
	const union MHD_ConnectionInfo *(*fn)(struct MHD_Connection *, enum MHD_ConnectionInfoType,
	                                      ...) =
	        (const union MHD_ConnectionInfo *(*)(struct MHD_Connection *,
	                                             enum MHD_ConnectionInfoType,
	                                             ...))HL_LAZY_FN(hl_lazy_mhd,
	                                                             MHD_get_connection_info);

	return fn(c, type);
}
