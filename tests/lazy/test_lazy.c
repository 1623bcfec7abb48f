/*
 * test_lazy.c - unit tests for the on-first-use network libraries
 * (src/lazy/): nothing is opened before the first call, the first call
 * opens the library and the forwarders pass every kind of argument on.
 */
/* cmocka.h needs the first four; microhttpd.h the socket types */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <microhttpd.h>
// clang-format on
#include "lazy/lazy.h"

#include <curl/curl.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

static void
test_lazy_curl_opens_on_first_call(void **state)
{
	CURL *c;
	CURLU *u;
	char *host = NULL, *url = NULL;
	long port = 0;

	assert_false(hl_lazy_loaded(&hl_lazy_curl));
	c = curl_easy_init();
	assert_true(hl_lazy_loaded(&hl_lazy_curl));
	assert_non_null(c);
	/* a long, a string, a function pointer, a curl_off_t */
	assert_int_equal(curl_easy_setopt(c, CURLOPT_PORT, 8123L), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_URL, "http://127.0.0.1/x"), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, NULL), CURLE_OK);
	assert_int_equal(curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)1 << 40),
	                 CURLE_OK);
	/* a bad value reaches libcurl as itself and is refused there */
	assert_int_equal(curl_easy_setopt(c, CURLOPT_PORT, 70000L), CURLE_BAD_FUNCTION_ARGUMENT);
	assert_int_equal(curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &url), CURLE_OK);
	assert_string_equal(url, "http://127.0.0.1/x");
	assert_int_equal(curl_easy_getinfo(c, CURLINFO_PRIMARY_PORT, &port), CURLE_OK);
	curl_easy_cleanup(c);
	assert_string_equal(curl_easy_strerror(CURLE_OK), "No error");

	u = curl_url();
	assert_non_null(u);
	assert_int_equal(curl_url_set(u, CURLUPART_URL, "https://example.test:9/p", 0), CURLUE_OK);
	assert_int_equal(curl_url_get(u, CURLUPART_HOST, &host, 0), CURLUE_OK);
	assert_string_equal(host, "example.test");
	curl_free(host);
	curl_url_cleanup(u);
}

static void
test_lazy_curl_share_takes_int_and_pointer(void **state)
{
	CURLSH *sh = curl_share_init();

	assert_non_null(sh);
	assert_int_equal(curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS), CURLSHE_OK);
	assert_int_equal(curl_share_setopt(sh, CURLSHOPT_USERDATA, sh), CURLSHE_OK);
	/* an unknown lock type is refused by libcurl: the value arrived intact */
	assert_int_not_equal(curl_share_setopt(sh, CURLSHOPT_SHARE, 999), CURLSHE_OK);
	assert_int_equal(curl_share_cleanup(sh), CURLSHE_OK);
}

static void
test_lazy_pq_opens_on_first_call(void **state)
{
	PGconn *c;

	assert_false(hl_lazy_loaded(&hl_lazy_pq));
	/* a malformed conninfo fails at once, without any network */
	c = PQconnectdb("this is not a conninfo");
	assert_true(hl_lazy_loaded(&hl_lazy_pq));
	assert_non_null(c);
	assert_int_equal(PQstatus(c), CONNECTION_BAD);
	assert_non_null(strstr(PQerrorMessage(c), "connection info"));
	PQfinish(c);
}

static enum MHD_Result
lazy_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
             const char *version, const char *data, size_t *size, void **con_cls)
{
	return MHD_NO;
}

static void
test_lazy_mhd_opens_on_first_call(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct MHD_Daemon *d;

	assert_false(hl_lazy_loaded(&hl_lazy_mhd));
	/* the option list travels through MHD_start_daemon_va: a thread pool
	 * without an internal polling thread is refused */
	d = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET, 0, NULL, NULL, lazy_handler, NULL,
	                     MHD_OPTION_THREAD_POOL_SIZE, 4U, MHD_OPTION_END);
	assert_true(hl_lazy_loaded(&hl_lazy_mhd));
	assert_null(d);
	/* and a pointer option arrives: bound to loopback, any port */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, lazy_handler, NULL,
	                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a, MHD_OPTION_END);
	assert_non_null(d);
	MHD_stop_daemon(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lazy_curl_opens_on_first_call),
		cmocka_unit_test(test_lazy_curl_share_takes_int_and_pointer),
		cmocka_unit_test(test_lazy_pq_opens_on_first_call),
		cmocka_unit_test(test_lazy_mhd_opens_on_first_call),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
