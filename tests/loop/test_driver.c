/*
 * test_driver.c - a driver's step against changes that land while it
 * steps (src/loop/driver.c): a CI result recorded between the step's read
 * and the wait it schedules must still make the task due at once, not at
 * the end of the wait. The store's CI read is wrapped so that the result
 * arrives exactly there. And what a step enqueues for people: each
 * escalation round once per channel (a round replayed by a driver that died
 * before recording it adds nothing; the round after a /healer retry is a
 * new message with its attempts), and OpenMemory's add of a task fixed
 * after its escalation.
 */
#include "base/clock.h"
#include "loop/loop_impl.h"
#include "store/store_front.h"

#include "json/json.h"

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TASK "hl-driver-1"
#define SHA0 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA1 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

struct fixture {
	char dir[64], url[128];
	struct hl_store *s;
	struct hl_config cfg;
	struct hl_loop l;
};

/* The wrapped store: the inject_after_read-th CI read of a step records
 * the job passing at the fixed commit right after it read (as a webhook
 * worker would). */
static struct hl_store_ops wrapped;
static const struct hl_store_ops *original;
static int inject_after_read;

static int
wrapped_ci_latest(struct hl_store_backend *b, struct hl_ci_result_record *out, const char *task_id,
                  int64_t since_ms, const char *branch, struct hl_err *err)
{
	int rc = original->loop.ci_result_latest(b, out, task_id, since_ms, branch, err);
	struct hl_err aerr = HL_ERR_INIT;

	if (inject_after_read && --inject_after_read == 0)
		assert_int_equal(original->loop.ci_result_add(
		                         b,
		                         &(struct hl_ci_result){ .task_id = task_id,
		                                                 .delivery_id = "ci-pass-1",
		                                                 .head_sha = SHA1,
		                                                 .branch = "fix/clippy",
		                                                 .conclusion = "success",
		                                                 .run_id = 9002,
		                                                 .run_attempt = 1,
		                                                 .job_id = 7002,
		                                                 .completed_ms = hl_time_wall_ms(),
		                                                 .source = "webhook" },
		                         &aerr),
		                 0);
	return rc;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct hl_err err = HL_ERR_INIT;

	strcpy(f->dir, "/tmp/hl-test-driver-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->url, sizeof(f->url), "sqlite:%s/healer.db", f->dir);
	if (hl_store_open(&f->s, f->url, &err) < 0) {
		fprintf(stderr, "open: %s\n", err.msg);
		return -1;
	}
	original = f->s->ops;
	wrapped = *original;
	wrapped.loop.ci_result_latest = wrapped_ci_latest;
	f->s->ops = &wrapped;
	inject_after_read = 0;

	f->cfg.lease_seconds = 30;
	f->l.cfg = &f->cfg;
	f->l.store = f->s;
	f->l.lim = (struct hl_loop_limits){ .max_attempts = 3,
		                            .attempt_timeout_ms = 60 * 60000,
		                            .verify_timeout_ms = 30 * 60000 };
	strcpy(f->l.owner, "test");
	pthread_mutex_init(&f->l.lock, NULL);
	pthread_cond_init(&f->l.cond, NULL);
	pthread_cond_init(&f->l.nap_cond, NULL);
	pthread_mutex_init(&f->l.pending_lock, NULL);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	f->s->ops = original;
	hl_store_close(f->s);
	pthread_mutex_destroy(&f->l.lock);
	pthread_cond_destroy(&f->l.cond);
	pthread_cond_destroy(&f->l.nap_cond);
	pthread_mutex_destroy(&f->l.pending_lock);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0) {
		/* a leftover temp directory is harmless */
	}
	free(f);
	return 0;
}

