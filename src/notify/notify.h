/*
 * notify.h - the messages healer sends to people, and their senders
 * (contract section 9, "Escalation" and "Commands"): a Discord webhook
 * embed, a Slack incoming-webhook message, an email over SMTP, and GitHub
 * PR comments (the escalation table, the `/healer status` reply and the
 * refusal for an unauthorised `/healer` author).
 *
 * Building and sending are separate, so the durable outbox (the caller)
 * stores the exact bytes once and every retry sends the same message:
 *   hl_notify_<channel>_build(&text, report)  -> a payload, caller-owned;
 *   hl_notify_<channel>_send(&result, ...)    -> one delivery attempt.
 *
 * Every string in a report is untrusted (it comes from CI logs, branch and
 * workflow names, agents' messages). The builders clean it (invalid UTF-8
 * becomes U+FFFD; control and bidi-override characters are dropped), escape
 * it for the channel's markup so it cannot mention (@everyone, <!channel>,
 * @team), link, open HTML, break a table or inject a header, and cut it at a
 * character boundary with a "…" marker so the service's limits are never
 * exceeded.
 *
 * A send makes one attempt (the fetch engine may wait out a 429 whose wait
 * fits in the send's timeout unless opts->no_rate_wait, and the SMTP
 * transport makes one session) and
 * classifies it into a struct hl_notify_result: delivered, retry later (with
 * the service's requested wait when it gave one), or a permanent failure.
 * Webhook URLs and SMTP credentials are secrets: results and errors name
 * only a URL's scheme://host[:port].
 *
 * Thread-safety: every function is reentrant; hl_fetch_global_init() must
 * have run (or run it lazily from a single thread) before sends start on
 * several threads.
 */
#ifndef HL_NOTIFY_NOTIFY_H
#define HL_NOTIFY_NOTIFY_H

#include "base/buf.h"
#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hl_github;

/* What a report is about: the title, colour and wording follow it. */
enum hl_notify_kind {
	HL_NOTIFY_ESCALATION = 0, /* the attempts ran out: people must act */
	HL_NOTIFY_REPORT,         /* any other task report (informational) */
};

/* One attempt of a task. Strings may be NULL. */
struct hl_notify_attempt {
	int number; /* 1-based */
	const char *agent;
	const char *coderun; /* the CodeRun's name */
	/* success, ci_still_failing, agent_failed, timeout, stopped,
	 * rerun_passed, rerun_failed; NULL, "" or "running" while unfinished;
	 * anything else is shown as given (escaped) */
	const char *outcome;
	const char *reason;
	const char *status_message; /* the CodeRun's status.message */
	const char *pr_url;         /* the PR the attempt opened or pushed to */
	int64_t started_ms;         /* wall clock, ms since the epoch; 0 unknown */
	int64_t finished_ms;        /* 0 while running or unknown */
};

/* A task report (an escalation, a status). Strings may be NULL. */
struct hl_notify_report {
	enum hl_notify_kind kind;
	const char *task_id;
	const char *repository; /* owner/name */
	const char *workflow;
	const char *job;
	const char *branch;
	const char *run_url;
	int64_t pr_number; /* 0: no PR */
	const char *pr_url;
	const char *failure_type;
	const char *evidence; /* the current failure's evidence line(s) */
	const char *task_url; /* healer's own page for the task, optional */
	const char *state;    /* task state (queued, running, ...), optional */
	int max_attempts;     /* HEALER_MAX_ATTEMPTS; 0 unknown */
	int64_t time_ms;      /* when the report was made (timestamps, Date); 0 now */
	/* a task from a running system (kind alert or argocd) has no
	 * workflow, job, branch or run: when alert is set the messages name
	 * these instead (untrusted too) */
	const char *alert;       /* the alert's name, or what ArgoCD reported */
	const char *namespace;   /* the pod's or the application's namespace */
	const char *pod;         /* an Alertmanager pod alert's pod */
	const char *application; /* an ArgoCD application */
	const char *summary;     /* the alert's summary (the application's message) */
	const struct hl_notify_attempt *attempts;
	size_t n_attempts;
};

/* Where a message goes; the names are the metrics' channel label. */
enum hl_notify_channel {
	HL_NOTIFY_DISCORD = 0,
	HL_NOTIFY_SLACK,
	HL_NOTIFY_EMAIL,
	HL_NOTIFY_GITHUB,
};

