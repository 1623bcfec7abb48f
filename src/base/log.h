/*
 * log.h - structured logging: one JSON object per line on stderr.
 *
 *   {"time":"2026-11-24T10:00:00.123Z","level":"info","msg":"...",
 *    "delivery_id":"...","task_id":"...", ...extra fields}
 *
 * Secrets registered with hl_log_add_secret() are replaced by "[REDACTED]"
 * wherever they appear in a message or field, so a token that leaks into an
 * upstream error text still never reaches the log; the userinfo of any URL
 * ("https://user:pass@host" -> "https://host") is removed first. Thread-safe: each line is
 * written whole, in order. The delivery/task context is per thread.
 *
 * Deferred lines (hl_log_kv_deferred: the access log's line per request)
 * are gathered and written together at most HL_LOG_DEFER_MS later, so a
 * busy server does not pay a write(2) per request; any other line, a full
 * buffer (64 KiB), hl_log_flush and exit write them first, in order.
 */
#ifndef HL_BASE_LOG_H
#define HL_BASE_LOG_H

#include "buf.h"
#include "err.h"

enum hl_log_level { HL_LOG_DEBUG, HL_LOG_INFO, HL_LOG_WARN, HL_LOG_ERROR };

void hl_log_set_level(enum hl_log_level level);
/* Parses "debug", "info", "warn", "error"; returns -1 on an unknown name. */
int hl_log_parse_level(const char *name);
/* Registers a secret value (copied) to redact, whatever its length (an
 * empty or blank value is ignored); at most 64 distinct secrets. */
void hl_log_add_secret(const char *secret);
/* Registers secret in the place of old, a token it replaces (an
 * installation token minted anew every hour): the table does not fill up
 * with expired tokens. Without old (NULL, or not registered) it is added
 * as by hl_log_add_secret. */
void hl_log_replace_secret(const char *old, const char *secret);
/* Sets (or clears with NULL) the calling thread's delivery and task ids. */
void hl_log_set_context(const char *delivery_id, const char *task_id);

/* Logs msg (printf format). */
void hl_log(enum hl_log_level level, const char *fmt, ...) HL_PRINTF(2, 3);
/* Logs msg plus extra string fields given as NULL-terminated key, value pairs. */
void hl_log_kv(enum hl_log_level level, const char *msg, ...);
/* hl_log_kv for a line that may wait up to HL_LOG_DEFER_MS to be written. */
#define HL_LOG_DEFER_MS 20
void hl_log_kv_deferred(enum hl_log_level level, const char *msg, ...);
/* Writes every deferred line now. */
void hl_log_flush(void);

#define hl_debug(...) hl_log(HL_LOG_DEBUG, __VA_ARGS__)
#define hl_info(...)  hl_log(HL_LOG_INFO, __VA_ARGS__)
#define hl_warn(...)  hl_log(HL_LOG_WARN, __VA_ARGS__)
#define hl_error(...) hl_log(HL_LOG_ERROR, __VA_ARGS__)

/* Copies s into a malloc'd string with URL userinfo removed and every
 * registered secret redacted. */
char *hl_log_redact(const char *s);
/* The same for a buffer's bytes, in place (NULs allowed: a text holding
 * one keeps its URLs whole, only secrets are redacted), in one pass per
 * secret whatever the number of occurrences. -1 when out of memory (b then
 * holds its old bytes, or none). Text from outside that may quote one of
 * healer's own credentials (a job log, a prompt) goes through it. */
int hl_log_redact_buf(struct hl_buf *b);
/* Redacts the malloc'd string *s (may be NULL) as hl_log_redact does, in
 * place: *s is replaced (and freed) only when it quotes a secret or a
 * URL's userinfo, so a clean text costs no allocation when it holds no
 * "://". -1 when out of memory (*s then unchanged). Outside text kept in
 * the store (a job name, a commit message) goes through it. */
int hl_log_redact_str(char **s);
/* True when s quotes a registered secret at least min_len bytes long. */
bool hl_log_quotes_secret(const char *s, size_t min_len);

#endif
