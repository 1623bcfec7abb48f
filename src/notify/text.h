/*
 * text.h - text shaping shared by the notify channels: cleaning untrusted
 * text, escaping it for a channel's markup, cutting it to a budget at a
 * character boundary with a marker, URL checks and redaction, durations,
 * the per-report summaries every channel shows, and the common HTTP send.
 *
 * Budgets are in UTF-16 code units, which is never less than the number of
 * Unicode characters, so a text within budget fits whether a service
 * counts characters (Discord, Slack) or UTF-16 units (JavaScript clients).
 */
#ifndef HL_NOTIFY_TEXT_H
#define HL_NOTIFY_TEXT_H

#include "net/fetch.h"
#include "notify.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The truncation marker (U+2026, one unit). */
#define HL_NOTIFY_ELLIPSIS "\xe2\x80\xa6"
/* U+200B ZERO WIDTH SPACE: breaks mentions and code fences invisibly. */
#define HL_NOTIFY_ZWSP "\xe2\x80\x8b"

enum hl_notify_esc {
	HL_NOTIFY_ESC_NONE,         /* plain text: cleaned only */
	HL_NOTIFY_ESC_PLAIN,        /* plain text shown by a chat service: ZWSP after '@' */
	HL_NOTIFY_ESC_DISCORD,      /* Discord markdown: '\' before markup, ZWSP after '@' */
	HL_NOTIFY_ESC_SLACK,        /* Slack mrkdwn: &amp; &lt; &gt;, ZWSP after '@' */
	HL_NOTIFY_ESC_GITHUB,       /* GitHub Markdown inline: '\' before markup, &amp; &lt; &gt;,
	                               ZWSP after '@' and '#' (no mention, no issue reference),
	                               inside "://" and "www." (no autolink) */
	HL_NOTIFY_ESC_DISCORD_CODE, /* inside a Discord ``` block: ZWSP after '`' and '@' */
	HL_NOTIFY_ESC_SLACK_CODE,   /* inside a Slack ``` block: &amp; &lt; &gt;, ZWSP after '`'
	                               and '@' */
};

/* Keep line breaks (as LF); without it they become spaces. */
#define HL_NOTIFY_TEXT_MULTILINE 0x1u
/* Drop leading and trailing whitespace. */
#define HL_NOTIFY_TEXT_TRIM 0x2u

/*
 * Appends s (NULL is "") cleaned and escaped to b, in at most max_units
 * UTF-16 units of output (0: no cap). Cleaning: invalid UTF-8 becomes
 * U+FFFD; CRLF, CR, U+2028 and U+2029 are line breaks; tab is a space; other
 * C0/C1 controls, DEL, U+FEFF and bidi embedding/override/isolate controls
 * are dropped. When the output would not fit, it is cut after a whole
 * character (an escape is never split) and ends with "…", still within
 * max_units. Returns the units appended; *cut_out (may be NULL) tells
 * whether the text was cut. Errors are b's (sticky).
 */
size_t hl_notify_text_append(struct hl_buf *b, const char *s, size_t max_units,
                             enum hl_notify_esc esc, unsigned flags, bool *cut_out);

/* UTF-16 units of n bytes of valid UTF-8. */
size_t hl_notify_text_units(const char *s, size_t n);

/* True when url is an absolute http(s) URL of at most max_len bytes made
 * only of characters that cannot end a Markdown link or a Slack link
 * (no space, control, quote, backslash, backtick, ( ) < > [ ] { } |). */
bool hl_notify_text_url_ok(const char *url, size_t max_len);

/* "4m 12s", "1h 02m", "35s"; "-" when either time is unknown or end < start. */
void hl_notify_text_duration(char *out, size_t size, int64_t start_ms, int64_t end_ms);

/* "Rex (2x), Atlas (1x)" of a report's attempts, in order of first
 * appearance (at most 10 agents), each name cleaned and escaped with esc;
 * "-" when there are none. */