/* The result of one send. */
enum hl_notify_status {
	/* the service accepted the message */
	HL_NOTIFY_DELIVERED = 0,
	/* not delivered, may succeed later: a rate limit (429, GitHub's 403
	 * rate limits), 5xx, 408, a timeout, a refused or broken connection,
	 * SMTP 4xx; retry_after_ms says how long the service asked to wait */
	HL_NOTIFY_RETRY,
	/* will not succeed as is, do not repeat: a malformed URL or address,
	 * 4xx answers (Discord 400/401/403/404 with its JSON code, Slack's
	 * invalid_payload, channel_not_found, ...), SMTP 5xx, refused
	 * credentials, a TLS verification failure */
	HL_NOTIFY_FAILED,
};

struct hl_notify_result {
	enum hl_notify_status status;
	/* the HTTP status or the last SMTP reply code; 0 when none arrived */
	long code;
	/* RETRY: the wait the service asked for in ms (Discord's retry_after,
	 * Retry-After, X-RateLimit-Reset); -1 when it named none */
	int64_t retry_after_ms;
	/* any status: how long the service said the next request to the same
	 * endpoint would be refused, in ms (Discord sends X-RateLimit-Remaining
	 * 0 with X-RateLimit-Reset-After on a delivery too, and answers 429 to
	 * a request before the reset; GitHub sends X-RateLimit-Remaining 0
	 * with X-RateLimit-Reset when the token's budget is spent); 0 when it
	 * said nothing. At most HL_NOTIFY_HOLD_MAX_MS for a webhook, and
	 * HL_GITHUB_BUDGET_HOLD_MAX_MS (an hour) for GitHub's token. */
	int64_t hold_ms;
	/* a short machine token, "" when delivered to everyone (an email some
	 * recipients refused: "rcpt_refused", or "smtp_<4xx>" when some were
	 * refused for now): "rate_limited", "timeout",
	 * "connect", "tls", "bad_url", "bad_address", "server_error",
	 * "http_<status>", "discord_<code>" (Discord's JSON code), Slack's own
	 * error string ("channel_is_archived"), "smtp_<code>",
	 * "login_denied", "starttls_unavailable" */
	char error[64];
	/* one line for people; names only scheme://host[:port] of a URL and
	 * never a credential */
	char message[256];
	int64_t elapsed_ms;
};

/* The longest hold_ms a webhook send reports (a reset further away than
 * this is not believed: Discord's per-webhook buckets reset within
 * seconds; GitHub's hourly budget has its own cap). */
#define HL_NOTIFY_HOLD_MAX_MS 60000

/* Options of a send. Zero-initialise; every field is optional. */
struct hl_notify_opts {
	int64_t timeout_ms;        /* the whole send; 0 means 15 s (HTTP), 30 s (SMTP) */
	const char *ca_file;       /* PEM CA bundle for TLS, NULL for the system's */
	const char *smtp_user;     /* overrides the SMTP URL's user */
	const char *smtp_password; /* overrides the SMTP URL's password (a secret) */
	/* GitHub comments: a text the comment's body holds, unguessable (a
	 * random marker); when set, the send first looks for it among the
	 * issue's comments updated since github_since_ms (an earlier attempt
	 * may have been posted although its answer was lost: a timeout, a
	 * 502) and does not post again when it is there */
	const char *github_marker;
	int64_t github_since_ms;
	/* answer a rate limit (429, GitHub's 403s) at once as RETRY
	 * "rate_limited" with the wait it named, instead of waiting it out
	 * inside the send's timeout: for a caller that holds the channel itself
	 * (the outbox, whose one thread sends every channel) */
	bool no_rate_wait;
	/* email: when set, receives the recipients refused for now (a 4xx
	 * reply to RCPT) of a message the server accepted for the others,
	 * bare addresses separated by ", " ("" when none): the message went
	 * to the others, only these are still to be sent to */
	struct hl_buf *smtp_deferred;
};

/* Addressing of an email (contract section 9: HEALER_EMAIL_FROM/TO). */
struct hl_notify_email_hdr {
	const char *from;        /* "a@example.com" or "Name <a@example.com>" */
	const char *to;          /* a comma-separated list of the same */
	const char *message_key; /* stable id for the Message-ID (an outbox row), or NULL: random */
};

/* "discord", "slack", "email", "github". */
const char *hl_notify_channel_name(enum hl_notify_channel c);
/* "delivered", "retry", "failed" (the metrics' result label). */
const char *hl_notify_status_name(enum hl_notify_status s);
/* A human label for an attempt outcome ("CI still failing"); unknown
 * outcomes come back as given, NULL/"" as "running". */
