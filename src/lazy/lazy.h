/*
 * lazy.h - the network libraries (libcurl, libpq, libmicrohttpd) are opened
 * with dlopen(3) on their first use instead of by the dynamic loader at
 * start. They and what they pull in (TLS, Kerberos, LDAP, SSH, GnuTLS...)
 * are about 30 shared objects, two thirds of the start-up work of a command
 * that never touches the network (`healer classify`, `render`,
 * `check-rules`, `--version`).
 *
 * src/lazy/lazy_{curl,pq,mhd}.c define the functions healer calls, with the
 * libraries' own names and prototypes (so no caller changes); each
 * forwards to the real function, resolved once, on the first call, for the
 * whole table of its library. The healer binary links none of the three.
 *
 * Invariant: a library is opened at most once per process, its table fully
 * resolved before any forwarder returns; thread-safe (pthread_once).
 * A library that cannot be opened, or lacks one of the functions, ends the
 * process with exit status 127 and one line on stderr naming it: the
 * package depends on all three, so this is a broken installation.
 */
#ifndef HL_LAZY_LAZY_H
#define HL_LAZY_LAZY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct hl_lazy_lib {
	const char *soname;       /* e.g. "libcurl.so.4" */
	const char *const *names; /* n function names */
	void **fns;               /* n resolved addresses */
	size_t n;
	pthread_once_t once;
	bool loaded;
};

/* Opens l->soname and resolves every name into l->fns; on failure writes
 * one line to stderr and exits 127. Call through pthread_once only. */
void hl_lazy_open(struct hl_lazy_lib *l);

/* True once the library behind l has been opened in this process. */
bool hl_lazy_loaded(const struct hl_lazy_lib *l);

extern struct hl_lazy_lib hl_lazy_curl, hl_lazy_pq, hl_lazy_mhd;

/*
 * Helpers for the forwarder files: LIST is an X-macro of
 *   F(return type, name, (parameters), (arguments))   or
 *   V(name, (parameters), (arguments))                 for void functions,
 *   N(name)                          a variadic one, forwarded by hand.
 */
#define HL_LAZY_ENUM_F(r, name, p, a) HL_LAZY_I_##name,
#define HL_LAZY_ENUM_V(name, p, a)    HL_LAZY_I_##name,
#define HL_LAZY_ENUM_N(name)          HL_LAZY_I_##name,
#define HL_LAZY_NAME_F(r, name, p, a) #name,
#define HL_LAZY_NAME_V(name, p, a)    #name,
#define HL_LAZY_NAME_N(name)          #name,
#define HL_LAZY_SKIP_N(name)
#define HL_LAZY_FN(lib, name) \
	(pthread_once(&(lib).once, lazy_open_##lib), (lib).fns[HL_LAZY_I_##name])
#define HL_LAZY_DEF_F(lib, r, name, p, a)                 \
	r name p                                          \
	{                                                 \
		r(*fn) p = (r(*) p)HL_LAZY_FN(lib, name); \
		return fn a;                              \
	}
#define HL_LAZY_DEF_V(lib, name, p, a)                          \
	void name p                                             \
	{                                                       \
		void(*fn) p = (void(*) p)HL_LAZY_FN(lib, name); \
		fn a;                                           \
	}

#endif
