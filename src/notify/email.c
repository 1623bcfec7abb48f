/*
 * email.c - the escalation email: an RFC 5322 / MIME message with a
 * quoted-printable UTF-8 plain-text body, and its send over SMTP.
 *
 * Invariants: every line ends in CRLF and is at most 78 characters (the
 * body's quoted-printable lines at most 76); no line starts with '.' (the
 * body encodes a leading dot as =2E), so the SMTP end of data cannot be
 * forged whatever the transport's dot-stuffing; header values come either
 * from checked addresses or from untrusted text cleaned to one line and,
 * unless it is plain ASCII without "=?", RFC 2047 encoded, so no untrusted
 * byte can start a header or a body. Addresses are plain dot-atom
 * local@domain, optionally after a display name; anything else, including
 * a control character anywhere in the list, is refused.
 */
#include "base/clock.h"
#include "base/str.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

#define EM_MAX_ADDRS    50
#define EM_SUBJECT_CAP  150
#define EM_FIELD_CAP    300
#define EM_LINE_CAP     1000
#define EM_EVIDENCE_CAP 4000
#define EM_ATTEMPTS_MAX 100
#define EM_URL_MAX      2000
#define EM_HEADER_FOLD  78
#define EM_QP_LINE      76
#define EM_WORD_BYTES   42 /* UTF-8 bytes per encoded-word: 56 base64 chars */

struct em_addr {
	char display[256]; /* valid UTF-8, no control characters; may be "" */
	char addr[320];    /* local@domain */
};

