/*
 * hmac.c - placeholder; the module is being built.
 */
