/*
 * str.h - small string helpers on top of libc: prefix/suffix tests,
 * constant-time comparison (for signatures and tokens), hex encoding,
 * splitting comma lists and bounded copies.
 */
#ifndef HL_BASE_STR_H
#define HL_BASE_STR_H

#include <stdbool.h>
#include <stddef.h>

bool hl_str_starts_with(const char *s, const char *prefix);
bool hl_str_ends_with(const char *s, const char *suffix);
/* Case-insensitive substring search (ASCII). */
const char *hl_str_casestr(const char *hay, const char *needle);

/* Compares a and b in time that depends only on the lengths. */
bool hl_str_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Writes 2*n lowercase hex digits and a NUL into out (2*n+1 bytes). */
void hl_str_hex(char *out, const unsigned char *in, size_t n);

/* Returns a malloc'd copy with leading/trailing ASCII whitespace removed. */
char *hl_str_trim_dup(const char *s);

/* Copies at most size-1 bytes and NUL-terminates; returns strlen(src). */
size_t hl_strlcpy(char *dst, const char *src, size_t size);

/* The length of the longest prefix of s[0..n) that is valid UTF-8 (RFC
 * 3629: no overlong forms, no surrogates, nothing above U+10FFFF). A
 * bounded copy that cut a character ends one short of its last bytes. */
size_t hl_utf8_valid_len(const char *s, size_t n);

/* Splits a comma-separated list into a NULL-terminated malloc'd array of
 * trimmed, non-empty malloc'd strings; *count_out gets the number. Free with
 * hl_str_list_free. Returns NULL on OOM. */
char **hl_str_split_list(const char *s, size_t *count_out);
void hl_str_list_free(char **list);

/* Makes a Kubernetes label value: keeps [A-Za-z0-9-_.], replaces others with
 * '-', at most 63 chars, starts and ends alphanumeric (trimmed). out must hold
 * 64 bytes. Empty input gives "". */
void hl_str_label_value(char *out, const char *in);

/*
 * True when full_name is a GitHub repository name "owner/repo" as GitHub
 * allows them: exactly one '/'; the owner 1-39 characters of ASCII letters,
 * digits, hyphens and underscores, starting with neither (an Enterprise
 * Managed User's login is "handle_shortcode"; accounts older than today's
 * rules may hold "--" or end with '-'); the
 * repository 1-100 characters of [A-Za-z0-9._-], not "." or "..". NULL is
 * false. A name that passes cannot add, climb or end a URL path level.
 */
bool hl_str_github_repo_valid(const char *full_name);

/*
 * True when name is a branch an agent may be told to push to: 1-1024 bytes
 * of ASCII letters, digits, '.', '_', '-', '+', '/' and valid UTF-8 beyond
 * ASCII; as git's check-ref-format also wants, not starting with '-', '.'
 * or '/', no part ending with ".lock", not ending with '/' or '.', and no
 * "..", "//" or "/.".
 * Every shell metacharacter, space, control character (C1 too), zero-width,
 * bidi and invisible format mark, and git's own refusals (~ ^ : ? * [ \ @{)
 * are out. NULL is false.
 */
bool hl_str_branch_safe(const char *name);

/* s for a terminal, into out (size > 0 bytes): control characters (C0,
 * DEL, and C1 as UTF-8) become '?', so stored text from outside cannot
 * move the cursor, retitle or clear the terminal; cut to fit without
 * leaving a character incomplete. Returns out. */
char *hl_str_terminal_safe(char *out, size_t size, const char *s);

/* True for a Kubernetes DNS-1123 label (namespaces, label-like names): 1-63
 * characters of [a-z0-9-], starting and ending with a letter or digit. */
bool hl_str_k8s_label_valid(const char *s);

/* True for a Kubernetes DNS-1123 subdomain (pod and most object names): at
 * most 253 characters, dot-separated parts of [a-z0-9-] (each starting and
 * ending with a letter or digit). As in Kubernetes' IsDNS1123Subdomain, a
 * part is not held to a label's 63 characters: "a" x 100 names a pod. */
bool hl_str_k8s_subdomain_valid(const char *s);

#endif
