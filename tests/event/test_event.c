/*
 * test_event.c - unit tests of src/event: normalization of every event kind
 * from small handwritten payloads, each skip reason, /healer command
 * parsing, cross-delivery dedup keys, sensor name guessing, the JSON form,
 * and robustness against odd payloads (every node of every payload replaced
 * by null / a string / a number / an array / an object).
 */
/* cmocka.h needs the standard headers before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "base/log.h"
#include "event/event.h"

#include "json/json.h"

/* ---- helpers ----------------------------------------------------------- */

#define REPO                                                           \
	"\"repository\": {\"full_name\": \"Acme/App\", \"html_url\": " \
	"\"https://github.com/Acme/App\", \"default_branch\": \"main\"}"
#define SENDER "\"sender\": {\"login\": \"alice\", \"type\": \"User\"}"
#define BOT    "\"sender\": {\"login\": \"renovate[bot]\", \"type\": \"Bot\"}"

static json_t *
parse(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);

	if (!v)
		fail_msg("bad test JSON at line %d column %d: %s", je.line, je.column, je.text);
	return v;
}

/* Normalizes text as event; fails the test unless it succeeds. */
static struct hl_event *
norm(const char *event, const char *text)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_event *ev = NULL;
	json_t *pl = parse(text);
	int rc = hl_event_normalize(&ev, event, pl, &err);

	json_decref(pl);
	if (rc != 0)
		fail_msg("normalize %s failed: %s", event, err.msg);
	return ev;
}

/* Normalizes text as event and returns the negative error code. */
static int
norm_err(const char *event, const char *text, struct hl_err *err)
{
	struct hl_event *ev = NULL;
	json_t *pl = parse(text);
	int rc = hl_event_normalize(&ev, event, pl, err);

	json_decref(pl);
	hl_event_free(ev);
	return rc;
}

static struct hl_config default_cfg; /* all repositories, no bots */

static const char *
reason_of(const struct hl_event *ev)
{
	return hl_event_skip_reason(ev, &default_cfg);
}

static const char *const wf_job_failed =
        "{\"action\": \"completed\", " REPO ", " SENDER ", \"installation\": {\"id\": 7},"
        " \"workflow_job\": {\"id\": 555, \"run_id\": 4242, \"run_attempt\": 1,"
        " \"workflow_name\": \"CI\", \"name\": \"clippy\", \"status\": \"completed\","
        " \"conclusion\": \"failure\", \"head_branch\": \"feat/x\", \"head_sha\": \"abc123\","
        " \"html_url\": \"https://github.com/Acme/App/actions/runs/4242/job/555\","
        " \"steps\": [{\"name\": \"checkout\", \"conclusion\": \"success\"},"
        "  {\"name\": \"cargo clippy\", \"conclusion\": \"failure\"},"
        "  {\"name\": \"cargo test\", \"conclusion\": \"failure\"}]}}";

/* ---- normalization of each kind ---------------------------------------- */

static void
test_event_workflow_job_fields(void **state)
{
	struct hl_event *ev = norm("workflow_job", wf_job_failed);

	assert_int_equal(ev->kind, HL_EVENT_WORKFLOW_JOB);
	assert_int_equal(ev->intent, HL_INTENT_CI_FAILURE);
	assert_string_equal(ev->event_name, "workflow_job");
	assert_string_equal(ev->action, "completed");
	assert_string_equal(ev->repository, "Acme/App");
	assert_string_equal(ev->repository_url, "https://github.com/Acme/App");
	assert_string_equal(ev->default_branch, "main");
	assert_string_equal(ev->sender, "alice");
	assert_false(ev->sender_is_bot);
	assert_int_equal(ev->installation_id, 7);
	assert_int_equal(ev->job_id, 555);
	assert_int_equal(ev->run_id, 4242);
	assert_int_equal(ev->run_attempt, 1);
	assert_string_equal(ev->workflow_name, "CI");
	assert_string_equal(ev->job_name, "clippy");
	assert_string_equal(ev->failed_step, "cargo clippy");
	assert_string_equal(ev->conclusion, "failure");
	assert_string_equal(ev->branch, "feat/x");
	assert_string_equal(ev->head_sha, "abc123");
	/* workflow_job payloads carry no commit message */
	assert_null(ev->commit_message);
	assert_null(reason_of(ev));
	hl_event_free(ev);
}

static void
test_event_workflow_run_fields(void **state)
{
	struct hl_event *ev = norm(
	        "workflow_run",
	        "{\"action\": \"completed\", " REPO ", " SENDER ", \"workflow_run\": {\"id\": 99,"
	        " \"name\": \"Release\", \"run_attempt\": 2, \"status\": \"completed\","
	        " \"conclusion\": \"startup_failure\", \"head_branch\": \"main\", \"head_sha\": \"d00d\","
	        " \"check_suite_id\": 31, \"logs_url\": \"https://api.github.com/x/logs\","
	        " \"html_url\": \"https://github.com/Acme/App/actions/runs/99\","
	        " \"head_commit\": {\"message\": \"fix: thing\\n\\nbody\"},"
	        " \"pull_requests\": [{\"number\": 12, \"base\": {\"ref\": \"develop\"}}]}}");

	assert_int_equal(ev->kind, HL_EVENT_WORKFLOW_RUN);
	assert_int_equal(ev->intent, HL_INTENT_CI_FAILURE);
	assert_int_equal(ev->run_id, 99);
	assert_int_equal(ev->run_attempt, 2);
	assert_int_equal(ev->check_suite_id, 31);
	assert_int_equal(ev->job_id, 0);
	assert_string_equal(ev->workflow_name, "Release");
	assert_string_equal(ev->commit_message, "fix: thing\n\nbody");
	assert_string_equal(ev->logs_url, "https://api.github.com/x/logs");
	assert_int_equal(ev->pr_number, 12);
	assert_string_equal(ev->base_branch, "develop");
	assert_null(reason_of(ev));
	hl_event_free(ev);
}

static void
test_event_check_run_failure_fields(void **state)
{
	struct hl_event *ev = norm(
	        "check_run",
	        "{\"action\": \"completed\", " REPO ", " SENDER ", \"check_run\": {\"id\": 77,"
	        " \"name\": \"lint\", \"status\": \"completed\", \"conclusion\": \"failure\","
	        " \"head_sha\": \"beef\", \"html_url\": \"https://github.com/Acme/App/runs/77\","
	        " \"output\": {\"title\": \"2 errors\", \"summary\": \"sum\", \"text\": \"txt\"},"
	        " \"check_suite\": {\"id\": 8, \"head_branch\": \"topic\"},"
	        " \"pull_requests\": []}}");

	assert_int_equal(ev->kind, HL_EVENT_CHECK_RUN);
	assert_int_equal(ev->intent, HL_INTENT_CI_FAILURE);
	assert_int_equal(ev->check_run_id, 77);
	assert_int_equal(ev->check_suite_id, 8);
	assert_string_equal(ev->job_name, "lint");
	assert_string_equal(ev->branch, "topic");
	assert_string_equal(ev->check_output_title, "2 errors");
	assert_string_equal(ev->check_output_summary, "sum");
	assert_string_equal(ev->check_output_text, "txt");
	assert_int_equal(ev->pr_number, 0);
	assert_null(ev->requested_action);
	assert_null(reason_of(ev));
	hl_event_free(ev);
}

static void
test_event_check_run_requested_action(void **state)
{
	struct hl_event *ev = norm(
	        "check_run",
	        "{\"action\": \"requested_action\", " REPO ", " SENDER ","
	        " \"requested_action\": {\"identifier\": \"remediate\"},"
	        " \"check_run\": {\"id\": 78, \"name\": \"Stitch Review\", \"status\": \"completed\","
	        " \"conclusion\": \"action_required\", \"head_sha\": \"cafe\","
	        " \"output\": {\"title\": \"3 issue(s) found\"},"
	        " \"check_suite\": {\"id\": 9, \"head_branch\": \"feature/y\"},"
	        " \"pull_requests\": [{\"number\": 41, \"base\": {\"ref\": \"main\"}},"
	        "  {\"number\": 42}]}}");

	assert_int_equal(ev->intent, HL_INTENT_ACTION);
	assert_string_equal(ev->requested_action, "remediate");
	assert_int_equal(ev->pr_number, 41);
	assert_string_equal(ev->branch, "feature/y");
	assert_string_equal(ev->base_branch, "main");
	assert_string_equal(ev->head_sha, "cafe");
	assert_int_equal(ev->check_run_id, 78);
	assert_null(reason_of(ev));
	hl_event_free(ev);
}

static void
test_event_check_suite_fields(void **state)
{
	struct hl_event *ev = norm(
	        "check_suite",
	        "{\"action\": \"completed\", " REPO ", " SENDER ", \"check_suite\": {\"id\": 5,"
	        " \"status\": \"completed\", \"conclusion\": \"timed_out\", \"head_branch\": \"b\","
	        " \"head_sha\": \"f00\", \"head_commit\": {\"message\": \"wip\"},"
	        " \"pull_requests\": [{\"number\": 3}]}}");

	assert_int_equal(ev->kind, HL_EVENT_CHECK_SUITE);
	assert_int_equal(ev->intent, HL_INTENT_CI_FAILURE);
	assert_int_equal(ev->check_suite_id, 5);
	assert_string_equal(ev->commit_message, "wip");
	assert_int_equal(ev->pr_number, 3);
	assert_null(reason_of(ev));
	hl_event_free(ev);
}