/* A running task whose CodeRun succeeded (its attempt awaits CI), due now. */
static void
seed_verifying_task(struct fixture *f)
{
	struct hl_err err = HL_ERR_INIT;
	int64_t now = hl_time_wall_ms();

	assert_int_equal(hl_store_task_put(f->s,
	                                   &(struct hl_task){ .task_id = TASK,
	                                                      .repository = "acme/gadgets",
	                                                      .run_id = 9001,
	                                                      .job = "clippy",
	                                                      .branch = "main",
	                                                      .target_branch = "fix/clippy",
	                                                      .head_sha = SHA0,
	                                                      .agent = "rex",
	                                                      .failure_type = "rust_clippy",
	                                                      .state = HL_TASK_RUNNING,
	                                                      .attempts = 1,
	                                                      .next_check_ms = now },
	                                   &err),
	                 0);
	assert_int_equal(hl_store_attempt_put(f->s,
	                                      &(struct hl_attempt){ .task_id = TASK,
	                                                            .n = 1,
	                                                            .kind = HL_ATTEMPT_AGENT,
	                                                            .phase = HL_PHASE_VERIFYING,
	                                                            .outcome = HL_OUTCOME_INVALID,
	                                                            .agent = "rex",
	                                                            .coderun_name = "healer-rex-1",
	                                                            .coderun_phase = "Succeeded",
	                                                            .agent_done_ms = now,
	                                                            .started_ms = now - 1000 },
	                                      &err),
	                 0);
}

static struct hl_task_record *
task(struct fixture *f)
{
	struct hl_err err = HL_ERR_INIT;
	struct hl_task_record *t = NULL;

	assert_int_equal(hl_store_task_get(f->s, &t, TASK, &err), 0);
	return t;
}

/* Control: with no CI result, the step waits for CI until the deadline. */
static void
test_verifying_waits_for_ci(void **state)
{
	struct fixture *f = *state;
	struct hl_task_record *t;

	seed_verifying_task(f);
	assert_int_equal(hl_loop_step_task(&f->l, "test/driver0", TASK), 1);
	t = task(f);
	assert_int_equal(t->state, HL_TASK_VERIFYING);
	assert_true(t->next_check_ms > hl_time_wall_ms() + 20 * 60000);
	hl_task_record_free(t);
}

/* The CI result lands between the step's read and its wait: the task is
 * due at once, and the next step judges the attempt by it. */
static void
test_ci_result_during_step_is_not_lost(void **state)
{
	struct fixture *f = *state;
	struct hl_task_record *t;

	seed_verifying_task(f);
	/* after the step's second read: the results since the CodeRun
	 * Succeeded, then a pass since the attempt started */
	inject_after_read = 2;
	assert_int_equal(hl_loop_step_task(&f->l, "test/driver0", TASK), 1);
	assert_int_equal(inject_after_read, 0);
	t = task(f);
	assert_int_equal(t->state, HL_TASK_VERIFYING);
	assert_true(t->next_check_ms > 0 && t->next_check_ms <= hl_time_wall_ms());
	hl_task_record_free(t);

	assert_int_equal(hl_loop_step_task(&f->l, "test/driver0", TASK), 1);
	t = task(f);
	assert_int_equal(t->state, HL_TASK_SUCCEEDED);
	assert_int_equal(t->n_attempts, 1);
	assert_int_equal(t->attempt[0].outcome, HL_OUTCOME_SUCCESS);
	hl_task_record_free(t);
}

/* The job failed again while the agent was still at work (a result
 * completed before its CodeRun Succeeded): no verdict on the finished work,
 * the task keeps waiting for CI; a result completed after it judges. */