const char *hl_notify_outcome_label(const char *outcome);

/*
 * Discord: the webhook body (JSON text, NUL-terminated, caller frees): one
 * embed with the title, a description (summary of attempts, the current
 * failure in a code block, the link to investigate), fields (repository,
 * workflow, job, branch, PR, attempts, agents tried, failure type, run,
 * task), footer and timestamp, within Discord's limits (title 256,
 * description 4096, 25 fields of 256/1024, footer 2048, 6000 in all), and
 * "allowed_mentions": {"parse": []}. HL_ENOMEM only.
 */
int hl_notify_discord_build(char **out, const struct hl_notify_report *r,
                            struct hl_err *err) HL_MUST_CHECK;

/*
 * POSTs payload to a Discord webhook URL (http or https; "wait=true" is
 * added to the query so Discord confirms the message was saved). 2xx is
 * delivered; 429 is RETRY with the body's retry_after (seconds, a float) or
 * Retry-After; 5xx, 408 and transport failures are RETRY; other answers are
 * FAILED with error "discord_<code>" from the JSON body (10015 Unknown
 * Webhook, 50006 empty message, 50035 invalid form body) or "http_<status>".
 * Whatever the status, an answer with X-RateLimit-Remaining: 0 sets
 * hold_ms from X-RateLimit-Reset-After (the webhook's bucket is empty
 * until then), so the caller sends nothing more to it before.
 * Returns 0 with *out filled, or -HL_ENOMEM (then *out is not written).
 */
int hl_notify_discord_send(struct hl_notify_result *out, const char *webhook_url,
                           const char *payload, size_t len, const struct hl_notify_opts *opts,
                           struct hl_err *err) HL_MUST_CHECK;

/*
 * Slack: the incoming-webhook body (JSON text, caller frees): a "text"
 * fallback and blocks (header, a section, section fields, the summary of
 * attempts, the current failure, a context line) within Slack's limits
 * (header 150, section text 3000, 10 fields of 2000, 50 blocks); untrusted
 * text has &, <, > escaped as Slack requires. HL_ENOMEM only.
 */
int hl_notify_slack_build(char **out, const struct hl_notify_report *r,
                          struct hl_err *err) HL_MUST_CHECK;

/*
 * POSTs payload to a Slack incoming-webhook URL. 200 is delivered; 429 is
 * RETRY with Retry-After; 5xx and transport failures are RETRY; other
 * statuses are FAILED with Slack's error string as error (invalid_payload,
 * no_text, invalid_blocks, channel_not_found, channel_is_archived,
 * action_prohibited, no_service, invalid_token, ...). Returns 0 with *out
 * filled, or -HL_ENOMEM.
 */
int hl_notify_slack_send(struct hl_notify_result *out, const char *webhook_url, const char *payload,
                         size_t len, const struct hl_notify_opts *opts,
                         struct hl_err *err) HL_MUST_CHECK;

/*
 * Email: a complete RFC 5322 message (CRLF line endings, caller frees;
 * *len_out may be NULL): Date, From, To (every address of h->to),
 * Subject (RFC 2047 encoded when not ASCII), Message-ID, MIME-Version,
 * Content-Type text/plain; charset=utf-8, Content-Transfer-Encoding
 * quoted-printable (no line of the message starts with '.'), Auto-Submitted,
 * and a plain-text body. Addresses are checked strictly (a dot-atom
 * local@domain, optionally after a display name); anything else, including
 * CR or LF anywhere, is HL_EINVAL naming the address. Untrusted text never
 * reaches a header unencoded or with a line break.
 */
int hl_notify_email_build(char **out, size_t *len_out, const struct hl_notify_report *r,
                          const struct hl_notify_email_hdr *h, struct hl_err *err) HL_MUST_CHECK;

/*
 * Checks the addressing settings as hl_notify_email_build reads them (from:
 * one address, to: a non-empty list), so a typo is found when healer starts
 * rather than at the first escalation. -HL_EINVAL naming the setting
 * (HEALER_EMAIL_FROM, HEALER_EMAIL_TO) and the address; HL_ENOMEM.
 */
int hl_notify_email_check(const char *from, const char *to, struct hl_err *err) HL_MUST_CHECK;