int hl_notify_text_agents(struct hl_buf *b, const struct hl_notify_report *r,
                          enum hl_notify_esc esc);

/* The one-line summary of an attempt, "<agent>: <outcome label> - <reason
 * or status message>", each part escaped with esc, in at most max_units
 * (at least 130). */
int hl_notify_text_attempt_line(struct hl_buf *b, const struct hl_notify_attempt *a,
                                size_t max_units, enum hl_notify_esc esc);

/* What a report is about in one line of plain text (escape it when
 * appending): "<repository> <workflow> on <branch>" ("-" for each one
 * missing), or for an alert "<alert> on <namespace>/<pod or
 * application>". */
int hl_notify_text_subject(struct hl_buf *b, const struct hl_notify_report *r);

/* "3 (max 3)" or "3". */
void hl_notify_text_attempts_count(char *out, size_t size, const struct hl_notify_report *r);

/* The report's time in ms (time_ms, or now). */
int64_t hl_notify_text_report_time(const struct hl_notify_report *r);

/*
 * Checks url for a send: it must parse (libcurl's URL parser), its scheme
 * must be one of schemes (NULL-terminated, lower case) and it must name a
 * host. origin (size bytes) gets "scheme://host[:port]" for messages (no
 * userinfo, path or query), "?" when it does not parse. Returns false when
 * the URL is unusable; then out gets FAILED "bad_url".
 */
bool hl_notify_text_check_url(struct hl_notify_result *out, char *origin, size_t size,
                              const char *url, const char *const *schemes);

/* Fills a result; the message is formatted, then cleaned of controls. */
void hl_notify_result_set(struct hl_notify_result *out, enum hl_notify_status status, long code,
                          int64_t retry_after_ms, const char *error, const char *fmt, ...)
        HL_PRINTF(6, 7);

/* What an HTTP send saw, for a channel's classification. */
struct hl_notify_http {
	long status;      /* 0 when no answer arrived */
	const char *body; /* the answer (NUL-terminated) */
	size_t body_len;
	int64_t retry_after_s;     /* Retry-After, -1 absent */
	int64_t rl_remaining;      /* X-RateLimit-Remaining, -1 absent */
	int64_t rl_reset;          /* X-RateLimit-Reset (epoch s), -1 absent */
	int64_t rl_reset_after_ms; /* X-RateLimit-Reset-After in ms, -1 absent */
	int err_code;              /* the fetch engine's error (0: an answer arrived) */
	const char *err_detail;    /* its reason, with the URL already removed */
};

/* A channel's classification of an answer (called only when one arrived). */
typedef void (*hl_notify_classify_fn)(struct hl_notify_result *out, const char *origin,
                                      const struct hl_notify_http *h);

/*
 * Runs one prepared request (req->url already checked; origin is its
 * redacted form) through the fetch engine and fills *out: transport
 * failures here (RETRY "timeout", "connect" or "tls"), answers through
 * classify. The fetch engine's messages name the URL; only their reason is
 * kept. Returns 0, or -HL_ENOMEM.
 */
int hl_notify_http_run(struct hl_notify_result *out, const struct hl_fetch_req *req,
                       const char *origin, hl_notify_classify_fn classify, struct hl_err *err);

/* POSTs a JSON payload to a webhook url with hl_notify_http_run: one
 * attempt (a POST is never repeated after a 5xx), opts' timeout and CA. */
int hl_notify_http_post(struct hl_notify_result *out, const char *url, const char *origin,
                        const char *payload, size_t len, const struct hl_notify_opts *opts,
                        hl_notify_classify_fn classify, struct hl_err *err);

/* Copies a service's error text into out (size bytes) as one clean line of
 * at most 120 characters, for result messages, with secrets redacted. */
void hl_notify_text_excerpt(char *out, size_t size, const char *s, size_t n);

#endif
