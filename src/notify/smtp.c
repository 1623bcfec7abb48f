/*
 * smtp.c - one SMTP submission with libcurl. The fetch engine (net/fetch)
 * is restricted to HTTP(S), so this is the notify module's own minimal
 * transport: one easy handle per send, bounded by the send's timeout.
 *
 * Invariants: TLS verification stays on (a CA file may be given); a
 * password never crosses the network in clear text (with credentials, or
 * on the submission port 587, STARTTLS is required); credentials are taken
 * out of the URL before it is handed to libcurl and wiped after the send;
 * result messages name only scheme://host[:port] and never the user or
 * password. The message is sent as is: libcurl dot-stuffs lines starting
 * with '.' and appends CRLF.CRLF. A recipient the server refuses does not
 * stop the message to the others (one stale address must not silence an
 * escalation); the result names the refused ones. One refused for now
 * (4xx) does not either: the others get it now, and the caller learns
 * whom to send it to later (opts->smtp_deferred). The session's commands
 * are watched only for RCPT and its reply, nothing else is kept.
 */
#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "text.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The recipients the server refused, seen in the session's protocol
 * lines: "RCPT TO:<addr>" out, then its reply in. */
struct smtp_trace {
	char rcpt[330]; /* the address of the RCPT awaiting its reply, "" none */
	char refused[160];
	int n_refused;
	long temp_code; /* the first 4xx reply to a RCPT, 0 none */
	int n_deferred;
	struct hl_buf deferred; /* the addresses refused for now, ", " between */
};

struct smtp_src {
	const char *p;
	size_t left;
};

static size_t
smtp_read(char *buf, size_t size, size_t nitems, void *ud)
{
	struct smtp_src *src = ud;
	size_t n = size * nitems;

	if (n > src->left)
		n = src->left;
	memcpy(buf, src->p, n);
	src->p += n;
	src->left -= n;
	return n;
}

static void
smtp_wipe(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
}

/* Replaces every occurrence of secret (when at least 3 bytes) in s. */
static void
smtp_scrub(char *s, const char *secret)
{
	size_t n = secret ? strlen(secret) : 0;
	char *p;

	if (n < 3)
		return;
	while ((p = strstr(s, secret)) != NULL)
		memset(p, '*', n);
}

/* libcurl 8.2 fixed the option's spelling; 7.69 to 8.1 know only this one. */
#if LIBCURL_VERSION_NUM >= 0x080200
#define SMTP_RCPT_ALLOWFAILS CURLOPT_MAIL_RCPT_ALLOWFAILS
#else
#define SMTP_RCPT_ALLOWFAILS CURLOPT_MAIL_RCPT_ALLLOWFAILS
#endif

static int
smtp_debug(CURL *c, curl_infotype type, char *data, size_t size, void *ud)
{
	struct smtp_trace *t = ud;
	size_t n;

	(void)c;
	if (type == CURLINFO_HEADER_OUT) {
		t->rcpt[0] = '\0';
		if (size > 9 && strncasecmp(data, "RCPT TO:<", 9) == 0) {
			for (n = 0; 9 + n < size && data[9 + n] != '>' && n + 1 < sizeof(t->rcpt);
			     n++)
				t->rcpt[n] = data[9 + n];
			t->rcpt[n] = '\0';
		}
	} else if (type == CURLINFO_HEADER_IN && t->rcpt[0] && size >= 4 &&
	           (data[0] == '4' || data[0] == '5') && data[3] != '-') {
		size_t used = strlen(t->refused);

		if (used + 1 < sizeof(t->refused))
			snprintf(t->refused + used, sizeof(t->refused) - used, "%s%.100s (%.3s)",
			         t->n_refused ? ", " : "", t->rcpt, data);
		t->n_refused++;
		if (data[0] == '4') {
			hl_buf_appendf(&t->deferred, "%s%s", t->n_deferred ? ", " : "", t->rcpt);
			t->n_deferred++;
		}
		if (data[0] == '4' && !t->temp_code)
			t->temp_code =
			        data[1] >= '0' && data[1] <= '9' && data[2] >= '0' && data[2] <= '9'
			                ? 400 + (data[1] - '0') * 10 + (data[2] - '0')
			                : 400;
		t->rcpt[0] = '\0';
	} else if (type == CURLINFO_HEADER_IN && t->rcpt[0] && size >= 4 && data[3] != '-') {
		t->rcpt[0] = '\0';
	}
	return 0;
}

/* A bare addr-spec for the envelope: printable ASCII without spaces,
 * brackets or commas. */
static bool
smtp_addr_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n >= 320 || !strchr(s, '@'))
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || strchr("<>,", *s))
			return false;
	return true;
}