static void
test_ci_result_before_success_judges_nothing(void **state)
{
	struct fixture *f = *state;
	struct hl_task_record *t;
	struct hl_err err = HL_ERR_INIT;
	int64_t done;

	f->l.lim.max_attempts = 1; /* a verdict would escalate (no remediator here) */
	seed_verifying_task(f);
	t = task(f);
	done = t->attempt[0].agent_done_ms;
	hl_task_record_free(t);
	assert_int_equal(hl_store_ci_result_add(f->s,
	                                        &(struct hl_ci_result){ .task_id = TASK,
	                                                                .delivery_id = "ci-early",
	                                                                .head_sha = SHA1,
	                                                                .branch = "fix/clippy",
	                                                                .conclusion = "failure",
	                                                                .run_id = 9003,
	                                                                .run_attempt = 1,
	                                                                .job_id = 7003,
	                                                                .completed_ms = done - 500,
	                                                                .source = "webhook" },
	                                        &err),
	                 0);
	assert_int_equal(hl_loop_step_task(&f->l, "test/driver0", TASK), 1);
	t = task(f);
	assert_int_equal(t->state, HL_TASK_VERIFYING);
	assert_int_equal(t->attempt[0].outcome, HL_OUTCOME_INVALID);
	hl_task_record_free(t);

	assert_int_equal(hl_store_ci_result_add(f->s,
	                                        &(struct hl_ci_result){ .task_id = TASK,
	                                                                .delivery_id = "ci-late",
	                                                                .head_sha = SHA1,
	                                                                .branch = "fix/clippy",
	                                                                .conclusion = "success",
	                                                                .run_id = 9004,
	                                                                .run_attempt = 1,
	                                                                .job_id = 7004,
	                                                                .completed_ms = done + 10,
	                                                                .source = "webhook" },
	                                        &err),
	                 0);
	assert_int_equal(hl_loop_step_task(&f->l, "test/driver0", TASK), 1);
	t = task(f);
	assert_int_equal(t->state, HL_TASK_SUCCEEDED);
	assert_int_equal(t->attempt[0].outcome, HL_OUTCOME_SUCCESS);
	hl_task_record_free(t);
}

/* An agent that waits for CI before it ends: the job passed on its push
 * while its CodeRun still ran, the latest result since the attempt
 * started: once it Succeeded, that pass judges at once. */
static void
test_ci_pass_before_success_judges(void **state)
{
	struct fixture *f = *state;
	struct hl_task_record *t;
	struct hl_err err = HL_ERR_INIT;
	int64_t done;

	seed_verifying_task(f);
	t = task(f);
	done = t->attempt[0].agent_done_ms;
	hl_task_record_free(t);
	assert_int_equal(hl_store_ci_result_add(f->s,
	                                        &(struct hl_ci_result){ .task_id = TASK,
	                                                                .delivery_id = "ci-waited",
	                                                                .head_sha = SHA1,
	                                                                .branch = "fix/clippy",
	                                                                .conclusion = "success",
	                                                                .run_id = 9005,
	                                                                .run_attempt = 1,
	                                                                .job_id = 7005,
	                                                                .completed_ms = done - 500,
	                                                                .source = "webhook" },
	                                        &err),
	                 0);
	assert_int_equal(hl_loop_step_task(&f->l, "test/driver0", TASK), 1);
	t = task(f);
	assert_int_equal(t->state, HL_TASK_SUCCEEDED);
	assert_int_equal(t->attempt[0].outcome, HL_OUTCOME_SUCCESS);
	hl_task_record_free(t);
}

/* Attempt n of the task ended agent_failed (or outcome), and the task is
 * running again with it as its current attempt, due now: what a driver
 * finds after the attempt was judged and before its consequence was
 * recorded (n > 3: after a /healer retry of the escalated task). */
static void
seed_judged_attempt(struct fixture *f, int n, enum hl_attempt_outcome outcome)
{
	struct hl_err err = HL_ERR_INIT;
	int64_t now = hl_time_wall_ms();
	char name[32];

	snprintf(name, sizeof(name), "healer-rex-%d", n);
	assert_int_equal(hl_store_task_put(f->s,
	                                   &(struct hl_task){ .task_id = TASK,
	                                                      .repository = "acme/gadgets",
	                                                      .run_id = 9001,
	                                                      .job = "clippy",
	                                                      .workflow = "Gadget CI",
	                                                      .branch = "main",
	                                                      .target_branch = "fix/clippy",
	                                                      .head_sha = SHA0,
	                                                      .agent = "rex",
	                                                      .failure_type = "rust_clippy",
	                                                      .decision_json = "{}",
	                                                      .pr_number = 77,
	                                                      .state = HL_TASK_RUNNING,
	                                                      .attempts = n,
	                                                      .next_check_ms = now },
	                                   &err),
	                 0);
	assert_int_equal(hl_store_attempt_put(f->s,
	                                      &(struct hl_attempt){ .task_id = TASK,
	                                                            .n = n,
	                                                            .kind = HL_ATTEMPT_AGENT,
	                                                            .phase = HL_PHASE_DONE,
	                                                            .outcome = outcome,
	                                                            .agent = "rex",
	                                                            .coderun_name = name,
	                                                            .coderun_phase = "Failed",
	                                                            .reason = "the CodeRun failed",
	                                                            .started_ms = now - 1000,
	                                                            .finished_ms = now },
	                                      &err),
	                 0);
}