static void
test_event_status_states(void **state)
{
	static const char *const fmt =
	        "{" REPO ", " SENDER
	        ", \"sha\": \"aaa\", \"state\": \"%s\", \"context\": \"ci/jenkins\","
	        " \"target_url\": \"https://ci/1\", \"description\": \"Build failed\","
	        " \"commit\": {\"commit\": {\"message\": \"msg\"}},"
	        " \"branches\": [{\"name\": \"other\", \"commit\": {\"sha\": \"bbb\"}},"
	        "  {\"name\": \"mine\", \"commit\": {\"sha\": \"aaa\"}}]}";
	char buf[1024];
	struct hl_event *ev;

	snprintf(buf, sizeof(buf), fmt, "error");
	ev = norm("status", buf);
	assert_int_equal(ev->kind, HL_EVENT_STATUS);
	assert_int_equal(ev->intent, HL_INTENT_CI_FAILURE);
	assert_null(ev->action);
	assert_string_equal(ev->status, "error");
	assert_string_equal(ev->conclusion, "error");
	assert_string_equal(ev->job_name, "ci/jenkins");
	assert_string_equal(ev->branch, "mine");
	assert_string_equal(ev->html_url, "https://ci/1");
	assert_string_equal(ev->commit_message, "msg");
	assert_null(reason_of(ev));
	hl_event_free(ev);

	snprintf(buf, sizeof(buf), fmt, "pending");
	ev = norm("status", buf);
	assert_int_equal(ev->intent, HL_INTENT_TRACK);
	assert_string_equal(reason_of(ev), "not_failure");
	hl_event_free(ev);

	snprintf(buf, sizeof(buf), fmt, "success");
	ev = norm("status", buf);
	assert_int_equal(ev->intent, HL_INTENT_TRACK);
	assert_null(reason_of(ev));
	hl_event_free(ev);
}

static void
test_event_pull_request_fields(void **state)
{
	struct hl_event *ev = norm(
	        "pull_request",
	        "{\"action\": \"closed\", \"number\": 17, " REPO ", " BOT ", \"pull_request\": {"
	        " \"number\": 17, \"title\": \"fix clippy\", \"state\": \"closed\","
	        " \"html_url\": \"https://github.com/Acme/App/pull/17\","
	        " \"head\": {\"ref\": \"healer/fix-1\", \"sha\": \"111\"},"
	        " \"base\": {\"ref\": \"main\", \"sha\": \"000\"}}}");

	assert_int_equal(ev->kind, HL_EVENT_PULL_REQUEST);
	assert_int_equal(ev->intent, HL_INTENT_TRACK);
	assert_int_equal(ev->pr_number, 17);
	assert_string_equal(ev->pr_title, "fix clippy");
	assert_string_equal(ev->branch, "healer/fix-1");
	assert_string_equal(ev->base_branch, "main");
	assert_string_equal(ev->head_sha, "111");
	assert_true(ev->sender_is_bot);
	/* closed without `merged`: how it ended is "closed" */
	assert_string_equal(ev->conclusion, "closed");
	/* healer tracks its own agents' PRs: bots are not filtered for TRACK */
	assert_null(reason_of(ev));
	hl_event_free(ev);

	/* merged, by GitHub's flag or (a trimmed payload) by its time alone;
	 * an open PR has none */
	static const struct {
		const char *action, *pr, *conclusion;
	} ends[] = {
		{ "closed", "\"merged\": true, \"merged_at\": \"2026-12-07T10:00:00Z\"", "merged" },
		{ "closed", "\"merged_at\": \"2026-12-07T10:00:00Z\"", "merged" },
		{ "closed", "\"merged\": false, \"merged_at\": null", "closed" },
		{ "synchronize", "\"merged\": false", NULL },
	};
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		char buf[512];

		snprintf(buf, sizeof(buf),
		         "{\"action\": \"%s\", \"number\": 17, " REPO ", " SENDER
		         ", \"pull_request\": {\"number\": 17, %s}}",
		         ends[i].action, ends[i].pr);
		ev = norm("pull_request", buf);
		if (ends[i].conclusion)
			assert_string_equal(ev->conclusion, ends[i].conclusion);
		else
			assert_null(ev->conclusion);
		hl_event_free(ev);
	}
}

static void
test_event_push_fields(void **state)
{
	struct hl_event *ev = norm(
	        "push", "{\"ref\": \"refs/heads/feat/z\", \"after\": \"222\", " REPO ", " SENDER ","
	                " \"compare\": \"https://github.com/Acme/App/compare/a...b\","
	                " \"head_commit\": {\"message\": \"push msg [skip-healer]\"}}");

	assert_int_equal(ev->kind, HL_EVENT_PUSH);
	assert_int_equal(ev->intent, HL_INTENT_TRACK);
	assert_string_equal(ev->branch, "feat/z");
	assert_string_equal(ev->head_sha, "222");
	assert_string_equal(ev->commit_message, "push msg [skip-healer]");
	assert_null(reason_of(ev));
	hl_event_free(ev);

	ev = norm("push", "{\"ref\": \"refs/tags/v1.0\", \"after\": \"333\", " REPO "}");
	assert_null(ev->branch);
	assert_string_equal(reason_of(ev), "action_not_handled");
	hl_event_free(ev);
}

static void
test_event_issue_comment_command(void **state)
{
	struct hl_event *ev = norm(
	        "issue_comment",
	        "{\"action\": \"created\", " REPO ", " SENDER ", \"issue\": {\"number\": 8,"
	        " \"title\": \"PR title\", \"pull_request\": {\"url\": \"https://api/pulls/8\"}},"
	        " \"comment\": {\"id\": 1001, \"body\": \"thanks\\r\\n/healer fix  the clippy lint \\r\\n\","
	        " \"html_url\": \"https://github.com/Acme/App/pull/8#issuecomment-1001\"}}");

	assert_int_equal(ev->kind, HL_EVENT_ISSUE_COMMENT);
	assert_int_equal(ev->intent, HL_INTENT_COMMAND);
	assert_int_equal(ev->command, HL_CMD_FIX);
	assert_string_equal(ev->command_hint, "the clippy lint");
	assert_int_equal(ev->pr_number, 8);
	assert_string_equal(ev->pr_title, "PR title");
	assert_int_equal(ev->comment_id, 1001);
	assert_null(reason_of(ev));
	hl_event_free(ev);
}

static void
test_event_issue_comment_design_example(void **state)
{
	/* the design document's payload: no sender, the author in comment.user */
	struct hl_event *ev = norm(
	        "issue_comment",
	        "{\"action\": \"created\", \"comment\": {\"body\": \"/healer fix clippy\","
	        " \"user\": {\"login\": \"developer\"}}, \"issue\": {\"number\": 123,"
	        " \"pull_request\": {\"url\": \"...\"}}, \"repository\": {\"full_name\": \"5dlabs/cto\"}}");

	assert_int_equal(ev->command, HL_CMD_FIX);
	assert_string_equal(ev->command_hint, "clippy");
	assert_string_equal(ev->sender, "developer");
	assert_false(ev->sender_is_bot);
	assert_int_equal(ev->pr_number, 123);
	assert_null(reason_of(ev));
	hl_event_free(ev);

	ev = norm("issue_comment",
	          "{\"action\": \"created\", \"comment\": {\"body\": \"/healer retry\","
	          " \"user\": {\"login\": \"5dlabs-rex[bot]\", \"type\": \"Bot\"}},"
	          " \"issue\": {\"number\": 1, \"pull_request\": {}}, " REPO "}");
	assert_true(ev->sender_is_bot);
	assert_string_equal(reason_of(ev), "bot_sender");
	hl_event_free(ev);
}

static void
test_event_issue_comment_not_on_pr(void **state)
{
	struct hl_event *ev =
	        norm("issue_comment",
	             "{\"action\": \"created\", " REPO ", " SENDER ", \"issue\": {\"number\": 9},"
	             " \"comment\": {\"id\": 1002, \"body\": \"/healer fix\"}}");

	assert_int_equal(ev->command, HL_CMD_NONE);
	assert_int_equal(ev->intent, HL_INTENT_NONE);
	assert_int_equal(ev->pr_number, 0);
	assert_string_equal(reason_of(ev), "no_command");
	hl_event_free(ev);
}

/* The start of a review comment by alice on PR 8; its "comment" follows. */
#define REVIEW_COMMENT_ON_PR8 \
	"{\"action\": \"created\", " REPO ", " SENDER ", \"pull_request\": {\"number\": 8},"

/* A comment on a line of the PR's diff gives commands as in the PR's
 * conversation; it is another kind, with keys of its own. */
static void
test_event_review_comment_command(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_event *ev = norm(
	        "pull_request_review_comment",
	        "{\"action\": \"created\", " REPO ", " SENDER ", \"pull_request\": {\"number\": 8,"
	        " \"title\": \"PR title\", \"head\": {\"ref\": \"feat/x\", \"sha\": \"abc\"}},"
	        " \"comment\": {\"id\": 1001, \"body\": \"here:\\n/healer retry pin serde\","
	        " \"author_association\": \"MEMBER\","
	        " \"html_url\": \"https://github.com/Acme/App/pull/8#discussion_r1001\"}}");
	char *key = hl_event_dedup_key(ev);

	(void)state;
	assert_int_equal(ev->kind, HL_EVENT_PULL_REQUEST_REVIEW_COMMENT);
	assert_int_equal(ev->intent, HL_INTENT_COMMAND);
	assert_int_equal(ev->command, HL_CMD_RETRY);
	assert_string_equal(ev->command_hint, "pin serde");
	assert_int_equal(ev->pr_number, 8);
	assert_string_equal(ev->pr_title, "PR title");
	assert_int_equal(ev->comment_id, 1001);
	assert_string_equal(ev->author_association, "MEMBER");
	assert_null(reason_of(ev));
	/* not the key of issue comment 1001 */
	assert_string_equal(key,
	                    "acme/app|pull_request_review_comment|comment=1001|action=created");
	free(key);
	hl_event_free(ev);

	/* where it points begins the hint of a fix or retry: its lines, or
	 * the line it was written on once the diff moved */
	ev = norm("pull_request_review_comment", REVIEW_COMMENT_ON_PR8
	          " \"comment\": {\"id\": 1005, \"body\": \"/healer fix use checked_add\","
	          " \"path\": \"src/lib.rs\", \"line\": 12, \"start_line\": 10}}");
	assert_string_equal(ev->command_hint, "on src/lib.rs lines 10-12: use checked_add");
	hl_event_free(ev);
	ev = norm("pull_request_review_comment", REVIEW_COMMENT_ON_PR8
	          " \"comment\": {\"id\": 1006, \"body\": \"/healer retry\","
	          " \"path\": \"src/lib.rs\", \"line\": null, \"original_line\": 7}}");
	assert_string_equal(ev->command_hint, "on src/lib.rs line 7");
	hl_event_free(ev);
	ev = norm("pull_request_review_comment",
	          REVIEW_COMMENT_ON_PR8 " \"comment\": {\"id\": 1007, \"body\": \"/healer status\","
	                                " \"path\": \"src/lib.rs\", \"line\": 3}}");
	assert_int_equal(ev->command, HL_CMD_STATUS);
	assert_null(ev->command_hint);
	hl_event_free(ev);
	{
		/* a long path is cut on a character's first byte */
		char body[1024], path[400];
		size_t i;

		for (i = 0; i < 299; i++)
			path[i] = 'a';
		memcpy(path + 299, "\xc3\xa9zz", 5); /* "é" straddles byte 300 */
		snprintf(
		        body, sizeof(body),
		        "{\"action\": \"created\", " REPO ", \"pull_request\": {\"number\": 8},"
		        " \"comment\": {\"id\": 1008, \"body\": \"/healer fix\", \"path\": \"%s\"}}",
		        path);
		ev = norm("pull_request_review_comment", body);
		assert_int_equal(strlen(ev->command_hint), 3 + 299);
		hl_event_free(ev);
	}

	ev = norm("pull_request_review_comment",
	          REVIEW_COMMENT_ON_PR8 " \"comment\": {\"id\": 1002, \"body\": \"nit: a typo\"}}");
	assert_int_equal(ev->intent, HL_INTENT_NONE);
	assert_string_equal(reason_of(ev), "no_command");
	hl_event_free(ev);
	ev = norm("pull_request_review_comment",
	          "{\"action\": \"edited\", " REPO ", " SENDER
	          ", \"pull_request\": {\"number\": 8},"
	          " \"comment\": {\"id\": 1003, \"body\": \"/healer fix\"}}");
	assert_string_equal(reason_of(ev), "action_not_handled");
	hl_event_free(ev);
	ev = norm("pull_request_review_comment",
	          "{\"action\": \"created\", " REPO ", " BOT ", \"pull_request\": {\"number\": 8},"
	          " \"comment\": {\"id\": 1004, \"body\": \"/healer fix\"}}");
	assert_string_equal(reason_of(ev), "bot_sender");
	hl_event_free(ev);
	/* without the pull request there is no PR to act on */
	assert_int_equal(norm_err("pull_request_review_comment",
	                          "{\"action\": \"created\", " REPO ", \"comment\": {\"id\": 1}}",
	                          &err),
	                 -HL_EINVAL);
	assert_non_null(strstr(err.msg, "'pull_request'"));
}

