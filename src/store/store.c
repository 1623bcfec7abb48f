/*
 * store.c - placeholder; the module is being built.
 */
