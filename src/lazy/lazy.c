/*
 * lazy.c - opening a network library on first use (see lazy.h).
 *
 * RTLD_LOCAL keeps the library's symbols out of the global scope, so
 * nothing else in the process binds to them by accident; RTLD_NOW resolves
 * its own dependencies at once, as the dynamic loader did at start.
 */
#include "lazy.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

void
hl_lazy_open(struct hl_lazy_lib *l)
{
	void *h = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);
	size_t i;

	if (!h) {
		fprintf(stderr, "healer: cannot load '%s': %s\n", l->soname, dlerror());
		exit(127);
	}
	for (i = 0; i < l->n; i++) {
		l->fns[i] = dlsym(h, l->names[i]);
		if (!l->fns[i]) {
			fprintf(stderr, "healer: '%s' has no function '%s'\n", l->soname,
			        l->names[i]);
			exit(127);
		}
	}
	__atomic_store_n(&l->loaded, true, __ATOMIC_RELEASE);
}

bool
hl_lazy_loaded(const struct hl_lazy_lib *l)
{
	return __atomic_load_n(&l->loaded, __ATOMIC_ACQUIRE);
}
