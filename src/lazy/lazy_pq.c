/*
 * lazy_pq.c - libpq, opened on the first call (see lazy.h): the functions
 * the PostgreSQL store (and its tests) call, forwarded to libpq.so.5. A SQLite-only
 * process never opens it.
 */
#include "lazy.h"

#include <libpq-fe.h>

#define PQ_LIST(F, V, N)                                                                       \
	F(PGconn *, PQconnectdbParams,                                                         \
	  (const char *const *keywords, const char *const *values, int expand),                \
	  (keywords, values, expand))                                                          \
	F(PGconn *, PQconnectdb, (const char *conninfo), (conninfo))                           \
	F(PQconninfoOption *, PQconninfoParse, (const char *conninfo, char **errmsg),          \
	  (conninfo, errmsg))                                                                  \
	V(PQconninfoFree, (PQconninfoOption * o), (o))                                         \
	V(PQfinish, (PGconn * c), (c))                                                         \
	V(PQreset, (PGconn * c), (c))                                                          \
	F(ConnStatusType, PQstatus, (const PGconn *c), (c))                                    \
	F(int, PQsocket, (const PGconn *c), (c))                                               \
	F(int, PQbackendPID, (const PGconn *c), (c))                                           \
	F(char *, PQerrorMessage, (const PGconn *c), (c))                                      \
	F(PQnoticeProcessor, PQsetNoticeProcessor,                                             \
	  (PGconn * c, PQnoticeProcessor proc, void *arg), (c, proc, arg))                     \
	F(int, PQconsumeInput, (PGconn * c), (c))                                              \
	F(PGnotify *, PQnotifies, (PGconn * c), (c))                                           \
	V(PQfreemem, (void *p), (p))                                                           \
	F(PGresult *, PQexec, (PGconn * c, const char *q), (c, q))                             \
	F(PGresult *, PQexecParams,                                                            \
	  (PGconn * c, const char *q, int n, const Oid *types, const char *const *values,      \
	   const int *lengths, const int *formats, int result_format),                         \
	  (c, q, n, types, values, lengths, formats, result_format))                           \
	F(PGresult *, PQprepare,                                                               \
	  (PGconn * c, const char *name, const char *q, int n, const Oid *types),              \
	  (c, name, q, n, types))                                                              \
	F(PGresult *, PQexecPrepared,                                                          \
	  (PGconn * c, const char *name, int n, const char *const *values, const int *lengths, \
	   const int *formats, int result_format),                                             \
	  (c, name, n, values, lengths, formats, result_format))                               \
	F(int, PQsendQueryParams,                                                              \
	  (PGconn * c, const char *q, int n, const Oid *types, const char *const *values,      \
	   const int *lengths, const int *formats, int result_format),                         \
	  (c, q, n, types, values, lengths, formats, result_format))                           \
	F(int, PQsendQueryPrepared,                                                            \
	  (PGconn * c, const char *name, int n, const char *const *values, const int *lengths, \
	   const int *formats, int result_format),                                             \
	  (c, name, n, values, lengths, formats, result_format))                               \
	F(PGresult *, PQgetResult, (PGconn * c), (c))                                          \
	F(int, PQenterPipelineMode, (PGconn * c), (c))                                         \
	F(int, PQexitPipelineMode, (PGconn * c), (c))                                          \
	F(int, PQpipelineSync, (PGconn * c), (c))                                              \
	V(PQclear, (PGresult * r), (r))                                                        \
	F(ExecStatusType, PQresultStatus, (const PGresult *r), (r))                            \
	F(char *, PQresultErrorField, (const PGresult *r, int code), (r, code))                \
	F(char *, PQcmdTuples, (PGresult * r), (r))                                            \
	F(int, PQntuples, (const PGresult *r), (r))                                            \
	F(int, PQnfields, (const PGresult *r), (r))                                            \
	F(int, PQfformat, (const PGresult *r, int f), (r, f))                                  \
	F(int, PQgetisnull, (const PGresult *r, int t, int f), (r, t, f))                      \
	F(int, PQgetlength, (const PGresult *r, int t, int f), (r, t, f))                      \
	F(char *, PQgetvalue, (const PGresult *r, int t, int f), (r, t, f))

enum { PQ_LIST(HL_LAZY_ENUM_F, HL_LAZY_ENUM_V, HL_LAZY_ENUM_N) LAZY_PQ_N };
static const char *const lazy_pq_names[] = { PQ_LIST(HL_LAZY_NAME_F, HL_LAZY_NAME_V,
	                                             HL_LAZY_NAME_N) };
static void *lazy_pq_fns[LAZY_PQ_N];

struct hl_lazy_lib hl_lazy_pq = {
	.soname = "libpq.so.5",
	.names = lazy_pq_names,
	.fns = lazy_pq_fns,
	.n = LAZY_PQ_N,
	.once = PTHREAD_ONCE_INIT,
};

static void
lazy_open_hl_lazy_pq(void)
{
	hl_lazy_open(&hl_lazy_pq);
}

#define PQ_DEF_F(r, name, p, a) HL_LAZY_DEF_F(hl_lazy_pq, r, name, p, a)
#define PQ_DEF_V(name, p, a)    HL_LAZY_DEF_V(hl_lazy_pq, name, p, a)
PQ_LIST(PQ_DEF_F, PQ_DEF_V, HL_LAZY_SKIP_N)