/* Classifies a finished session. */
static void
smtp_classify(struct hl_notify_result *out, CURLcode rc, long code, const char *origin,
              const char *reason, const struct smtp_trace *t)
{
	char tok[32];

	snprintf(tok, sizeof(tok), "smtp_%ld", code);
	if (rc != CURLE_OK && t->temp_code) {
		snprintf(tok, sizeof(tok), "smtp_%ld", t->temp_code);
		hl_notify_result_set(out, HL_NOTIFY_RETRY, t->temp_code, -1, tok,
		                     "'%s': temporary failure for recipient %s; sent to nobody yet",
		                     origin, t->refused);
	} else if (rc == CURLE_OK && t->n_refused) {
		/* sent to the others: a delivery, which names the refused ones
		 * (and those refused for now, which the caller sends to later) */
		if (t->temp_code)
			snprintf(tok, sizeof(tok), "smtp_%ld", t->temp_code);
		hl_notify_result_set(
		        out, HL_NOTIFY_DELIVERED, code, -1, t->temp_code ? tok : "rcpt_refused",
		        "'%s': accepted (reply %ld), but not for %d refused "
		        "recipient%s: %s",
		        origin, code, t->n_refused, t->n_refused == 1 ? "" : "s", t->refused);
	} else if (rc == CURLE_OK) {
		hl_notify_result_set(out, HL_NOTIFY_DELIVERED, code, -1, "",
		                     "'%s': accepted (reply %ld)", origin, code);
	} else if (code >= 400 && code < 500) {
		hl_notify_result_set(out, HL_NOTIFY_RETRY, code, -1, tok,
		                     "'%s': temporary failure: %s (reply %ld)", origin, reason,
		                     code);
	} else if (rc == CURLE_LOGIN_DENIED) {
		hl_notify_result_set(out, HL_NOTIFY_FAILED, code, -1, "login_denied",
		                     "'%s': credentials refused (reply %ld)", origin, code);
	} else if (code >= 500 && code < 600) {
		hl_notify_result_set(out, HL_NOTIFY_FAILED, code, -1, tok,
		                     "'%s': refused: %s (reply %ld)", origin, reason, code);
	} else {
		switch (rc) {
		case CURLE_USE_SSL_FAILED:
			hl_notify_result_set(out, HL_NOTIFY_FAILED, code, -1,
			                     "starttls_unavailable",
			                     "'%s': the server does not offer STARTTLS, which is "
			                     "required here",
			                     origin);
			break;
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
			hl_notify_result_set(out, HL_NOTIFY_FAILED, code, -1, "tls", "'%s': %s",
			                     origin, reason);
			break;
		case CURLE_URL_MALFORMAT:
		case CURLE_UNSUPPORTED_PROTOCOL:
			hl_notify_result_set(out, HL_NOTIFY_FAILED, code, -1, "bad_url", "'%s': %s",
			                     origin, reason);
			break;
		case CURLE_OPERATION_TIMEDOUT:
			hl_notify_result_set(out, HL_NOTIFY_RETRY, code, -1, "timeout", "'%s': %s",
			                     origin, reason);
			break;
		default:
			hl_notify_result_set(out, HL_NOTIFY_RETRY, code, -1, "connect", "'%s': %s",
			                     origin, reason);
			break;
		}
	}
}