/* The task's notifications of kind on channel with ref ("" for none). */
static size_t
count_notifications(struct fixture *f, const char *channel, const char *kind, const char *ref)
{
	struct hl_task_record *t = task(f);
	size_t i, n = 0;

	for (i = 0; i < t->n_notifications; i++) {
		const struct hl_notification_record *r = &t->notification[i];
		if (strcmp(r->channel, channel) == 0 && strcmp(r->kind, kind) == 0 &&
		    (!ref || strcmp(r->ref ? r->ref : "", ref) == 0))
			n++;
	}
	hl_task_record_free(t);
	return n;
}

/* The pending payload of (channel, kind, ref), owned by the caller. */
static char *
payload_of(struct fixture *f, const char *channel, const char *kind, const char *ref)
{
	struct hl_notification *due = NULL;
	struct hl_err err = HL_ERR_INIT;
	char *out = NULL;
	size_t n = 0, i;

	assert_int_equal(hl_store_outbox_due(f->s, &due, 64, &n, hl_time_wall_ms(), &err), 0);
	for (i = 0; i < n; i++) {
		if (!out && strcmp(due[i].channel, channel) == 0 &&
		    strcmp(due[i].kind, kind) == 0 &&
		    strcmp(due[i].ref ? due[i].ref : "", ref) == 0)
			out = strdup(due[i].payload);
		hl_notification_release(&due[i]);
	}
	free(due);
	assert_non_null(out);
	return out;
}

/* An escalation email's message; its row holds the envelope of the
 * settings when it was enqueued with it ({from, rcpt, message}). */
static char *
email_message_of(struct fixture *f, const char *ref)
{
	char *payload = payload_of(f, "email", "escalation", ref), *out;
	json_t *p = json_loads(payload, 0, NULL);

	assert_non_null(p);
	assert_string_equal(hl_json_str_or(p, "rcpt", ""), "oncall@example.com");
	assert_string_equal(hl_json_str_or(p, "from", ""), "healer@example.com");
	out = strdup(hl_json_str_or(p, "message", ""));
	json_decref(p);
	free(payload);
	return out;
}

static const char *const CHANNELS[] = { "discord", "slack", "email", "github" };

static void
configure_channels(struct fixture *f)
{
	f->cfg.max_attempts = 3;
	f->cfg.discord_webhook_url = (char *)"http://127.0.0.1:9/api/webhooks/1/x";
	f->cfg.slack_webhook_url = (char *)"http://127.0.0.1:9/services/T1/B1/x";
	f->cfg.smtp_url = (char *)"smtp://127.0.0.1:9";
	f->cfg.email_to = (char *)"oncall@example.com";
	f->cfg.email_from = (char *)"healer@example.com";
}

/* Escalated after attempt 3: one message per channel; the same round
 * replayed (a driver that died before recording the task escalated) adds
 * none; /healer retry's attempt 4 failing too is a second round on every
 * channel, saying 4 attempts, its email with its own Message-ID; replaying
 * that round adds none either. */