static void
test_event_pull_request_review_fields(void **state)
{
	struct hl_event *ev = norm(
	        "pull_request_review",
	        "{\"action\": \"submitted\", " REPO ", " SENDER ", \"review\": {\"id\": 61,"
	        " \"state\": \"changes_requested\", \"body\": \"nope\"},"
	        " \"pull_request\": {\"number\": 4, \"title\": \"t\", \"head\": {\"ref\": \"h\","
	        " \"sha\": \"s\"}, \"base\": {\"ref\": \"main\"}}}");

	assert_int_equal(ev->kind, HL_EVENT_PULL_REQUEST_REVIEW);
	assert_int_equal(ev->intent, HL_INTENT_TRACK);
	assert_string_equal(ev->review_state, "changes_requested");
	assert_int_equal(ev->review_id, 61);
	assert_int_equal(ev->pr_number, 4);
	assert_string_equal(ev->branch, "h");
	assert_null(reason_of(ev));
	hl_event_free(ev);

	/* a review's body may give a command too; dismissing it gives none */
	ev = norm("pull_request_review",
	          "{\"action\": \"submitted\", " REPO ", " SENDER ", \"review\": {\"id\": 62,"
	          " \"state\": \"commented\", \"body\": \"/healer fix the lint\","
	          " \"author_association\": \"COLLABORATOR\"}, \"pull_request\": {\"number\": 4}}");
	assert_int_equal(ev->intent, HL_INTENT_COMMAND);
	assert_int_equal(ev->command, HL_CMD_FIX);
	assert_string_equal(ev->command_hint, "the lint");
	assert_string_equal(ev->author_association, "COLLABORATOR");
	assert_int_equal(ev->pr_number, 4);
	assert_int_equal(ev->comment_id, 0);
	assert_null(reason_of(ev));
	hl_event_free(ev);
	ev = norm("pull_request_review",
	          "{\"action\": \"dismissed\", " REPO ", " SENDER ", \"review\": {\"id\": 62,"
	          " \"body\": \"/healer fix\"}, \"pull_request\": {\"number\": 4}}");
	assert_int_equal(ev->intent, HL_INTENT_TRACK);
	assert_int_equal(ev->command, HL_CMD_NONE);
	hl_event_free(ev);
	ev = norm("pull_request_review",
	          "{\"action\": \"submitted\", " REPO ", " BOT ", \"review\": {\"id\": 63,"
	          " \"body\": \"/healer retry\"}, \"pull_request\": {\"number\": 4}}");
	assert_string_equal(reason_of(ev), "bot_sender");
	hl_event_free(ev);
}

static void
test_event_merge_group_fields(void **state)
{
	struct hl_event *ev = norm(
	        "merge_group",
	        "{\"action\": \"destroyed\", \"reason\": \"invalidated\", " REPO ", " SENDER ","
	        " \"merge_group\": {\"head_sha\": \"mg1\", \"head_ref\":"
	        " \"refs/heads/gh-readonly-queue/main/pr-5-abc\", \"base_ref\": \"refs/heads/main\","
	        " \"head_commit\": {\"message\": \"Merge pull request #5\"}}}");

	assert_int_equal(ev->kind, HL_EVENT_MERGE_GROUP);
	assert_int_equal(ev->intent, HL_INTENT_TRACK);
	assert_string_equal(ev->branch, "gh-readonly-queue/main/pr-5-abc");
	assert_string_equal(ev->base_branch, "main");
	assert_string_equal(ev->commit_message, "Merge pull request #5");
	assert_null(reason_of(ev));
	hl_event_free(ev);
}

static const char *const dependabot =
        "{\"action\": \"created\", " REPO ", " SENDER ", \"alert\": {\"number\": 3,"
        " \"state\": \"open\", \"html_url\": \"https://github.com/Acme/App/security/dependabot/3\","
        " \"dependency\": {\"package\": {\"ecosystem\": \"cargo\", \"name\": \"time\"},"
        "  \"manifest_path\": \"Cargo.lock\"},"
        " \"security_advisory\": {\"ghsa_id\": \"GHSA-1\", \"cve_id\": \"CVE-2020-1\","
        "  \"summary\": \"seg\", \"description\": \"long\", \"severity\": \"high\"},"
        " \"security_vulnerability\": {\"package\": {\"ecosystem\": \"cargo\", \"name\": \"time\"},"
        "  \"severity\": \"high\", \"vulnerable_version_range\": \"< 0.2.23\","
        "  \"first_patched_version\": {\"identifier\": \"0.2.23\"}}}}";

static const char *const code_scanning =
        "{\"action\": \"created\", " REPO ", " SENDER ", \"ref\": \"refs/heads/main\","
        " \"commit_oid\": \"c0\", \"alert\": {\"number\": 4, \"state\": \"open\","
        " \"rule\": {\"id\": \"js/xss\", \"severity\": \"error\", \"security_severity_level\":"
        " \"high\", \"description\": \"XSS\", \"full_description\": \"Cross-site\"},"
        " \"tool\": {\"name\": \"CodeQL\"}, \"most_recent_instance\": {\"location\":"
        " {\"path\": \"src/a.js\"}}}}";

static const char *const secret_scanning =
        "{\"action\": \"created\", " REPO ", " SENDER ", \"alert\": {\"number\": 5,"
        " \"state\": \"open\", \"secret_type\": \"github_pat\","
        " \"secret_type_display_name\": \"GitHub Personal Access Token\"}}";

static const char *const repo_vuln =
        "{\"action\": \"create\", " REPO ", " SENDER ", \"alert\": {\"id\": 91,"
        " \"affected_range\": \">= 2.0.4, < 2.0.6\", \"affected_package_name\": \"rack\","
        " \"fixed_in\": \"2.0.6\", \"external_identifier\": \"CVE-2018-16470\","
        " \"external_reference\": \"https://nvd/CVE\", \"severity\": \"moderate\","
        " \"ghsa_id\": \"GHSA-2\"}}";

static void
test_event_dependabot_alert_fields(void **state)
{
	struct hl_event *ev = norm("dependabot_alert", dependabot);

	assert_int_equal(ev->kind, HL_EVENT_DEPENDABOT_ALERT);
	assert_int_equal(ev->intent, HL_INTENT_SECURITY);
	assert_int_equal(ev->alert_number, 3);
	assert_string_equal(ev->alert_state, "open");
	assert_string_equal(ev->severity, "high");
	assert_string_equal(ev->package_name, "time");
	assert_string_equal(ev->package_ecosystem, "cargo");
	assert_string_equal(ev->manifest_path, "Cargo.lock");
	assert_string_equal(ev->vulnerable_range, "< 0.2.23");
	assert_string_equal(ev->fixed_version, "0.2.23");
	assert_string_equal(ev->cve_id, "CVE-2020-1");
	assert_string_equal(ev->ghsa_id, "GHSA-1");
	assert_string_equal(ev->summary, "seg");
	assert_string_equal(ev->description, "long");
	assert_null(reason_of(ev));
	hl_event_free(ev);
}

static void
test_event_code_scanning_alert_fields(void **state)
{
	struct hl_event *ev = norm("code_scanning_alert", code_scanning);

	assert_int_equal(ev->kind, HL_EVENT_CODE_SCANNING_ALERT);
	assert_int_equal(ev->intent, HL_INTENT_SECURITY);
	assert_string_equal(ev->rule_id, "js/xss");
	/* security_severity_level wins over the rule's generic severity */
	assert_string_equal(ev->severity, "high");
	assert_string_equal(ev->tool_name, "CodeQL");
	assert_string_equal(ev->location_path, "src/a.js");
	assert_string_equal(ev->summary, "XSS");
	assert_string_equal(ev->branch, "main");
	assert_string_equal(ev->head_sha, "c0");
	assert_null(ev->package_name);
	assert_null(reason_of(ev));
	hl_event_free(ev);

	/* without security_severity_level the rule severity is used, and a
	 * refs/pull ref names the PR */
	ev = norm(
	        "code_scanning_alert",
	        "{\"action\": \"created\", " REPO ", \"ref\": \"refs/pull/11/merge\","
	        " \"alert\": {\"number\": 6, \"rule\": {\"id\": \"r\", \"severity\": \"warning\"},"
	        " \"tool\": {\"name\": \"Rubocop\"}}}");
	assert_string_equal(ev->severity, "warning");
	assert_int_equal(ev->pr_number, 11);
	assert_null(ev->branch);
	hl_event_free(ev);
}

