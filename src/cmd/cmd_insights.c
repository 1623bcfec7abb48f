/*
 * cmd_insights.c - `healer insights [--since DURATION] [--repository R]
 * [--json]` (contract section 10): how well healer does against the
 * design's targets, from the store the server would use. Only reads: the
 * store is opened read-only, so it works beside a running server (a WAL
 * reader on SQLite) and never creates one.
 */
#include "api/insights.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/str.h"
#include "cmd.h"
#include "config/config.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

int
hl_cmd_insights(int argc, char **argv)
{
	static const struct hl_opt opts[] = {
		{ "since", true, 's' },    { "repository", true, 'r' }, { "json", false, 'j' },
		{ "data-dir", true, 'd' }, { "config", true, 'c' },     { NULL, false, 0 },
	};
	struct hl_config_override ov[1];
	struct hl_insights_opts io = { 0 };
	struct hl_err err = HL_ERR_INIT;
	struct hl_config *cfg = NULL;
	struct hl_store *s = NULL;
	struct hl_buf out = HL_BUF_INIT(0);
	const char *arg, *config_file = NULL;
	json_t *doc = NULL;
	int64_t since_ms = 0;
	size_t nov = 0;
	int idx = 1, opt, rc = 0;
	bool json = false;

	while ((opt = hl_cmd_getopt("insights", argc, argv, opts, &arg, &idx)) != -1) {
		switch (opt) {
		case '?':
			return 2;
		case 's':
			if (hl_api_parse_duration(&since_ms, arg, &err) < 0)
				return hl_cmd_usage_error("insights", "--since: %s", err.msg);
			io.since = arg;
			break;
		case 'r':
			/* a name GitHub cannot have matches nothing: say so */
			if (!hl_str_github_repo_valid(arg))
				return hl_cmd_usage_error("insights",
				                          "--repository '%.200s' is not "
				                          "OWNER/REPO",
				                          arg);
			io.repository = arg;
			break;
		case 'j':
			json = true;
			break;
		case 'd':
			ov[0] = (struct hl_config_override){ "HEALER_DATA_DIR", arg };
			nov = 1;
			break;
		case 'c':
			config_file = arg;
			break;
		}
	}
	if (idx < argc)
		return hl_cmd_usage_error("insights", "unexpected argument '%s'", argv[idx]);
	if (hl_config_load(&cfg, config_file, ov, nov, &err) < 0)
		return hl_cmd_fail("invalid configuration: %s", err.msg);
	if (hl_store_open_with(&s, cfg->database_url, HL_STORE_READ_ONLY, &err) < 0) {
		rc = hl_cmd_fail("cannot open the store: %s", err.msg);
		goto out;
	}
	io.max_attempts = cfg->max_attempts;
	io.learned_routing = cfg->learned_routing;
	io.since_ms = since_ms ? hl_time_wall_ms() - since_ms : 0;
	if (hl_api_insights(&doc, s, &io, &err) < 0) {
		rc = hl_cmd_fail("cannot compute the insights: %s", err.msg);
		goto out;
	}
	if (json) {
		rc = hl_cmd_print_json(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
		goto out;
	}
	hl_api_insights_text(&out, doc);
	if (hl_buf_error(&out))
		rc = hl_cmd_fail("out of memory");
	else
		fwrite(out.data, 1, out.len, stdout);
out:
	hl_buf_release(&out);
	json_decref(doc);
	hl_store_close(s);
	hl_config_free(cfg);
	return rc;
}