static void
test_each_escalation_round_is_told_once(void **state)
{
	struct fixture *f = *state;
	struct hl_task_record *t;
	char *first, *second, *mail1, *mail2, *id1, *id2;
	size_t i;

	configure_channels(f);
	seed_judged_attempt(f, 1, HL_OUTCOME_AGENT_FAILED);
	seed_judged_attempt(f, 2, HL_OUTCOME_AGENT_FAILED);
	seed_judged_attempt(f, 3, HL_OUTCOME_AGENT_FAILED);
	assert_int_equal(hl_loop_step_task(&f->l, "test/driver0", TASK), 1);
	t = task(f);
	assert_int_equal(t->state, HL_TASK_ESCALATED);
	hl_task_record_free(t);
	for (i = 0; i < 4; i++)
		assert_int_equal(count_notifications(f, CHANNELS[i], "escalation", NULL), 1);

	/* the same round again */
	seed_judged_attempt(f, 3, HL_OUTCOME_AGENT_FAILED);
	assert_int_equal(hl_loop_step_task(&f->l, "test/driver0", TASK), 1);
	for (i = 0; i < 4; i++)
		assert_int_equal(count_notifications(f, CHANNELS[i], "escalation", NULL), 1);

	/* /healer retry: attempt 4 fails too */
	seed_judged_attempt(f, 4, HL_OUTCOME_AGENT_FAILED);
	assert_int_equal(hl_loop_step_task(&f->l, "test/driver0", TASK), 1);
	t = task(f);
	assert_int_equal(t->state, HL_TASK_ESCALATED);
	hl_task_record_free(t);
	for (i = 0; i < 4; i++) {
		assert_int_equal(count_notifications(f, CHANNELS[i], "escalation", NULL), 2);
		assert_int_equal(count_notifications(f, CHANNELS[i], "escalation", "3"), 1);
		assert_int_equal(count_notifications(f, CHANNELS[i], "escalation", "4"), 1);
	}
	first = payload_of(f, "github", "escalation", "3");
	second = payload_of(f, "github", "escalation", "4");
	assert_non_null(strstr(first, "I tried 3 times"));
	assert_non_null(strstr(second, "I tried 4 times"));
	assert_non_null(strstr(second, "healer-rex-4"));
	free(first);
	free(second);
	mail1 = email_message_of(f, "3");
	mail2 = email_message_of(f, "4");
	id1 = strstr(mail1, "Message-ID: ");
	id2 = strstr(mail2, "Message-ID: ");
	assert_non_null(id1);
	assert_non_null(id2);
	*strchr(id1, '\r') = '\0';
	*strchr(id2, '\r') = '\0';
	assert_string_not_equal(id1, id2);
	free(mail1);
	free(mail2);

	/* the second round again */
	seed_judged_attempt(f, 4, HL_OUTCOME_AGENT_FAILED);
	assert_int_equal(hl_loop_step_task(&f->l, "test/driver0", TASK), 1);
	for (i = 0; i < 4; i++)
		assert_int_equal(count_notifications(f, CHANNELS[i], "escalation", NULL), 2);
}

/* An alert's task escalated: every channel names the alert, its namespace
 * and pod (from the stored alert), not "- - on -". */
static void
test_alert_escalation_names_the_alert(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	char *discord, *slack, *mail;

	configure_channels(f);
	seed_judged_attempt(f, 1, HL_OUTCOME_AGENT_FAILED);
	seed_judged_attempt(f, 2, HL_OUTCOME_AGENT_FAILED);
	seed_judged_attempt(f, 3, HL_OUTCOME_AGENT_FAILED);
	assert_int_equal(
	        hl_store_task_put(
	                f->s,
	                &(struct hl_task){ .task_id = TASK,
	                                   .state = HL_TASK_RUNNING,
	                                   .kind = "alert",
	                                   .event_json =
	                                           "{\"key\":\"k1\",\"alert\":{\"labels\":{"
	                                           "\"alertname\":\"KubePodCrashLooping\","
	                                           "\"namespace\":\"prod\",\"pod\":\"api-1\"},"
	                                           "\"annotations\":{\"summary\":\"Pod is crash "
	                                           "looping.\"}}}" },
	                &err),
	        0);
	assert_int_equal(hl_loop_step_task(&f->l, "test/driver0", TASK), 1);
	discord = payload_of(f, "discord", "escalation", "3");
	slack = payload_of(f, "slack", "escalation", "3");
	mail = payload_of(f, "email", "escalation", "3");
	assert_non_null(strstr(discord, "KubePodCrashLooping on prod/api-1"));
	assert_non_null(strstr(discord, "Pod is crash looping."));
	assert_null(strstr(discord, "\"Workflow\""));
	assert_non_null(strstr(slack, "KubePodCrashLooping on prod/api-1"));
	assert_non_null(strstr(mail, "Subject: [healer] remediation failed: KubePodCrashLooping"));
	free(discord);
	free(slack);
	free(mail);
}