int
hl_notify_smtp_send(struct hl_notify_result *out, const char *smtp_url, const char *mail_from,
                    const char *const *rcpts, size_t n_rcpts, const char *message, size_t len,
                    const struct hl_notify_opts *opts, struct hl_err *err)
{
	static const char *const schemes[] = { "smtp", "smtps", NULL };
	struct hl_notify_result r;
	struct smtp_trace trace;
	struct smtp_src src = { message, len };
	struct curl_slist *rl = NULL, *l;
	char origin[300], errbuf[CURL_ERROR_SIZE] = "", reason[200], *from = NULL;
	char *url = NULL, *user = NULL, *pass = NULL, *options = NULL, *scheme = NULL, *port = NULL;
	const char *use_user, *use_pass;
	int64_t timeout = opts && opts->timeout_ms > 0 ? opts->timeout_ms : 30000;
	int64_t t0 = hl_time_mono_ms();
	CURLU *h = NULL;
	CURL *c = NULL;
	CURLcode rc;
	long code = 0;
	size_t i;
	int ret = 0;

	hl_fetch_global_init();
	memset(&trace, 0, sizeof(trace));
	hl_buf_init(&trace.deferred, 0);
	if (opts && opts->smtp_deferred)
		hl_buf_reset(opts->smtp_deferred);
	if (!hl_notify_text_check_url(&r, origin, sizeof(origin), smtp_url, schemes))
		goto done;
	for (i = 0; i < n_rcpts && smtp_addr_ok(rcpts[i]); i++)
		;
	if (!smtp_addr_ok(mail_from) || n_rcpts == 0 || i < n_rcpts) {
		hl_notify_result_set(&r, HL_NOTIFY_FAILED, 0, -1, "bad_address",
		                     "the sender or a recipient is not a bare email address");
		goto done;
	}
	h = curl_url();
	if (!h || curl_url_set(h, CURLUPART_URL, smtp_url, 0) != CURLUE_OK)
		goto oom;
	curl_url_get(h, CURLUPART_USER, &user, CURLU_URLDECODE);
	curl_url_get(h, CURLUPART_PASSWORD, &pass, CURLU_URLDECODE);
	curl_url_get(h, CURLUPART_OPTIONS, &options, CURLU_URLDECODE);
	curl_url_get(h, CURLUPART_SCHEME, &scheme, 0);
	curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
	curl_url_set(h, CURLUPART_USER, NULL, 0);
	curl_url_set(h, CURLUPART_PASSWORD, NULL, 0);
	curl_url_set(h, CURLUPART_OPTIONS, NULL, 0);
	if (curl_url_get(h, CURLUPART_URL, &url, 0) != CURLUE_OK)
		goto oom;
	use_user = opts && opts->smtp_user ? opts->smtp_user : user;
	use_pass = opts && opts->smtp_password ? opts->smtp_password : pass;

	from = malloc(strlen(mail_from) + 3);
	if (!from)
		goto oom;
	sprintf(from, "<%s>", mail_from);
	for (i = 0; i < n_rcpts; i++) {
		char tmp[330];

		snprintf(tmp, sizeof(tmp), "<%s>", rcpts[i]);
		l = curl_slist_append(rl, tmp);
		if (!l)
			goto oom;
		rl = l;
	}
	c = curl_easy_init();
	if (!c)
		goto oom;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout < 10000 ? timeout : 10000));
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rl);
	/* the others still get it; all refused still fails */
	curl_easy_setopt(c, SMTP_RCPT_ALLOWFAILS, 1L);
	curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, smtp_debug);
	curl_easy_setopt(c, CURLOPT_DEBUGDATA, &trace);
	curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, smtp_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &src);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	if (use_user && *use_user)
		curl_easy_setopt(c, CURLOPT_USERNAME, use_user);
	if (use_pass && *use_pass)
		curl_easy_setopt(c, CURLOPT_PASSWORD, use_pass);
	if (options && *options)
		curl_easy_setopt(c, CURLOPT_LOGIN_OPTIONS, options);
	if (scheme && strcmp(scheme, "smtp") == 0)
		curl_easy_setopt(c, CURLOPT_USE_SSL,
		                 (use_user && *use_user) || (use_pass && *use_pass) ||
		                                 (port && strcmp(port, "587") == 0)
		                         ? (long)CURLUSESSL_ALL
		                         : (long)CURLUSESSL_TRY);
	if (opts && opts->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, opts->ca_file);

	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	hl_strlcpy(reason, errbuf[0] ? errbuf : curl_easy_strerror(rc), sizeof(reason));
	smtp_scrub(reason, use_user);
	smtp_scrub(reason, use_pass);
	{
		char clean[200];

		hl_notify_text_excerpt(clean, sizeof(clean), reason, strlen(reason));
		smtp_classify(&r, rc, code, origin, clean, &trace);
	}
	/* the message went to the others: only these are still to get it
	 * (without the memory to name them it stays delivered: the accepted
	 * recipients must not get it twice) */
	if (rc == CURLE_OK && trace.n_deferred && opts && opts->smtp_deferred &&
	    (hl_buf_error(&trace.deferred) ||
	     hl_buf_append(opts->smtp_deferred, trace.deferred.data, trace.deferred.len) < 0))
		hl_log_kv(HL_LOG_ERROR,
		          "out of memory naming the recipients an email was deferred for; "
		          "they will not get it",
		          NULL);
	goto done;
oom:
	ret = hl_err_set(err, HL_ENOMEM, "out of memory");
	goto out;
done:
	r.elapsed_ms = hl_time_mono_ms() - t0;
	*out = r;
out:
	if (c)
		curl_easy_cleanup(c);
	curl_slist_free_all(rl);
	hl_buf_release(&trace.deferred);
	free(from);
	smtp_wipe(pass);
	smtp_wipe(user);
	curl_free(user);
	curl_free(pass);
	curl_free(options);
	curl_free(scheme);
	curl_free(port);
	curl_free(url);
	curl_url_cleanup(h);
	return ret;
}