/*
 * Sends a message built by hl_notify_email_build over SMTP (smtp:// or
 * smtps://, see hl_notify_smtp_send): MAIL FROM the address of from, RCPT
 * TO each address of to. Bad addresses or a bad URL are FAILED
 * ("bad_address", "bad_url"). Returns 0 with *out filled, or -HL_ENOMEM.
 */
int hl_notify_email_send(struct hl_notify_result *out, const char *smtp_url, const char *from,
                         const char *to, const char *message, size_t len,
                         const struct hl_notify_opts *opts, struct hl_err *err) HL_MUST_CHECK;

/*
 * The SMTP transport (libcurl; the fetch engine speaks HTTP only):
 *  - smtps://host[:465] is TLS from the start; smtp://host[:25] uses
 *    STARTTLS when the server offers it, and requires it (no plaintext
 *    fallback) when credentials are in use or the port is 587;
 *  - user and password come from the URL's userinfo (percent-decoded) or
 *    opts->smtp_user / smtp_password; a path names the EHLO domain;
 *  - the message goes as is (libcurl adds dot-stuffing and the final
 *    CRLF.CRLF); mail_from and rcpts are bare addr-specs.
 * A recipient the server refuses (5xx) or refuses for now (4xx) is
 * skipped: the others still get the message, and the delivered result
 * names the refused ones (error "rcpt_refused", or "smtp_<4xx>" with
 * the ones refused for now in opts->smtp_deferred, for the caller to
 * send to later); every recipient refused fails or retries by that reply.
 * Delivered after the server's 250 to the end of data; a 4xx reply,
 * timeouts and connection failures are RETRY; a 5xx reply, refused
 * credentials, TLS verification failures and a server without STARTTLS
 * when it is required are FAILED. Returns 0 with *out filled, or
 * -HL_ENOMEM.
 */
int hl_notify_smtp_send(struct hl_notify_result *out, const char *smtp_url, const char *mail_from,
                        const char *const *rcpts, size_t n_rcpts, const char *message, size_t len,
                        const struct hl_notify_opts *opts, struct hl_err *err) HL_MUST_CHECK;

/*
 * GitHub: the escalation comment (Markdown, caller frees): a heading, what
 * failed, a table of the attempts (#, agent, outcome, duration, CodeRun,
 * PR), a list of what each attempt tried, the current failure in a fenced
 * block, links. Table cells escape '|' and line breaks; untrusted text
 * cannot open HTML, links, images or mentions. HL_ENOMEM only.
 */
int hl_notify_github_build(char **out, const struct hl_notify_report *r,
                           struct hl_err *err) HL_MUST_CHECK;

/* The `/healer status` reply: the task's state and a table of its attempts
 * (#, agent, CodeRun, outcome, PR). HL_ENOMEM only. */
int hl_notify_github_status(char **out, const struct hl_notify_report *r,
                            struct hl_err *err) HL_MUST_CHECK;

/* The reply to a `/healer` command from an author whose author_association
 * is not in allowed (HEALER_COMMAND_ASSOCIATIONS, a comma list). author is
 * mentioned only when it is a valid GitHub login. HL_ENOMEM only. */
int hl_notify_github_refusal(char **out, const char *author, const char *association,
                             const char *allowed, struct hl_err *err) HL_MUST_CHECK;

/*
 * Posts body as a comment on issue or PR number of repo (owner/name)
 * through the GitHub client (its auth and API origin). 2xx is delivered;
 * rate limits (403/429 with Retry-After or X-RateLimit-Remaining: 0, or a
 * message naming a rate limit) are RETRY with the wait (a minute when
 * GitHub named none, as it asks for secondary limits); 5xx and transport
 * failures are RETRY; 401, 403, 404, 410 and 422 are FAILED
 * ("http_<status>"). With opts->github_marker, a comment of the issue
 * already holding it is DELIVERED without a post ("already posted"): the
 * comments updated since github_since_ms are read page by page (100 each,
 * GitHub's Link rel="next", at most 30 pages, all within the send's
 * timeout); a lookup that failed for now is RETRY, a rate-limited one
 * "rate_limited" with GitHub's wait, as the POST's would be. Returns 0 with *out filled, or
 * -HL_ENOMEM.
 */
int hl_notify_github_send(struct hl_notify_result *out, struct hl_github *gh, const char *repo,
                          int64_t number, const char *body, const struct hl_notify_opts *opts,
                          struct hl_err *err) HL_MUST_CHECK;

#endif