static void
test_event_secret_scanning_alert_fields(void **state)
{
	struct hl_event *ev = norm("secret_scanning_alert", secret_scanning);

	assert_int_equal(ev->kind, HL_EVENT_SECRET_SCANNING_ALERT);
	assert_int_equal(ev->intent, HL_INTENT_SECURITY);
	assert_string_equal(ev->secret_type, "GitHub Personal Access Token");
	assert_int_equal(ev->alert_number, 5);
	assert_null(ev->severity);
	assert_null(reason_of(ev));
	hl_event_free(ev);
}

static void
test_event_repository_vulnerability_alert_fields(void **state)
{
	struct hl_event *ev = norm("repository_vulnerability_alert", repo_vuln);

	assert_int_equal(ev->kind, HL_EVENT_REPOSITORY_VULNERABILITY_ALERT);
	assert_int_equal(ev->intent, HL_INTENT_SECURITY);
	assert_int_equal(ev->alert_number, 91);
	assert_string_equal(ev->package_name, "rack");
	assert_string_equal(ev->vulnerable_range, ">= 2.0.4, < 2.0.6");
	assert_string_equal(ev->fixed_version, "2.0.6");
	assert_string_equal(ev->cve_id, "CVE-2018-16470");
	assert_string_equal(ev->ghsa_id, "GHSA-2");
	assert_string_equal(ev->severity, "moderate");
	assert_null(reason_of(ev));
	hl_event_free(ev);
}

static void
test_event_ping(void **state)
{
	struct hl_event *ev = norm("ping", "{\"zen\": \"Keep it logically awesome.\","
	                                   " \"hook_id\": 1}");

	assert_int_equal(ev->kind, HL_EVENT_PING);
	assert_int_equal(ev->intent, HL_INTENT_NONE);
	assert_string_equal(reason_of(ev), "ping");
	assert_null(hl_event_dedup_key(ev));
	hl_event_free(ev);
}

/* ---- alert kinds never confused ---------------------------------------- */

static void
test_event_alert_kinds_distinct(void **state)
{
	static const struct {
		const char *name;
		const char *const *payload;
		enum hl_event_kind kind;
	} cases[] = {
		{ "dependabot_alert", &dependabot, HL_EVENT_DEPENDABOT_ALERT },
		{ "code_scanning_alert", &code_scanning, HL_EVENT_CODE_SCANNING_ALERT },
		{ "secret_scanning_alert", &secret_scanning, HL_EVENT_SECRET_SCANNING_ALERT },
		{ "repository_vulnerability_alert", &repo_vuln,
		  HL_EVENT_REPOSITORY_VULNERABILITY_ALERT },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *pl = parse(*cases[i].payload);
		struct hl_event *ev = norm(cases[i].name, *cases[i].payload);
		json_t *j = hl_event_to_json(ev);
		char *key = hl_event_dedup_key(ev);

		/* the sensor guess, the kind, the JSON and the key all agree */
		assert_string_equal(hl_event_guess_name(pl), cases[i].name);
		assert_int_equal(ev->kind, cases[i].kind);
		assert_string_equal(hl_json_str(j, "kind"), cases[i].name);
		assert_non_null(strstr(key, cases[i].name));
		free(key);
		json_decref(j);
		hl_event_free(ev);
		json_decref(pl);
	}
}