/* With OpenMemory: the escalated task is added; fixed after /healer retry,
 * its success is added too (once), not dropped as the same add. */
static void
test_success_after_escalation_reaches_openmemory(void **state)
{
	struct fixture *f = *state;
	struct hl_task_record *t;
	char *add;

	f->cfg.max_attempts = 3;
	f->cfg.openmemory_url = (char *)"http://127.0.0.1:9";
	seed_judged_attempt(f, 1, HL_OUTCOME_AGENT_FAILED);
	seed_judged_attempt(f, 2, HL_OUTCOME_AGENT_FAILED);
	seed_judged_attempt(f, 3, HL_OUTCOME_AGENT_FAILED);
	assert_int_equal(hl_loop_step_task(&f->l, "test/driver0", TASK), 1);
	assert_int_equal(count_notifications(f, "openmemory", "memory_add", NULL), 1);

	seed_judged_attempt(f, 4, HL_OUTCOME_SUCCESS);
	assert_int_equal(hl_loop_step_task(&f->l, "test/driver0", TASK), 1);
	t = task(f);
	assert_int_equal(t->state, HL_TASK_SUCCEEDED);
	hl_task_record_free(t);
	assert_int_equal(count_notifications(f, "openmemory", "memory_add", NULL), 2);
	add = payload_of(f, "openmemory", "memory_add", "succeeded");
	assert_non_null(strstr(add, "retry_success"));
	free(add);

	/* remembered again (a replica, a replay): nothing more */
	hl_loop_remember(&f->l, TASK);
	assert_int_equal(count_notifications(f, "openmemory", "memory_add", NULL), 2);
}

/* A CodeRun not recorded yet waits in memory trimmed to what is read of
 * it: with a 4 MiB status message and spec (a broken controller, a hostile
 * API server, up to LOOP_PENDING_MAX of them) it keeps the message's first
 * 16 KiB and no spec (before, the whole object was kept). */
static void
test_waiting_coderun_is_kept_trimmed(void **state)
{
	struct fixture *f = *state;
	struct hl_err err = HL_ERR_INIT;
	size_t big = 4u << 20;
	char *msg = malloc(big + 1);
	json_t *cr, *e;

	assert_non_null(msg);
	memset(msg, 'm', big);
	msg[big] = '\0';
	cr = json_pack("{s:{s:s, s:{s:s}}, s:{s:s}, s:{s:s, s:s, s:s, s:s}}", "metadata", "name",
	               "healer-rex-waits", "labels", "healer/task-id", TASK, "spec",
	               "promptModification", msg, "status", "phase", "Running", "message", msg,
	               "jobName", "healer-rex-waits-job", "pullRequestUrl",
	               "https://github.com/acme/gadgets/pull/7");
	free(msg);
	assert_non_null(cr);
	/* kept for a task the store has (its attempt not recorded yet) */
	seed_verifying_task(f);
	f->l.pending = json_object();
	assert_int_equal(hl_loop_observe(&f->l, cr, &err), 0);
	e = json_object_get(json_object_get(f->l.pending, "healer-rex-waits"), "cr");
	assert_non_null(e);
	assert_true(strlen(hl_json_str(e, "status.message")) <= 2 * 8192);
	assert_true(strlen(hl_json_str(e, "status.message")) >= 8192);
	assert_string_equal(hl_json_str(e, "status.phase"), "Running");
	assert_string_equal(hl_json_str(e, "status.jobName"), "healer-rex-waits-job");
	assert_string_equal(hl_json_str(e, "status.pullRequestUrl"),
	                    "https://github.com/acme/gadgets/pull/7");
	assert_string_equal(hl_json_str(e, "metadata.labels.healer/task-id"), TASK);
	assert_null(json_object_get(e, "spec"));
	json_decref(f->l.pending);
	f->l.pending = NULL;
	json_decref(cr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_verifying_waits_for_ci, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ci_result_during_step_is_not_lost, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_ci_result_before_success_judges_nothing, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_ci_pass_before_success_judges, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_waiting_coderun_is_kept_trimmed, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_each_escalation_round_is_told_once, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_alert_escalation_names_the_alert, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_success_after_escalation_reaches_openmemory,
		                                setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