static bool
em_atext(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+/=?^_`{|}~-", c));
}

/* A dot-atom local part @ a host name of letters, digits and hyphens. */
static bool
em_addr_spec_ok(const char *s)
{
	const char *at = strchr(s, '@'), *p;
	size_t llen, label = 0;

	if (!at || at == s || strchr(at + 1, '@'))
		return false;
	llen = (size_t)(at - s);
	if (llen > 64 || s[0] == '.' || at[-1] == '.')
		return false;
	for (p = s; p < at; p++)
		if (!(em_atext(*p) || (*p == '.' && p[1] != '.')))
			return false;
	p = at + 1;
	if (!*p || strlen(p) > 253 || *p == '.' || *p == '-')
		return false;
	for (; *p; p++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-' || !p[1])
				return false;
			label = 0;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		           (*p >= '0' && *p <= '9') || *p == '-') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return p[-1] != '-';
}

/* Parses one "addr" or "Display <addr>" or "\"Display\" <addr>" of n bytes. */
static int
em_parse_one(struct em_addr *a, const char *s, size_t n, struct hl_err *err)
{
	char tmp[600];
	char *lt, *q;
	size_t dn;

	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= sizeof(tmp))
		return hl_err_set(err, HL_EINVAL, "email address '%.*s' is empty or too long",
		                  (int)(n < 80 ? n : 80), s);
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	a->display[0] = '\0';
	if (tmp[n - 1] == '>') {
		lt = strrchr(tmp, '<');
		if (!lt)
			goto bad;
		tmp[n - 1] = '\0';
		if (strlen(lt + 1) >= sizeof(a->addr))
			goto bad;
		strcpy(a->addr, lt + 1);
		*lt = '\0';
		dn = strlen(tmp);
		while (dn > 0 && (tmp[dn - 1] == ' ' || tmp[dn - 1] == '\t'))
			tmp[--dn] = '\0';
		q = tmp;
		if (dn >= 2 && tmp[0] == '"' && tmp[dn - 1] == '"') {
			char *w = tmp;
			size_t i;

			for (i = 1; i + 1 < dn; i++) {
				if (tmp[i] == '\\' && i + 2 < dn)
					i++;
				else if (tmp[i] == '"')
					goto bad;
				*w++ = tmp[i];
			}
			*w = '\0';
		} else if (strchr(tmp, '"') || strchr(tmp, '<') || strchr(tmp, '>')) {
			goto bad;
		}
		if (strlen(q) >= sizeof(a->display))
			goto bad;
		/* valid UTF-8 only: cleaning must leave it unchanged */
		{
			struct hl_buf c = HL_BUF_INIT(0);
			bool same;

			hl_notify_text_append(&c, q, 0, HL_NOTIFY_ESC_NONE, 0, NULL);
			same = !hl_buf_error(&c) && strcmp(c.data, q) == 0;
			hl_buf_release(&c);
			if (!same)
				goto bad;
		}
		strcpy(a->display, q);
	} else {
		if (n >= sizeof(a->addr))
			goto bad;
		strcpy(a->addr, tmp);
	}
	if (!em_addr_spec_ok(a->addr))
		goto bad;
	return 0;
bad:
	return hl_err_set(err, HL_EINVAL,
	                  "email address '%.*s' is not 'local@domain' or "
	                  "'Name <local@domain>'",
	                  (int)(n < 80 ? n : 80), s);
}

/* Splits a comma list (commas inside quotes or <> do not split). */
static int
em_parse_list(struct em_addr **out, size_t *n_out, const char *list, struct hl_err *err)
{
	struct em_addr *v = NULL;
	const char *p, *start;
	bool quoted = false, angle = false;
	size_t n = 0;
	int ret = 0;

	if (!list)
		list = "";
	for (p = list; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return hl_err_set(err, HL_EINVAL,
			                  "email address list holds a control character");
	v = calloc(EM_MAX_ADDRS, sizeof(*v));
	if (!v)
		return hl_err_set(err, HL_ENOMEM, "out of memory");
	for (start = p = list;; p++) {
		if (*p == '"' && (p == list || p[-1] != '\\'))
			quoted = !quoted;
		else if (!quoted && *p == '<')
			angle = true;
		else if (!quoted && *p == '>')
			angle = false;
		if (*p == '\0' || (*p == ',' && !quoted && !angle)) {
			size_t len = (size_t)(p - start);
			const char *s = start;

			while (len > 0 && (*s == ' ' || *s == '\t')) {
				s++;
				len--;
			}
			if (len > 0) {
				if (n == EM_MAX_ADDRS) {
					ret = hl_err_set(err, HL_EINVAL,
					                 "more than %d email addresses",
					                 EM_MAX_ADDRS);
					goto out;
				}
				ret = em_parse_one(&v[n], s, len, err);
				if (ret < 0)
					goto out;
				n++;
			}
			if (*p == '\0')
				break;
			start = p + 1;
		}
	}
	if (quoted || angle) {
		ret = hl_err_set(err, HL_EINVAL, "email address list has an unclosed quote or '<'");
		goto out;
	}
	if (n == 0) {
		ret = hl_err_set(err, HL_EINVAL, "no email address given");
		goto out;
	}
	*out = v;
	*n_out = n;
	v = NULL;
out:
	free(v);
	return ret;
}

static void
em_base64(struct hl_buf *b, const unsigned char *in, size_t n)
{
	static const char tab[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		hl_buf_append_char(b, tab[in[i] >> 2]);
		hl_buf_append_char(b, tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)]);
		hl_buf_append_char(b, tab[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)]);
		hl_buf_append_char(b, tab[in[i + 2] & 63]);
	}
	if (n - i == 1) {
		hl_buf_append_char(b, tab[in[i] >> 2]);
		hl_buf_append_char(b, tab[(in[i] & 3) << 4]);
		hl_buf_append_str(b, "==");
	} else if (n - i == 2) {
		hl_buf_append_char(b, tab[in[i] >> 2]);
		hl_buf_append_char(b, tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)]);
		hl_buf_append_char(b, tab[(in[i + 1] & 15) << 2]);
		hl_buf_append_char(b, '=');
	}
}

/* RFC 2047 B encoded-words of UTF-8 text, whole characters per word,
 * separated by folding whitespace (CRLF SP). */
static void
em_encoded_words(struct hl_buf *b, const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t take = n - i < EM_WORD_BYTES ? n - i : EM_WORD_BYTES;

		/* never split a character between two words */
		while (take < n - i && take > 0 && ((unsigned char)s[i + take] & 0xc0) == 0x80)
			take--;
		if (i > 0)
			hl_buf_append_str(b, "\r\n ");
		hl_buf_append_str(b, "=?UTF-8?B?");
		em_base64(b, (const unsigned char *)s + i, take);
		hl_buf_append_str(b, "?=");
		i += take;
	}
}

static bool
em_plain_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/* The longest run of non-spaces in s. */
static size_t
em_longest_word(const char *s)
{
	size_t best = 0, w;

	while (*s) {
		w = strcspn(s, " ");
		if (w > best)
			best = w;
		s += w;
		s += strspn(s, " ");
	}
	return best;
}

/* "Name: value" where value is clean one-line text: folded at spaces when
 * it is ASCII without "=?" and its words fit a line, else encoded-words. */
static void
em_text_header(struct hl_buf *b, const char *name, const char *value)
{
	size_t col = strlen(name) + 1;

	hl_buf_appendf(b, "%s:", name);
	if (!em_plain_ascii(value) || strstr(value, "=?") ||
	    em_longest_word(value) > EM_HEADER_FOLD - col - 1) {
		hl_buf_append_char(b, ' ');
		em_encoded_words(b, value, strlen(value));
	} else {
		const char *p = value;

		while (*p) {
			size_t w;

			while (*p == ' ')
				p++;
			if (!*p)
				break;
			w = strcspn(p, " ");
			if (col + 1 + w > EM_HEADER_FOLD && col > strlen(name) + 1) {
				hl_buf_append_str(b, "\r\n");
				col = 0;
			}
			hl_buf_append_char(b, ' ');
			hl_buf_append(b, p, w);
			col += 1 + w;
			p += w;
		}
	}
	hl_buf_append_str(b, "\r\n");
}

/* One address for a header: "addr", "Name <addr>", "\"N,ame\" <addr>" or
 * "=?UTF-8?B?...?= <addr>". */
static void
em_addr_header(struct hl_buf *b, const struct em_addr *a)
{
	const char *d = a->display, *p;
	bool atoms = true;

	if (!*d) {
		hl_buf_append_str(b, a->addr);
		return;
	}
	for (p = d; *p; p++)
		if (!(em_atext(*p) || *p == ' '))
			atoms = false;
	if (atoms && !strstr(d, "=?")) {
		hl_buf_appendf(b, "%s <%s>", d, a->addr);
	} else if (em_plain_ascii(d) && !strstr(d, "=?")) {
		hl_buf_append_char(b, '"');
		for (p = d; *p; p++) {
			if (*p == '"' || *p == '\\')
				hl_buf_append_char(b, '\\');
			hl_buf_append_char(b, *p);
		}
		hl_buf_appendf(b, "\" <%s>", a->addr);
	} else {
		em_encoded_words(b, d, strlen(d));
		hl_buf_appendf(b, "\r\n <%s>", a->addr);
	}
}

static void
em_date(char *out, size_t size, int64_t ms)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
		                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
	         tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	         tm.tm_sec);
}

/* "<healer.KEY@domain>" with KEY reduced to [A-Za-z0-9_-], or random. */
static void
em_message_id(struct hl_buf *b, const char *key, const char *from_addr)
{
	const char *domain = strchr(from_addr, '@');
	unsigned char rnd[16];
	char hex[33];
	size_t i;

	hl_buf_append_str(b, "Message-ID: <healer.");
	if (key && *key) {
		for (i = 0; key[i] && i < 64; i++) {
			char c = key[i];

			hl_buf_append_char(b, (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			                                      (c >= '0' && c <= '9') || c == '_'
			                              ? c
			                              : '-');
		}
	} else {
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
			uint64_t x = (uint64_t)hl_time_wall_ms() ^ (uint64_t)hl_time_mono_ms()
			                                                   << 20;

			for (i = 0; i < sizeof(rnd); i++, x = x * 6364136223846793005ull + 1)
				rnd[i] = (unsigned char)(x >> 56);
		}
		hl_str_hex(hex, rnd, sizeof(rnd));
		hl_buf_append_str(b, hex);
	}
	hl_buf_appendf(b, "@%s>\r\n", domain ? domain + 1 : "healer.invalid");
}

/* Quoted-printable (RFC 2045 6.7) of LF-separated UTF-8 text, CRLF line
 * ends, lines of at most 76 characters, a leading '.' encoded. */
static void
em_qp(struct hl_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, col = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool eol = i + 1 == n || s[i + 1] == '\n';
		char tok[4];
		size_t t;

		if (c == '\n') {
			hl_buf_append_str(b, "\r\n");
			col = 0;
			continue;
		}
		if ((c >= 33 && c <= 126 && c != '=' && !(c == '.' && col == 0)) ||
		    ((c == ' ' || c == '\t') && !eol)) {
			tok[0] = (char)c;
			t = 1;
		} else {
			tok[0] = '=';
			tok[1] = hex[c >> 4];
			tok[2] = hex[c & 15];
			t = 3;
		}
		/* a soft break leaves room for the '=' */
		if (col + t > EM_QP_LINE - 1 && !(eol && col + t <= EM_QP_LINE)) {
			hl_buf_append_str(b, "=\r\n");
			col = 0;
			if (c == '.') {
				tok[0] = '=';
				tok[1] = '2';
				tok[2] = 'E';
				t = 3;
			}
		}
		hl_buf_append(b, tok, t);
		col += t;
	}
	if (col > 0)
		hl_buf_append_str(b, "\r\n");
}

/* "Label:  value" with the value cleaned to one line; skipped when empty. */
static void
em_line(struct hl_buf *b, const char *label, const char *value)
{
	if (!value || !*value)
		return;
	hl_buf_appendf(b, "%-14s", label);
	hl_notify_text_append(b, value, EM_FIELD_CAP, HL_NOTIFY_ESC_NONE, HL_NOTIFY_TEXT_TRIM,
	                      NULL);
	hl_buf_append_char(b, '\n');
}

/* The plain-text body (LF line ends). */
static int
em_body(struct hl_buf *b, const struct hl_notify_report *r)
{
	struct hl_buf t = HL_BUF_INIT(0), ev = HL_BUF_INIT(0);
	size_t i, n = r->n_attempts < EM_ATTEMPTS_MAX ? r->n_attempts : EM_ATTEMPTS_MAX;
	const char *p;
	char count[64], dur[32];

	hl_buf_append_str(
	        b, r->kind == HL_NOTIFY_ESCALATION
	                   ? (r->alert ? "Remediation failed - human intervention needed\n\n"
	                               : "CI remediation failed - human intervention "
	                                 "needed\n\n")
	                   : (r->alert ? "Remediation report\n\n" : "CI remediation report\n\n"));
	if (r->alert) {
		/* a running system's failure: what failed, no CI fields */
		em_line(b, "Alert:", r->alert);
		em_line(b, "Namespace:", r->namespace);
		em_line(b, "Pod:", r->pod);
		em_line(b, "Application:", r->application);
		em_line(b, "Summary:", r->summary);
		em_line(b, "Repository:", r->repository);
	} else {
		em_line(b, "Repository:", r->repository);
		em_line(b, "Workflow:", r->workflow);
		em_line(b, "Job:", r->job);
		em_line(b, "Branch:", r->branch);
	}
	if (r->pr_number > 0) {
		hl_buf_appendf(&t, "#%lld", (long long)r->pr_number);
		if (hl_notify_text_url_ok(r->pr_url, EM_URL_MAX))
			hl_buf_appendf(&t, " %s", r->pr_url);
		em_line(b, "PR:", t.data);
	} else if (hl_notify_text_url_ok(r->pr_url, EM_URL_MAX)) {
		em_line(b, "PR:", r->pr_url);
	}
	em_line(b, "Failure type:", r->failure_type);
	if (r->kind == HL_NOTIFY_REPORT)
		em_line(b, "State:", r->state);
	hl_notify_text_attempts_count(count, sizeof(count), r);
	em_line(b, "Attempts:", count);
	hl_buf_reset(&t);
	hl_notify_text_agents(&t, r, HL_NOTIFY_ESC_NONE);
	em_line(b, "Agents tried:", t.data);
	if (hl_notify_text_url_ok(r->run_url, EM_URL_MAX))
		em_line(b, "Run:", r->run_url);

	if (r->n_attempts > 0)
		hl_buf_append_str(b, "\nSummary of attempts:\n");
	for (i = 0; i < n; i++) {
		const struct hl_notify_attempt *a = &r->attempts[i];

		hl_buf_appendf(b, "%d. ", a->number > 0 ? a->number : (int)i + 1);
		hl_notify_text_attempt_line(b, a, EM_LINE_CAP, HL_NOTIFY_ESC_NONE);
		hl_notify_text_duration(dur, sizeof(dur), a->started_ms, a->finished_ms);
		hl_buf_append_str(b, "\n   CodeRun: ");
		hl_notify_text_append(b, a->coderun && *a->coderun ? a->coderun : "-", 200,
		                      HL_NOTIFY_ESC_NONE, HL_NOTIFY_TEXT_TRIM, NULL);
		hl_buf_appendf(b, ", duration: %s", dur);
		if (hl_notify_text_url_ok(a->pr_url, EM_URL_MAX))
			hl_buf_appendf(b, ", PR: %s", a->pr_url);
		hl_buf_append_char(b, '\n');
	}
	if (n < r->n_attempts)
		hl_buf_appendf(b, "... and %zu more attempts\n", r->n_attempts - n);

	if (r->evidence && *r->evidence) {
		hl_notify_text_append(&ev, r->evidence, EM_EVIDENCE_CAP, HL_NOTIFY_ESC_NONE,
		                      HL_NOTIFY_TEXT_MULTILINE | HL_NOTIFY_TEXT_TRIM, NULL);
		hl_buf_append_str(b, "\nCurrent failure:\n");
		for (p = ev.data; *p;) {
			size_t w = strcspn(p, "\n");

			hl_buf_append_str(b, "    ");
			hl_buf_append(b, p, w);
			hl_buf_append_char(b, '\n');
			p += w;
			if (*p)
				p++;
		}
	}
	if (r->kind == HL_NOTIFY_ESCALATION) {
		const char *look = hl_notify_text_url_ok(r->pr_url, EM_URL_MAX)    ? r->pr_url
		                   : hl_notify_text_url_ok(r->run_url, EM_URL_MAX) ? r->run_url
		                                                                   : NULL;

		if (look)
			hl_buf_appendf(b, "\nPlease investigate: %s\n", look);
	}
	if (r->task_id && *r->task_id) {
		hl_buf_append_str(b, "\nTask: ");
		hl_notify_text_append(b, r->task_id, 200, HL_NOTIFY_ESC_NONE, HL_NOTIFY_TEXT_TRIM,
		                      NULL);
		if (hl_notify_text_url_ok(r->task_url, EM_URL_MAX))
			hl_buf_appendf(b, " %s", r->task_url);
		hl_buf_append_char(b, '\n');
	}
	hl_buf_append_str(b, "\n-- \nhealer\n");
	if (hl_buf_error(&t) || hl_buf_error(&ev))
		b->err = HL_ENOMEM;
	hl_buf_release(&t);
	hl_buf_release(&ev);
	return hl_buf_error(b);
}

int
hl_notify_email_build(char **out, size_t *len_out, const struct hl_notify_report *r,
                      const struct hl_notify_email_hdr *h, struct hl_err *err)
{
	struct em_addr *from = NULL, *to = NULL;
	struct hl_buf m = HL_BUF_INIT(0), subj = HL_BUF_INIT(0), plain = HL_BUF_INIT(0);
	struct hl_buf body = HL_BUF_INIT(0);
	size_t nfrom = 0, nto = 0, i, len;
	char date[64], *text;
	int ret;

	ret = em_parse_list(&from, &nfrom, h->from, err);
	if (ret < 0)
		goto out;
	if (nfrom != 1) {
		ret = hl_err_set(err, HL_EINVAL, "the sender must be one email address");
		goto out;
	}
	ret = em_parse_list(&to, &nto, h->to, err);
	if (ret < 0)
		goto out;

	em_date(date, sizeof(date), hl_notify_text_report_time(r));
	hl_buf_appendf(&m, "Date: %s\r\n", date);
	hl_buf_append_str(&m, "From: ");
	em_addr_header(&m, &from[0]);
	hl_buf_append_str(&m, "\r\nTo: ");
	for (i = 0; i < nto; i++) {
		if (i > 0)
			hl_buf_append_str(&m, ",\r\n ");
		em_addr_header(&m, &to[i]);
	}
	hl_buf_append_str(&m, "\r\n");

	hl_buf_appendf(&plain, "[healer] %s %s: ", r->alert ? "remediation" : "CI remediation",
	               r->kind == HL_NOTIFY_ESCALATION ? "failed" : "report");
	hl_notify_text_subject(&plain, r);
	hl_notify_text_append(&subj, plain.data, EM_SUBJECT_CAP, HL_NOTIFY_ESC_NONE,
	                      HL_NOTIFY_TEXT_TRIM, NULL);
	em_text_header(&m, "Subject", subj.data);
	em_message_id(&m, h->message_key, from[0].addr);
	hl_buf_append_str(&m, "MIME-Version: 1.0\r\n"
	                      "Content-Type: text/plain; charset=utf-8\r\n"
	                      "Content-Transfer-Encoding: quoted-printable\r\n"
	                      "Auto-Submitted: auto-generated\r\n"
	                      "\r\n");
	ret = em_body(&body, r);
	if (ret < 0)
		goto oom;
	em_qp(&m, body.data, body.len);
	if (hl_buf_error(&m) || hl_buf_error(&subj) || hl_buf_error(&plain))
		goto oom;
	text = hl_buf_detach(&m, &len);
	if (!text)
		goto oom;
	*out = text;
	if (len_out)
		*len_out = len;
	ret = 0;
	goto out;
oom:
	ret = hl_err_set(err, HL_ENOMEM, "out of memory");
out:
	free(from);
	free(to);
	hl_buf_release(&m);
	hl_buf_release(&subj);
	hl_buf_release(&plain);
	hl_buf_release(&body);
	return ret;
}

int
hl_notify_email_check(const char *from, const char *to, struct hl_err *err)
{
	struct em_addr *a = NULL;
	size_t n = 0;
	int ret;

	ret = em_parse_list(&a, &n, from, err);
	free(a);
	a = NULL;
	if (ret == 0 && n != 1)
		ret = hl_err_set(err, HL_EINVAL, "the sender must be one email address");
	if (ret == -HL_EINVAL)
		return hl_err_wrap(err, "HEALER_EMAIL_FROM");
	if (ret < 0)
		return ret;
	ret = em_parse_list(&a, &n, to, err);
	free(a);
	if (ret == -HL_EINVAL)
		return hl_err_wrap(err, "HEALER_EMAIL_TO");
	return ret;
}

int
hl_notify_email_send(struct hl_notify_result *out, const char *smtp_url, const char *from,
                     const char *to, const char *message, size_t len,
                     const struct hl_notify_opts *opts, struct hl_err *err)
{
	struct em_addr *f = NULL, *t = NULL;
	const char *rcpts[EM_MAX_ADDRS];
	struct hl_err perr = HL_ERR_INIT;
	size_t nf = 0, nt = 0, i;
	int ret = 0;

	ret = em_parse_list(&f, &nf, from, &perr);
	if (ret == 0 && nf != 1)
		ret = hl_err_set(&perr, HL_EINVAL, "the sender must be one email address");
	if (ret == 0)
		ret = em_parse_list(&t, &nt, to, &perr);
	if (ret == -HL_ENOMEM) {
		ret = hl_err_set(err, HL_ENOMEM, "out of memory");
		goto out;
	}
	if (ret < 0) {
		hl_notify_result_set(out, HL_NOTIFY_FAILED, 0, -1, "bad_address", "%s", perr.msg);
		ret = 0;
		goto out;
	}
	for (i = 0; i < nt; i++)
		rcpts[i] = t[i].addr;
	ret = hl_notify_smtp_send(out, smtp_url, f[0].addr, rcpts, nt, message, len, opts, err);
out:
	free(f);
	free(t);
	return ret;
}