static void
test_event_guess_name_shapes(void **state)
{
	static const struct {
		const char *payload;
		const char *want;
	} cases[] = {
		{ "{\"action\": \"completed\", \"workflow_job\": {}}", "workflow_job" },
		{ "{\"action\": \"completed\", \"workflow_run\": {}}", "workflow_run" },
		{ "{\"action\": \"completed\", \"check_run\": {}}", "check_run" },
		{ "{\"alert\": {\"dependency\": {}}}", "dependabot_alert" },
		{ "{\"alert\": {\"rule\": {}, \"tool\": {}}}", "code_scanning_alert" },
		{ "{\"alert\": {\"rule\": {}}}", NULL },
		{ "{\"alert\": {\"secret_type\": \"x\"}}", "secret_scanning_alert" },
		{ "{\"alert\": {\"affected_package_name\": \"x\"}}",
		  "repository_vulnerability_alert" },
		{ "{\"body\": {\"workflow_job\": {}}}", NULL },
		{ "{\"workflow_job\": null}", NULL },
		{ "{\"alert\": 3}", NULL },
		{ "[1, 2]", NULL },
		{ "{}", NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *pl = json_loads(cases[i].payload, JSON_DECODE_ANY, NULL);
		const char *got = hl_event_guess_name(pl);

		assert_non_null(pl);
		if (cases[i].want)
			assert_string_equal(got, cases[i].want);
		else
			assert_null(got);
		json_decref(pl);
	}
	assert_null(hl_event_guess_name(NULL));
}

/* ---- skip reasons ------------------------------------------------------ */

static struct hl_event *
wf_job_with(const char *action, const char *conclusion, const char *sender_json)
{
	char buf[2048];

	snprintf(buf, sizeof(buf),
	         "{\"action\": \"%s\", " REPO ", %s, \"workflow_job\": {\"id\": 1,"
	         " \"run_id\": 2, \"run_attempt\": 1, \"status\": \"completed\","
	         " \"conclusion\": \"%s\"}}",
	         action, sender_json, conclusion);
	return norm("workflow_job", buf);
}

static void
test_event_skip_action_not_handled(void **state)
{
	struct hl_event *ev = wf_job_with("in_progress", "failure", SENDER);

	assert_string_equal(reason_of(ev), "action_not_handled");
	hl_event_free(ev);
	ev = norm("check_run", "{\"action\": \"rerequested\", " REPO ", \"check_run\": {\"id\": 1,"
	                       " \"conclusion\": \"failure\"}}");
	assert_string_equal(reason_of(ev), "action_not_handled");
	hl_event_free(ev);
	/* a requested_action without an identifier is not a button press */
	ev = norm("check_run", "{\"action\": \"requested_action\", " REPO ","
	                       " \"check_run\": {\"id\": 1}}");
	assert_string_equal(reason_of(ev), "action_not_handled");
	hl_event_free(ev);
	/* another app's button (electron's "lgtm") is not a remediation */
	ev = norm("check_run", "{\"action\": \"requested_action\", " REPO ","
	                       " \"requested_action\": {\"identifier\": \"lgtm|26764\"},"
	                       " \"check_run\": {\"id\": 1}}");
	assert_int_equal(ev->intent, HL_INTENT_ACTION);
	assert_string_equal(reason_of(ev), "action_not_handled");
	hl_event_free(ev);
	assert_true(hl_event_is_remediation_action("rex_remediate"));
	assert_true(hl_event_is_remediation_action("healer_fix"));
	assert_false(hl_event_is_remediation_action("remediate-later"));
	assert_false(hl_event_is_remediation_action(NULL));
	ev = norm("dependabot_alert", "{\"action\": \"dismissed\", " REPO ", \"alert\": {"
	                              "\"number\": 1, \"state\": \"dismissed\"}}");
	assert_string_equal(reason_of(ev), "action_not_handled");
	hl_event_free(ev);
	ev = norm("repository_vulnerability_alert",
	          "{\"action\": \"created\", " REPO ", \"alert\": {\"id\": 1}}");
	assert_string_equal(reason_of(ev), "action_not_handled");
	hl_event_free(ev);
	ev = norm("pull_request", "{\"action\": \"labeled\", " REPO ", \"pull_request\": {}}");
	assert_string_equal(reason_of(ev), "action_not_handled");
	hl_event_free(ev);
}

static void
test_event_skip_not_failure(void **state)
{
	static const char *const not_failures[] = { "cancelled", "skipped", "neutral",
		                                    "action_required", "stale" };
	static const char *const failures[] = { "failure", "timed_out" };
	size_t i;
	struct hl_event *ev;

	for (i = 0; i < sizeof(not_failures) / sizeof(not_failures[0]); i++) {
		ev = wf_job_with("completed", not_failures[i], SENDER);
		assert_int_equal(ev->intent, HL_INTENT_TRACK);
		assert_string_equal(reason_of(ev), "not_failure");
		hl_event_free(ev);
	}
	for (i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
		ev = wf_job_with("completed", failures[i], SENDER);
		assert_int_equal(ev->intent, HL_INTENT_CI_FAILURE);
		assert_null(reason_of(ev));
		hl_event_free(ev);
	}
	/* success is tracked, not skipped */
	ev = wf_job_with("completed", "success", SENDER);
	assert_int_equal(ev->intent, HL_INTENT_TRACK);
	assert_null(reason_of(ev));
	hl_event_free(ev);
}

static void
test_event_skip_repository_not_allowed(void **state)
{
	char *list[] = { "other/repo", "ACME/app", NULL };
	struct hl_config cfg = { 0 };
	struct hl_event *ev = wf_job_with("completed", "failure", SENDER);

	cfg.repository_list = list;
	cfg.n_repositories = 2;
	/* the allowlist compares case-insensitively */
	assert_null(hl_event_skip_reason(ev, &cfg));
	list[1] = "acme/other";
	assert_string_equal(hl_event_skip_reason(ev, &cfg), "repository_not_allowed");
	hl_event_free(ev);
}

static void
test_event_skip_other_installation(void **state)
{
	struct hl_config cfg = { 0 };
	struct hl_event *ev = wf_job_with("completed", "failure", SENDER);

	(void)state;
	ev->installation_id = 42;
	assert_null(hl_event_skip_reason(ev, &cfg)); /* no App configured */
	cfg.github_app_installation_id = "42";
	assert_null(hl_event_skip_reason(ev, &cfg));
	cfg.github_app_installation_id = "7";
	assert_string_equal(hl_event_skip_reason(ev, &cfg), "installation_not_allowed");
	ev->installation_id = 0; /* a repository or organization hook's */
	assert_null(hl_event_skip_reason(ev, &cfg));
	hl_event_free(ev);
}

static void
test_event_skip_bot_sender(void **state)
{
	struct hl_config cfg = { 0 };
	struct hl_event *ev = wf_job_with("completed", "failure", BOT);

	assert_true(ev->sender_is_bot);
	assert_string_equal(hl_event_skip_reason(ev, &cfg), "bot_sender");
	/* still an active task's result: stored for the worker */
	assert_true(hl_event_skip_starts_nothing(ev, "bot_sender"));
	cfg.process_bot_commits = true;
	assert_null(hl_event_skip_reason(ev, &cfg));
	hl_event_free(ev);

	/* sender.type Bot without the [bot] suffix is a bot too */
	ev = wf_job_with("completed", "failure",
	                 "\"sender\": {\"login\": \"ci-robot\", \"type\": \"Bot\"}");
	assert_true(ev->sender_is_bot);
	assert_string_equal(reason_of(ev), "bot_sender");
	hl_event_free(ev);
}

static void
test_event_skip_tag(void **state)
{
	static const char *const messages[] = { "fix [skip-healer]", "x [Healer Skip] y",
		                                "[SKIP-HEALER]", "chore [skip-ci-remediation]" };
	char buf[2048];
	size_t i;
	struct hl_event *ev;

	for (i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
		snprintf(buf, sizeof(buf),
		         "{\"action\": \"completed\", " REPO ", " SENDER ", \"workflow_run\": {"
		         "\"id\": 1, \"conclusion\": \"failure\", \"head_commit\": {\"message\":"
		         " \"%s\"}}}",
		         messages[i]);
		ev = norm("workflow_run", buf);
		assert_string_equal(reason_of(ev), "skip_tag");
		hl_event_free(ev);
	}
	ev = norm("workflow_run", "{\"action\": \"completed\", " REPO ", \"workflow_run\": {"
	                          "\"id\": 1, \"conclusion\": \"failure\", \"head_commit\": {"
	                          "\"message\": \"[skip healer] is not the tag\"}}}");
	assert_null(reason_of(ev));
	hl_event_free(ev);
}

static void
test_event_skip_alert_not_open(void **state)
{
	struct hl_event *ev = norm("secret_scanning_alert",
	                           "{\"action\": \"reopened\", " REPO ", \"alert\": {\"number\": 2,"
	                           " \"state\": \"resolved\", \"secret_type\": \"x\"}}");

	assert_string_equal(reason_of(ev), "alert_not_open");
	hl_event_free(ev);
}

static void
test_event_skip_no_command(void **state)
{
	struct hl_event *ev =
	        norm("issue_comment",
	             "{\"action\": \"created\", " REPO ", " SENDER ", \"issue\": {\"number\": 8,"
	             " \"pull_request\": {}}, \"comment\": {\"id\": 3, \"body\": \"LGTM\"}}");

	assert_string_equal(reason_of(ev), "no_command");
	hl_event_free(ev);
	/* a command from a bot is not obeyed (loops between agents) */
	ev = norm("issue_comment",
	          "{\"action\": \"created\", " REPO ", " BOT ", \"issue\": {\"number\": 8,"
	          " \"pull_request\": {}}, \"comment\": {\"id\": 4, \"body\": \"/healer retry\"}}");
	assert_int_equal(ev->command, HL_CMD_RETRY);
	assert_string_equal(reason_of(ev), "bot_sender");
	/* refused at intake: not stored for the worker as a CI failure's is */
	assert_false(hl_event_skip_starts_nothing(ev, reason_of(ev)));
	{
		/* also when bots' CI failures are processed: that setting is about
		 * commits, and an agent's comment quoting a command must not
		 * start another attempt */
		struct hl_config bots = { .process_bot_commits = true };

		assert_string_equal(hl_event_skip_reason(ev, &bots), "bot_sender");
	}
	hl_event_free(ev);
	/* an edited comment does not run the command again */
	ev = norm("issue_comment",
	          "{\"action\": \"edited\", " REPO ", " SENDER ", \"issue\": {\"number\": 8,"
	          " \"pull_request\": {}}, \"comment\": {\"id\": 4, \"body\": \"/healer retry\"}}");
	assert_string_equal(reason_of(ev), "action_not_handled");
	hl_event_free(ev);
}

static void
test_event_skip_event_not_handled(void **state)
{
	struct hl_event ev = { 0 };

	ev.kind = HL_EVENT_UNKNOWN;
	assert_string_equal(reason_of(&ev), "event_not_handled");
	ev.kind = HL_EVENT_KIND_MAX;
	assert_string_equal(reason_of(&ev), "event_not_handled");
}

/* ---- command parsing --------------------------------------------------- */

static enum hl_comment_command
cmd_of(const char *body, char **hint)
{
	enum hl_comment_command c = HL_CMD_NONE;

	*hint = NULL;
	assert_int_equal(hl_event_parse_command(&c, hint, body), 0);
	return c;
}

static void
test_event_command_parsing(void **state)
{
	char *hint;

	assert_int_equal(cmd_of("/healer fix", &hint), HL_CMD_FIX);
	assert_null(hint);
	assert_int_equal(cmd_of("/healer fix   clippy warnings  ", &hint), HL_CMD_FIX);
	assert_string_equal(hint, "clippy warnings");
	free(hint);
	assert_int_equal(cmd_of("/HEALER retry", &hint), HL_CMD_RETRY);
	assert_null(hint);
	/* retry takes a hint too (contract: /healer retry [hint]) */
	assert_int_equal(cmd_of("/healer retry  pin the toolchain ", &hint), HL_CMD_RETRY);
	assert_string_equal(hint, "pin the toolchain");
	free(hint);
	assert_int_equal(cmd_of("/Healer STATUS\n", &hint), HL_CMD_STATUS);
	assert_int_equal(cmd_of("please stop\n/healer stop now", &hint), HL_CMD_STOP);
	assert_null(hint);
	assert_int_equal(cmd_of("first line\n\n  /healer\tfix\tthe tests\r\nbye", &hint),
	                 HL_CMD_FIX);
	assert_string_equal(hint, "the tests");
	free(hint);
	/* not commands */
	assert_int_equal(cmd_of("please /healer fix", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("/healerfix", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("/healer fixit", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("/healer", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("/healer dance", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("> /healer fix", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("    /healer fix", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("```\n/healer fix\n```", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("```\ncode\n```\n/healer retry", &hint), HL_CMD_RETRY);
	/* a fence closes only with its own character, at least as long, alone */
	assert_int_equal(cmd_of("````md\n```\n/healer stop\n```\n````", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("~~~\n```\n/healer stop\n~~~", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("```\n``` not a close\n/healer stop\n```", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("~~~~\ncode\n~~~~~\n/healer stop", &hint), HL_CMD_STOP);
	assert_int_equal(cmd_of("```sh\nx\n```  \n/healer stop", &hint), HL_CMD_STOP);
	assert_int_equal(cmd_of("```inline```\n/healer stop", &hint), HL_CMD_STOP);
	assert_int_equal(cmd_of("", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of(NULL, &hint), HL_CMD_NONE);
	/* the first command wins */
	assert_int_equal(cmd_of("/healer status\n/healer fix x", &hint), HL_CMD_STATUS);
	assert_null(hint);
}

/* Commands that GitHub shows as code or hides are not obeyed: fences in
 * list items and block quotes, HTML comments, <pre> and the like. */
static void
test_event_command_hidden_or_code(void **state)
{
	char *hint;

	(void)state;
	assert_int_equal(cmd_of("- ```\n  /healer fix in-list-fence\n  ```", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("1. ```\n   /healer fix ol\n   ```", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("* x\n* ~~~\n\n  /healer fix\n", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("2) ````\n   ```\n   /healer stop\n   ````", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("  - ```\n    /healer stop\n", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("> ```\n> /healer stop\n/healer fix\n```", &hint), HL_CMD_FIX);
	assert_int_equal(cmd_of("> - ```\n>   x\n>   ```\n/healer retry", &hint), HL_CMD_RETRY);
	assert_int_equal(cmd_of("<!--\n/healer stop\n-->", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("hi <!-- x\n/healer stop\n--> y", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("<pre>\n/healer fix inpre\n</pre>", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("<PRE class=x>\n/healer fix\n</Pre>", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("<code>\n/healer stop\n</code>", &hint), HL_CMD_NONE);
	/* a fence in a list item closes when the item ends */
	assert_int_equal(cmd_of("- ```\n  x\n  ```\n/healer stop", &hint), HL_CMD_STOP);
	assert_int_equal(cmd_of("- ```\n  x\n/healer stop", &hint), HL_CMD_STOP);
	/* closed HTML comments and elements hide nothing after them */
	assert_int_equal(cmd_of("<!-- note -->\n/healer stop", &hint), HL_CMD_STOP);
	assert_int_equal(cmd_of("<!--\nnote\n-->\n/healer fix the tests", &hint), HL_CMD_FIX);
	assert_string_equal(hint, "the tests");
	free(hint);
	assert_int_equal(cmd_of("<pre>x</pre>\n/healer status", &hint), HL_CMD_STATUS);
	assert_int_equal(cmd_of("<prefix>\n/healer status", &hint), HL_CMD_STATUS);
	/* raw HTML in a paragraph ends with it, and code spans hold none:
	 * what GitHub shows as text is obeyed */
	assert_int_equal(cmd_of("Our template has a stray `<!--` in it.\n\n/healer fix", &hint),
	                 HL_CMD_FIX);
	assert_int_equal(cmd_of("`<!--`\n/healer fix", &hint), HL_CMD_FIX);
	assert_int_equal(cmd_of("use <code> here\n\n/healer fix", &hint), HL_CMD_FIX);
	assert_int_equal(cmd_of("a <pre> b\n\n/healer fix", &hint), HL_CMD_FIX);
	assert_int_equal(cmd_of("a <!-- b\n\n/healer fix", &hint), HL_CMD_FIX);
	/* a block stays hidden across blank lines until its end */
	assert_int_equal(cmd_of("<!--\n\n/healer stop\n-->", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("<pre>\n\n/healer stop\n</pre>", &hint), HL_CMD_NONE);
	assert_int_equal(cmd_of("- item\n\n/healer fix", &hint), HL_CMD_FIX);
	assert_null(hint);
	assert_int_equal(cmd_of("/healer fix", &hint), HL_CMD_FIX);
}

/* ---- dedup keys -------------------------------------------------------- */

static void
test_event_dedup_org_and_repo_hook_equal(void **state)
{
	/* the same job delivered by an org hook (organization + installation)
	 * and by a repo hook (neither), repository name in another case */
	struct hl_event *org = norm(
	        "workflow_job",
	        "{\"action\": \"completed\", \"organization\": {\"login\": \"acme\"},"
	        " \"installation\": {\"id\": 1}, " REPO ", " SENDER ", \"workflow_job\": {"
	        "\"id\": 555, \"run_id\": 4242, \"run_attempt\": 1, \"conclusion\": \"failure\"}}");
	struct hl_event *repo = norm(
	        "workflow_job",
	        "{\"action\": \"completed\", \"repository\": {\"full_name\": \"acme/app\"}, " SENDER
	        ", \"workflow_job\": {\"id\": \"555\", \"run_id\": 4242, \"run_attempt\": 1,"
	        " \"conclusion\": \"failure\"}}");
	struct hl_event *again = norm(
	        "workflow_job",
	        "{\"action\": \"completed\", " REPO ", " SENDER ", \"workflow_job\": {"
	        "\"id\": 555, \"run_id\": 4242, \"run_attempt\": 2, \"conclusion\": \"failure\"}}");
	char *k1 = hl_event_dedup_key(org), *k2 = hl_event_dedup_key(repo);
	char *k3 = hl_event_dedup_key(again);

	assert_non_null(k1);
	assert_string_equal(k1, k2);
	assert_string_equal(k1,
	                    "acme/app|workflow_job|run=4242|attempt=1|job=555|action=completed");
	/* a re-run that fails again is a new failure */
	assert_string_not_equal(k1, k3);
	free(k1);
	free(k2);
	free(k3);
	hl_event_free(org);
	hl_event_free(repo);
	hl_event_free(again);
}

static void
test_event_dedup_keys_by_kind(void **state)
{
	struct hl_event *a = norm("dependabot_alert", dependabot);
	struct hl_event *b = norm("code_scanning_alert", code_scanning);
	struct hl_event *c = norm("issue_comment",
	                          "{\"action\": \"created\", " REPO ", \"issue\": {\"number\": 1},"
	                          " \"comment\": {\"id\": 31337, \"body\": \"x\"}}");
	struct hl_event *d =
	        norm("workflow_job", "{\"action\": \"completed\", " REPO ", \"workflow_job\": {}}");
	char *ka = hl_event_dedup_key(a), *kb = hl_event_dedup_key(b);
	char *kc = hl_event_dedup_key(c);

	assert_string_equal(ka, "acme/app|dependabot_alert|alert=3|action=created");
	assert_string_equal(kb, "acme/app|code_scanning_alert|alert=4|action=created");
	assert_string_equal(kc, "acme/app|issue_comment|comment=31337|action=created");
	/* separators inside values are escaped */
	{
		struct hl_event *e =
		        norm("check_run", "{\"action\": \"requested_action\", " REPO ","
		                          " \"requested_action\": {\"identifier\": \"a|b%c\"},"
		                          " \"check_run\": {\"id\": 2}}");
		char *k = hl_event_dedup_key(e);

		assert_string_equal(
		        k,
		        "acme/app|check_run|check_run=2|requested=a%7Cb%25c|action=requested_action");
		free(k);
		hl_event_free(e);
	}
	/* no job id: no stable identity */
	assert_null(hl_event_dedup_key(d));
	free(ka);
	free(kb);
	free(kc);
	hl_event_free(a);
	hl_event_free(b);
	hl_event_free(c);
	hl_event_free(d);
}

/* An alert's remediation is the alert's, whatever its delivery says
 * happened: created and reopened claim one key, while their dedup keys (each
 * event's identity) stay apart; the kind and the number tell alerts apart. */
static void
test_event_alert_remediation_key_ignores_action(void **state)
{
	json_t *j = parse(dependabot);
	char *text, *ka, *kb, *kc, *da, *db;
	struct hl_event *a = norm("dependabot_alert", dependabot), *b, *c;

	(void)state;
	json_object_set_new(j, "action", json_string("reopened"));
	text = json_dumps(j, JSON_COMPACT);
	b = norm("dependabot_alert", text);
	c = norm("code_scanning_alert", code_scanning);
	ka = hl_event_remediation_key(a);
	kb = hl_event_remediation_key(b);
	kc = hl_event_remediation_key(c);
	da = hl_event_dedup_key(a);
	db = hl_event_dedup_key(b);
	assert_true(hl_event_is_alert(a) && hl_event_is_alert(b) && hl_event_is_alert(c));
	assert_string_equal(ka, "acme/app|dependabot_alert|alert=3");
	assert_string_equal(kb, ka);
	assert_string_equal(kc, "acme/app|code_scanning_alert|alert=4");
	assert_string_equal(db, "acme/app|dependabot_alert|alert=3|action=reopened");
	assert_string_not_equal(da, db);
	/* a second reopening (the alert changed again) is another event, the
	 * same one sent twice (an org's hook and a repository's) is not */
	free(db);
	hl_event_free(b);
	json_object_set_new(json_object_get(j, "alert"), "updated_at",
	                    json_string("2026-12-01T10:00:00Z"));
	free(text);
	text = json_dumps(j, JSON_COMPACT);
	b = norm("dependabot_alert", text);
	db = hl_event_dedup_key(b);
	assert_string_equal(db, "acme/app|dependabot_alert|alert=3|at=2026-12-01T10:00:00Z"
	                        "|action=reopened");
	free(ka);
	free(kb);
	free(kc);
	free(da);
	free(db);
	free(text);
	json_decref(j);
	hl_event_free(a);
	hl_event_free(b);
	hl_event_free(c);
}

static void
test_event_failure_key_links_job_and_check_run(void **state)
{
	/* one failed Actions job, reported as workflow_job and as check_run */
	struct hl_event *job = norm("workflow_job", wf_job_failed);
	struct hl_event *cr = norm(
	        "check_run",
	        "{\"action\": \"completed\", \"repository\": {\"full_name\": \"acme/APP\"},"
	        " \"check_run\": {\"id\": 555, \"conclusion\": \"failure\", \"app\": {\"slug\":"
	        " \"github-actions\"}, \"details_url\":"
	        " \"https://github.com/Acme/App/actions/runs/4242/job/555\"}}");
	struct hl_event *other = norm(
	        "check_run", "{\"action\": \"completed\", " REPO ", \"check_run\": {\"id\": 555,"
	                     " \"conclusion\": \"failure\", \"app\": {\"slug\": \"circleci\"}}}");
	struct hl_event *ok = wf_job_with("completed", "success", SENDER);
	char *k1 = hl_event_failure_key(job), *k2 = hl_event_failure_key(cr);
	char *k3 = hl_event_failure_key(other);

	assert_int_equal(cr->job_id, 555);
	assert_int_equal(cr->run_id, 4242);
	assert_int_equal(other->job_id, 0);
	assert_string_equal(k1, "acme/app|job=555");
	assert_string_equal(k1, k2);
	assert_string_equal(k3, "acme/app|check_run=555");
	/* only failures have a failure key */
	assert_null(hl_event_failure_key(ok));
	free(k1);
	free(k2);
	free(k3);
	hl_event_free(job);
	hl_event_free(cr);
	hl_event_free(other);
	hl_event_free(ok);
}

/* ---- JSON form --------------------------------------------------------- */

static void
test_event_to_json_keys(void **state)
{
	struct hl_event *ev = norm("workflow_job", wf_job_failed);
	json_t *j = hl_event_to_json(ev);

	assert_non_null(j);
	assert_string_equal(hl_json_str(j, "kind"), "workflow_job");
	assert_string_equal(hl_json_str(j, "intent"), "ci_failure");
	assert_string_equal(hl_json_str(j, "failed_step"), "cargo clippy");
	assert_int_equal(hl_json_int(j, "run_id", 0), 4242);
	assert_int_equal(hl_json_int(j, "installation_id", 0), 7);
	/* absent values are left out, not null */
	assert_null(json_object_get(j, "commit_message"));
	assert_null(json_object_get(j, "pr_number"));
	assert_null(json_object_get(j, "sender_is_bot"));
	assert_null(json_object_get(j, "command"));
	json_decref(j);
	hl_event_free(ev);
}

/* ---- errors and odd payloads ------------------------------------------- */

static void
test_event_normalize_errors(void **state)
{
	struct hl_err err = HL_ERR_INIT;
	json_t *pl = parse("{}");
	struct hl_event *ev = NULL;

	assert_int_equal(hl_event_normalize(&ev, "star", pl, &err), -HL_EUNSUPPORTED);
	assert_non_null(strstr(err.msg, "'star'"));
	assert_int_equal(hl_event_normalize(&ev, NULL, pl, &err), -HL_EUNSUPPORTED);
	assert_null(ev);
	json_decref(pl);

	assert_int_equal(norm_err("workflow_job", "{\"workflow_job\": null, " REPO "}", &err),
	                 -HL_EINVAL);
	assert_non_null(strstr(err.msg, "'workflow_job'"));
	assert_int_equal(norm_err("workflow_job", "{\"workflow_job\": {\"id\": 1}}", &err),
	                 -HL_EINVAL);
	assert_non_null(strstr(err.msg, "repository"));
	assert_int_equal(norm_err("workflow_job", "[1]", &err), -HL_EINVAL);
	assert_int_equal(norm_err("workflow_job", "\"text\"", &err), -HL_EINVAL);
	assert_int_equal(norm_err("issue_comment", "{\"comment\": {}, " REPO "}", &err),
	                 -HL_EINVAL);
	assert_int_equal(norm_err("status", "{" REPO "}", &err), -HL_EINVAL);
	assert_int_equal(norm_err("push", "{\"ref\": 5, " REPO "}", &err), -HL_EINVAL);
	assert_int_equal(norm_err("dependabot_alert", "{\"alert\": [], " REPO "}", &err),
	                 -HL_EINVAL);
}

/* The stored event name: every event healer handles and GitHub's others
 * keep their name (the table is searched by bisection: an entry out of
 * order would turn a real event into "other"); a made-up one is "other". */
static void
test_event_stored_name_bounded(void **state)
{
	static const char *const github[] = {
		"branch_protection_rule",
		"check_run",
		"check_suite",
		"code_scanning_alert",
		"create",
		"delete",
		"dependabot_alert",
		"deployment_status",
		"fork",
		"gollum",
		"installation",
		"issue_comment",
		"issues",
		"label",
		"member",
		"merge_group",
		"meta",
		"milestone",
		"package",
		"page_build",
		"ping",
		"public",
		"pull_request",
		"pull_request_review",
		"pull_request_review_comment",
		"push",
		"release",
		"repository",
		"repository_vulnerability_alert",
		"secret_scanning_alert",
		"security_advisory",
		"sponsorship",
		"star",
		"status",
		"team",
		"watch",
		"workflow_dispatch",
		"workflow_job",
		"workflow_run",
	};
	size_t i;
	int k;

	(void)state;
	for (k = 1; k < HL_EVENT_KIND_MAX; k++) {
		const char *n = hl_event_kind_name((enum hl_event_kind)k);
		assert_string_equal(hl_event_stored_name(n), n);
	}
	for (i = 0; i < sizeof(github) / sizeof(github[0]); i++)
		assert_string_equal(hl_event_stored_name(github[i]), github[i]);
	assert_string_equal(hl_event_stored_name("zz_made_up"), "other");
	assert_string_equal(hl_event_stored_name("Workflow_Job"), "other");
	assert_string_equal(hl_event_stored_name(""), "other");
	assert_string_equal(hl_event_stored_name(NULL), "other");
}

/* A repository name becomes API paths used with the token: only names
 * GitHub allows pass, so no traversal reaches /orgs/... with it. */
static void
test_event_repository_must_be_owner_name(void **state)
{
	static const char *const bad[] = {
		"acme/x/../../../orgs/acme/actions/secrets#",
		"acme/x/..",
		"acme/..",
		"acme/.",
		"../acme",
		"acme",
		"/x",
		"acme/",
		"-acme/x",
		"_acme/x",
		"ac.me/x",
		"acme/x#frag",
		"acme/x?q=1",
		"acme/x y",
		"acme/x%2F..",
		"acme/caf\u00e9",
		"a123456789012345678901234567890123456789/x",
		"acme/x\\u0000/../../y", /* not "acme/x" */
	};
	struct hl_err err = HL_ERR_INIT;
	char payload[512];
	struct hl_event *ev;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(payload, sizeof(payload),
		         "{\"action\": \"completed\", \"repository\": {\"full_name\": \"%s\"},"
		         " \"workflow_job\": {\"id\": 1, \"conclusion\": \"failure\"}}",
		         bad[i]);
		if (norm_err("workflow_job", payload, &err) != -HL_EINVAL)
			fail_msg("'%s' was accepted as a repository", bad[i]);
		assert_non_null(strstr(err.msg, "owner/name"));
	}
	/* the longest names GitHub allows, dots, underscores and hyphens */
	ev = norm("workflow_job", "{\"action\": \"completed\", \"repository\": {\"full_name\":"
	                          " \"a12345678901234567890123456789012345678/.git_hub-x.y\"},"
	                          " \"workflow_job\": {\"id\": 1}}");
	assert_string_equal(ev->repository, "a12345678901234567890123456789012345678/.git_hub-x.y");
	hl_event_free(ev);
	/* an Enterprise Managed User's repository (the login "handle_shortcode") */
	ev = norm("workflow_job", "{\"action\": \"completed\", \"repository\": {\"full_name\":"
	                          " \"octocat_acme/widgets\"}, \"workflow_job\": {\"id\": 1}}");
	assert_string_equal(ev->repository, "octocat_acme/widgets");
	hl_event_free(ev);
	/* a ping from an organization hook has no repository; with one it is checked */
	assert_int_equal(norm_err("ping",
	                          "{\"zen\": \"z\", \"repository\": {\"full_name\": \"a/..\"}}",
	                          &err),
	                 -HL_EINVAL);
}

static void
test_event_odd_types_are_absent(void **state)
{
	struct hl_event *ev = norm(
	        "workflow_job",
	        "{\"action\": 3, \"repository\": {\"full_name\": \"a/b\", \"html_url\": 1},"
	        " \"sender\": \"x\", \"installation\": {\"id\": -4},"
	        " \"workflow_job\": {\"id\": \"987\", \"run_id\": \"12x\", \"run_attempt\": 1.0,"
	        " \"name\": {\"x\": 1}, \"conclusion\": [\"failure\"], \"head_branch\": \"\","
	        " \"steps\": {\"name\": \"s\"}}}");

	assert_int_equal(ev->job_id, 987); /* numeric string */
	assert_int_equal(ev->run_id, 0);   /* not a number */
	assert_int_equal(ev->run_attempt, 1);
	assert_int_equal(ev->installation_id, 0);
	assert_null(ev->action);
	assert_null(ev->repository_url);
	assert_null(ev->sender);
	assert_null(ev->job_name);
	assert_null(ev->conclusion);
	assert_null(ev->branch); /* empty strings are absent */
	assert_null(ev->failed_step);
	assert_int_equal(ev->intent, HL_INTENT_TRACK);
	assert_string_equal(reason_of(ev), "action_not_handled");
	hl_event_free(ev);
}

/* Ids that are not whole numbers in range are absent, never another id:
 * 7.9 is not job 7, and every huge id is not INT64_MAX (one key for all). */
static void
test_event_ids_out_of_range_are_absent(void **state)
{
	static const char *const bad[] = { "7.9",
		                           "-3",
		                           "1e19",
		                           "18446744073709551616.0",
		                           "\"99999999999999999999\"",
		                           "\"+7\"",
		                           "\" 7\"",
		                           "\"7\\u00008\"",
		                           "\"0x10\"",
		                           "0" };
	char text[512];
	struct hl_event *ev;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
		         "{\"action\": \"completed\", \"repository\": {\"full_name\": \"a/b\"},"
		         " \"workflow_job\": {\"id\": %s, \"run_id\": 5,"
		         " \"conclusion\": \"failure\"}}",
		         bad[i]);
		ev = norm("workflow_job", text);
		if (ev->job_id != 0)
			fail_msg("id %s read as %lld", bad[i], (long long)ev->job_id);
		hl_event_free(ev);
	}
	ev = norm("workflow_job", "{\"repository\": {\"full_name\": \"a/b\"}, \"workflow_job\":"
	                          " {\"id\": \"9223372036854775807\", \"run_id\": 4.0}}");
	assert_int_equal(ev->job_id, INT64_MAX);
	assert_int_equal(ev->run_id, 4);
	hl_event_free(ev);
	ev = norm(
	        "check_run",
	        "{\"action\": \"completed\", \"repository\": {\"full_name\": \"a/b\"},"
	        " \"check_run\": {\"id\": 5, \"app\": {\"slug\": \"github-actions\"},"
	        " \"details_url\": \"https://github.com/a/b/actions/runs/99999999999999999999/job/5\"}}");
	assert_int_equal(ev->run_id, 0);
	hl_event_free(ev);
}

/* Exercises every entry point on a payload; must never crash or leak. */
static void
exercise(const char *name, json_t *pl)
{
	struct hl_event *ev = NULL;
	struct hl_err err = HL_ERR_INIT;

	(void)hl_event_guess_name(pl);
	if (hl_event_normalize(&ev, name, pl, &err) == 0) {
		json_t *j = hl_event_to_json(ev);
		char *k = hl_event_dedup_key(ev);
		char *f = hl_event_failure_key(ev);

		assert_non_null(j);
		free(f);
		(void)reason_of(ev);
		free(k);
		json_decref(j);
		hl_event_free(ev);
	} else {
		assert_true(err.msg[0] != '\0');
	}
}

/* Replaces each node below node, one at a time, by each odd value. */
static void
mutate_all(const char *name, json_t *root, json_t *node, int depth, long *count)
{
	json_t *odd[5];
	const char *key;
	json_t *child, *saved;
	size_t i, n;

	if (depth > 8)
		return;
	odd[0] = json_null();
	odd[1] = json_string("odd \xc3\xa9");
	odd[2] = json_integer(-1);
	odd[3] = json_array();
	odd[4] = json_object();
	if (json_is_object(node)) {
		void *tmp;
		json_object_foreach_safe(node, tmp, key, child)
		{
			saved = json_incref(child);
			for (i = 0; i < 5; i++) {
				json_object_set(node, key, odd[i]);
				exercise(name, root);
				(*count)++;
			}
			json_object_set(node, key, saved);
			json_decref(saved);
			mutate_all(name, root, json_object_get(node, key), depth + 1, count);
		}
	} else if (json_is_array(node)) {
		n = json_array_size(node);
		for (i = 0; i < n; i++) {
			size_t o;
			saved = json_incref(json_array_get(node, i));
			for (o = 0; o < 5; o++) {
				json_array_set(node, i, odd[o]);
				exercise(name, root);
				(*count)++;
			}
			json_array_set(node, i, saved);
			json_decref(saved);
			mutate_all(name, root, json_array_get(node, i), depth + 1, count);
		}
	}
	for (i = 0; i < 5; i++)
		json_decref(odd[i]);
}

static void
test_event_mutated_payloads_never_crash(void **state)
{
	static const struct {
		const char *name;
		const char *const *text;
	} cases[] = {
		{ "workflow_job", &wf_job_failed },
		{ "dependabot_alert", &dependabot },
		{ "code_scanning_alert", &code_scanning },
		{ "secret_scanning_alert", &secret_scanning },
		{ "repository_vulnerability_alert", &repo_vuln },
	};
	static const char *const names[] = {
		"workflow_job", "workflow_run",     "check_run",
		"check_suite",  "status",           "pull_request",
		"push",         "issue_comment",    "pull_request_review",
		"merge_group",  "dependabot_alert", "ping"
	};
	long count = 0;
	size_t i, k;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *pl = parse(*cases[i].text);

		mutate_all(cases[i].name, pl, pl, 0, &count);
		/* and every payload as every event */
		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			exercise(names[k], pl);
		json_decref(pl);
	}
	assert_true(count > 100);
}

/* The JSON form of an event round-trips: the loop rebuilds a task's event
 * from the store and must see the same event. */
static void
test_event_json_round_trips(void **state)
{
	static const char *const comment =
	        "{\"action\": \"created\", " REPO ", " SENDER ", \"issue\": {\"number\": 7,"
	        " \"pull_request\": {\"url\": \"x\"}}, \"comment\": {\"id\": 99, \"body\":"
	        " \"/healer fix the lint\", \"author_association\": \"OWNER\"}}";
	const char *const cases[][2] = { { "workflow_job", wf_job_failed },
		                         { "issue_comment", comment } };
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		struct hl_event *ev = norm(cases[i][0], cases[i][1]), *back = NULL;
		json_t *a = hl_event_to_json(ev), *b;
		struct hl_err err = HL_ERR_INIT;

		assert_int_equal(hl_event_from_json(&back, a, &err), 0);
		b = hl_event_to_json(back);
		assert_true(json_equal(a, b));
		assert_int_equal(back->kind, ev->kind);
		assert_int_equal(back->intent, ev->intent);
		assert_int_equal(back->command, ev->command);
		assert_int_equal(back->job_id, ev->job_id);
		json_decref(a);
		json_decref(b);
		hl_event_free(ev);
		hl_event_free(back);
	}
	{
		json_t *s = json_string("x");
		struct hl_event *none = NULL;
		assert_int_equal(hl_event_from_json(&none, s, NULL), -HL_EINVAL);
		assert_null(none);
		json_decref(s);
	}
}

/* A string field of the event's identity, or "" (freed). */
static char *
key_or_empty(char *k)
{
	return k ? k : strdup("");
}

/* Normalizes text as event_name from a full and from a pruned parse
 * (hl_event_prune_rules, the webhook path's); both must agree on
 * everything: the result, the error, the event and its identity. */
static void
normalize_both_ways(const char *event_name, const char *text, size_t n)
{
	json_t *full = NULL, *pruned = NULL, *a, *b;
	struct hl_event *e1 = NULL, *e2 = NULL;
	struct hl_err x1 = HL_ERR_INIT, x2 = HL_ERR_INIT;
	char *k1[3], *k2[3];
	int r1, r2, i;

	r1 = hl_json_fast_parse(&full, text, n, &x1);
	r2 = hl_json_fast_parse_pruned(&pruned, text, n, hl_event_prune_rules, &x2);
	assert_int_equal(r1, r2);
	if (r1 < 0)
		return;
	r1 = hl_event_normalize(&e1, event_name, full, &x1);
	r2 = hl_event_normalize(&e2, event_name, pruned, &x2);
	assert_int_equal(r1, r2);
	if (r1 < 0) {
		assert_string_equal(x1.msg, x2.msg);
	} else {
		a = hl_event_to_json(e1);
		b = hl_event_to_json(e2);
		if (!json_equal(a, b)) {
			char *ta = json_dumps(a, JSON_COMPACT), *tb = json_dumps(b, JSON_COMPACT);

			fprintf(stderr, "# %s: %s\n#  pruned: %s\n", event_name, ta, tb);
			free(ta);
			free(tb);
			fail();
		}
		json_decref(a);
		json_decref(b);
		k1[0] = key_or_empty(hl_event_dedup_key(e1));
		k2[0] = key_or_empty(hl_event_dedup_key(e2));
		k1[1] = key_or_empty(hl_event_failure_key(e1));
		k2[1] = key_or_empty(hl_event_failure_key(e2));
		k1[2] = key_or_empty(hl_event_remediation_key(e1));
		k2[2] = key_or_empty(hl_event_remediation_key(e2));
		for (i = 0; i < 3; i++) {
			assert_string_equal(k1[i], k2[i]);
			free(k1[i]);
			free(k2[i]);
		}
	}
	hl_event_free(e1);
	hl_event_free(e2);
	json_decref(full);
	json_decref(pruned);
}

/* The webhook path parses payloads pruned to what normalization reads:
 * on every example GitHub documents, under every event name healer
 * knows, the event is the same as from the whole payload. */
static void
test_event_pruned_payload_normalizes_alike(void **state)
{
	static const char *const names[] = {
		"workflow_job",
		"workflow_run",
		"check_run",
		"check_suite",
		"status",
		"pull_request",
		"pull_request_review",
		"push",
		"issue_comment",
		"ping",
		"dependabot_alert",
		"code_scanning_alert",
		"secret_scanning_alert",
		"repository_vulnerability_alert",
		"merge_group",
	};
	const char *root = getenv("HEALER_SOURCE_ROOT");
	char path[1024], *text;
	json_t *all, *ev, *exs, *ex;
	size_t i, j, k, count = 0;

	(void)state;
	snprintf(path, sizeof(path),
	         "%s/tests/node/node_modules/@octokit/webhooks-examples/api.github.com/index.json",
	         root ? root : ".");
	all = json_load_file(path, 0, NULL);
	assert_non_null(all);
	json_array_foreach(all, i, ev)
	{
		exs = json_object_get(ev, "examples");
		json_array_foreach(exs, j, ex)
		{
			text = json_dumps(ex, JSON_COMPACT);
			assert_non_null(text);
			normalize_both_ways(json_string_value(json_object_get(ev, "name")), text,
			                    strlen(text));
			for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
				normalize_both_ways(names[k], text, strlen(text));
			free(text);
			count++;
		}
	}
	assert_true(count > 200);
	json_decref(all);
}

/* A short secret is redacted from outside text, never from the names a
 * CodeRun works on nor the values GitHub enumerates (an action, a
 * conclusion): the branch, the commit (before: a token "zq7" made
 * feature/zq7-fixtures a branch "feature/[REDACTED]-fixtures" the agent was
 * told to push to). Last: the secrets stay registered. */
static void
test_event_redact_keeps_names(void **state)
{
	struct hl_event *ev;

	(void)state;
	hl_log_add_secret("zq7");
	hl_log_add_secret("0ff1ce");
	hl_log_add_secret("let");
	hl_log_add_secret("ure");
	ev = norm("workflow_job",
	          "{\"action\": \"completed\", " REPO ", " SENDER ", \"workflow_job\": {"
	          "\"id\": 5, \"run_id\": 6, \"name\": \"integration-zq7s\","
	          " \"head_branch\": \"feature/zq7-fixtures\","
	          " \"head_sha\": \"aaaa0ff1ceaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
	          " \"conclusion\": \"failure\", \"status\": \"completed\"}}");
	assert_string_equal(ev->branch, "feature/zq7-fixtures");
	assert_string_equal(ev->head_sha, "aaaa0ff1ceaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_null(strstr(ev->job_name, "zq7"));
	/* what GitHub enumerates decides the event's fate: kept whole */
	assert_string_equal(ev->action, "completed");
	assert_string_equal(ev->status, "completed");
	assert_string_equal(ev->conclusion, "failure");
	hl_event_free(ev);
	/* a branch that is no plain name is outside text like any other */
	ev = norm("workflow_job",
	          "{\"action\": \"completed\", " REPO ", " SENDER ", \"workflow_job\": {"
	          "\"id\": 5, \"run_id\": 6, \"name\": \"x\","
	          " \"head_branch\": \"a b zq7\", \"conclusion\": \"failure\"}}");
	assert_null(strstr(ev->branch, "zq7"));
	hl_event_free(ev);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_workflow_job_fields),
		cmocka_unit_test(test_event_pruned_payload_normalizes_alike),
		cmocka_unit_test(test_event_json_round_trips),
		cmocka_unit_test(test_event_workflow_run_fields),
		cmocka_unit_test(test_event_check_run_failure_fields),
		cmocka_unit_test(test_event_check_run_requested_action),
		cmocka_unit_test(test_event_check_suite_fields),
		cmocka_unit_test(test_event_status_states),
		cmocka_unit_test(test_event_pull_request_fields),
		cmocka_unit_test(test_event_push_fields),
		cmocka_unit_test(test_event_issue_comment_command),
		cmocka_unit_test(test_event_issue_comment_design_example),
		cmocka_unit_test(test_event_issue_comment_not_on_pr),
		cmocka_unit_test(test_event_review_comment_command),
		cmocka_unit_test(test_event_pull_request_review_fields),
		cmocka_unit_test(test_event_merge_group_fields),
		cmocka_unit_test(test_event_dependabot_alert_fields),
		cmocka_unit_test(test_event_code_scanning_alert_fields),
		cmocka_unit_test(test_event_secret_scanning_alert_fields),
		cmocka_unit_test(test_event_repository_vulnerability_alert_fields),
		cmocka_unit_test(test_event_ping),
		cmocka_unit_test(test_event_alert_kinds_distinct),
		cmocka_unit_test(test_event_guess_name_shapes),
		cmocka_unit_test(test_event_skip_action_not_handled),
		cmocka_unit_test(test_event_skip_not_failure),
		cmocka_unit_test(test_event_skip_repository_not_allowed),
		cmocka_unit_test(test_event_skip_other_installation),
		cmocka_unit_test(test_event_skip_bot_sender),
		cmocka_unit_test(test_event_skip_tag),
		cmocka_unit_test(test_event_skip_alert_not_open),
		cmocka_unit_test(test_event_skip_no_command),
		cmocka_unit_test(test_event_skip_event_not_handled),
		cmocka_unit_test(test_event_command_parsing),
		cmocka_unit_test(test_event_command_hidden_or_code),
		cmocka_unit_test(test_event_dedup_org_and_repo_hook_equal),
		cmocka_unit_test(test_event_dedup_keys_by_kind),
		cmocka_unit_test(test_event_alert_remediation_key_ignores_action),
		cmocka_unit_test(test_event_failure_key_links_job_and_check_run),
		cmocka_unit_test(test_event_to_json_keys),
		cmocka_unit_test(test_event_normalize_errors),
		cmocka_unit_test(test_event_repository_must_be_owner_name),
		cmocka_unit_test(test_event_stored_name_bounded),
		cmocka_unit_test(test_event_odd_types_are_absent),
		cmocka_unit_test(test_event_ids_out_of_range_are_absent),
		cmocka_unit_test(test_event_mutated_payloads_never_crash),
		cmocka_unit_test(test_event_redact_keeps_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
