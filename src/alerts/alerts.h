/*
 * alerts.h - alerts from running systems (contract section 14): the
 * Prometheus Alertmanager webhook (a firing pod alert runs the heal flow of
 * seed 004) and ArgoCD notifications (a Degraded application or a failed
 * sync goes to Bolt).
 *
 * Two halves:
 *  - intake (pure, request threads): hl_alerts_parse_alertmanager and
 *    hl_alerts_parse_argocd check a body (a malformed one is HL_EINVAL with
 *    the reason, answered 400) and turn it into one stored delivery per
 *    alert, each with its identity: a delivery id and dedup key that make a
 *    repeat of the same alert a duplicate, and the task id (one task per
 *    alert fingerprint and firing; one per application and episode);
 *  - processing (workers, struct hl_alerts): a firing pod alert writes the
 *    pod's diagnostics as `healer fetch-logs` does under
 *    HEALER_HEAL_WORKSPACE/logs/, classifies the pod's logs, events and
 *    description into a runtime failure type with its evidence line, writes
 *    the analysis HEALER_HEAL_WORKSPACE/alerts/A7-<pod>.md (Summary, Error,
 *    Root Cause, Remediation Required, Relevant Logs) and creates the heal
 *    CodeRun as `healer spawn-remediation` does (heal template, heal-workspace
 *    PVC, labelled for the loop); a resolved alert ends its task (deleting a
 *    CodeRun that has not started); an ArgoCD notification gathers the
 *    application's status, resources and the workload's context and
 *    creates a Bolt CodeRun. Tasks have kind "alert" or "argocd" and the
 *    loop's fields, and their retries come back through the remediator's
 *    kind handlers (hl_alerts_register).
 *
 * Exactly once: every step before the CodeRun is idempotent (files are
 * rewritten atomically); a heal CodeRun (generateName) is looked up by its
 * task and attempt labels before one is created; an ArgoCD CodeRun is named
 * from its key. A struct hl_alerts is immutable after hl_alerts_new and its
 * clients are thread-safe.
 */
#ifndef HL_ALERTS_ALERTS_H
#define HL_ALERTS_ALERTS_H

#include "base/err.h"
#include "config/config.h"
#include "remediate/remediate.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Alerts in one Alertmanager body: as many as a body the route takes can
 * hold (HL_HTTP_MAX_BODY, 25 MiB; http/alerts.c checks the two agree).
 * Alertmanager sends a whole group in one body (max_alerts 0 = all) and
 * does not retry a 4xx, so a body must never be refused for its count; the
 * smallest alert it sends (status, labels with alertname, annotations,
 * startsAt, endsAt, generatorURL, fingerprint) is ~180 bytes, counted here
 * as HL_ALERTS_MIN_ALERT_BYTES. The bound only caps the memory a body of
 * tiny made-up alerts could take (~1.5 KiB per alert while it is stored).
 */
#define HL_ALERTS_MIN_ALERT_BYTES 128
#define HL_ALERTS_MAX_PER_BODY    ((25 * 1024 * 1024) / HL_ALERTS_MIN_ALERT_BYTES)

/* The delivery sources (and event names) of alert deliveries. */
#define HL_ALERTS_SOURCE_ALERTMANAGER "alertmanager"
#define HL_ALERTS_SOURCE_ARGOCD       "argocd"

/* One delivery to store for an incoming alert. */
struct hl_alert_item {
	char delivery_id[HL_DELIVERY_ID_MAX + 1]; /* "am-<32 hex>", "argocd-<32 hex>" */
	char task_id[HL_TASK_ID_MAX];             /* "" for a skipped item */
	char *dedup_key;                          /* malloc'd: the delivery's identity */
	char *body;                               /* malloc'd JSON to store (one alert) */
	size_t body_len;
	const char *source; /* HL_ALERTS_SOURCE_* (static) */
	char action[16];    /* "firing", "resolved", "degraded", "sync_failed", "other" */
	char skip[64];      /* a skip reason ("not_pod_alert", ...) or "" */
	char subject[320];  /* "KubePodCrashLooping prod/web-1", "argocd/shop": for answers */
};

struct hl_alert_batch {
	struct hl_alert_item *items;
	size_t n;
	/* Alertmanager's truncatedAlerts: the alerts of the group its
	 * receiver's max_alerts cut from the body (never seen here; 0 when
	 * none or not an Alertmanager body) */
	int64_t truncated;
};

/*
 * An Alertmanager webhook body (version 4; apis.md section 5): one item per
 * alert. A firing or resolved alert whose labels name a namespace and a pod
 * is a pod alert: key "alertmanager|fp=<fingerprint>|starts=<startsAt>",
 * task id hl_event_task_id(key), dedup key key + "|status=<status>", so a
 * repeat of a firing alert is a duplicate and its resolution is new. Other
 * alerts are stored skipped ("not_pod_alert"), and so are pod alerts whose
 * namespace is not a DNS-1123 label or whose pod is not a DNS-1123
 * subdomain ("invalid_pod_name": names the API cannot have). HL_EINVAL naming the problem
 * for a body that is not such a webhook: not an object, a version other
 * than "4", no alerts array (or an empty one, or one of more than
 * HL_ALERTS_MAX_PER_BODY alerts), an alert that is
 * not an object, without labels, or whose status is not firing/resolved.
 * out->truncated is the body's truncatedAlerts (a count that is not a
 * positive integer is 0).
 * *out is written on success (release with hl_alert_batch_release).
 */
int hl_alerts_parse_alertmanager(struct hl_alert_batch *out, const json_t *body,
                                 struct hl_err *err);

/*
 * An ArgoCD notifications webhook body: {"application": <Application>} (the
 * template `{{toJson .app}}`), {"app": <Application>}, or a flat object
 * {application|app|name, namespace, health|health_status,
 * sync|sync_status, message|operation_message, phase|operation_phase,
 * revision}. One item: "sync_failed" when the operation's phase is Failed or
 * Error, else "degraded" when health is Degraded, else skipped
 * ("not_degraded"). Key "argocd|<namespace>/<name>|<action>|<episode>"
 * (episode: the operation's start and revision, or the health's transition
 * time, or the synced revision, or a hash of the messages). HL_EINVAL for a
 * body without an application name that is a valid Kubernetes name.
 */
int hl_alerts_parse_argocd(struct hl_alert_batch *out, const json_t *body, struct hl_err *err);

/*
 * The settings for the items of an ArgoCD batch: an item whose
 * remediation would go to a repository HEALER_REPOSITORIES does not hold
 * (the service map's repository of the application, else every GitHub
 * repository its spec.source and spec.sources[] name, a GitHub URL naming
 * none included) is skipped ("repository_not_allowed", no task), as a
 * GitHub event of that repository is; one whose pods and logs would be
 * read in a namespace outside HEALER_ALERT_NAMESPACES (the entry's, else
 * spec.destination.namespace) "namespace_not_allowed"; one naming no
 * repository, without HEALER_HEAL_REPOSITORY, "no_repository". Pure.
 */
void hl_alerts_argocd_screen(struct hl_alert_batch *b, const struct hl_config *cfg);

/*
 * The intake's screen of a parsed batch of either source: a pod alert of
 * a namespace outside HEALER_ALERT_NAMESPACES (unset: the Kubernetes
 * system namespaces) is skipped ("namespace_not_allowed", no task), then
 * hl_alerts_argocd_screen. Pure.
 */
void hl_alerts_screen(struct hl_alert_batch *b, const struct hl_config *cfg);

/*
 * Episodes of one ArgoCD key. The key of a Degraded application is its
 * health's lastTransitionTime, which Argo CD before 2.14 does not send (and
 * later ones deprecate), else the synced revision: an application that
 * degrades, recovers and degrades again at the same revision sends the
 * same key. So a key has numbered episodes: episode 0 is the key itself,
 * episode n > 0 the key with "|seq=<n>"; the intake takes the first episode
 * whose task has not ended (none, or queued, running, verifying), so a
 * notification while a task works is a duplicate of it and one after it
 * ended starts a new one.
 *
 * hl_alerts_argocd_episode_task writes the task id of episode seq of key
 * (an item's dedup_key as parsed) into out; -1 when it does not fit.
 * hl_alerts_argocd_episode makes a parsed, not skipped ArgoCD item episode
 * seq (> 0) of its key, once: its dedup key, delivery id, task id and the
 * body's "key". HL_ENOMEM, HL_EINVAL.
 */
int hl_alerts_argocd_episode_task(char *out, size_t size, const char *key, unsigned seq);
int hl_alerts_argocd_episode(struct hl_alert_item *it, unsigned seq, struct hl_err *err);

void hl_alert_batch_release(struct hl_alert_batch *b);

/* True for the delivery sources this module processes. */
bool hl_alerts_owns(const char *source);

struct hl_alerts;

/*
 * Builds the processor: its own dispatcher, the cluster client (when a
 * cluster configuration is found: KUBECONFIG, in-cluster, ~/.kube/config),
 * the classifier and the prompt set. rem (budgets, kind handlers) and cfg,
 * store are borrowed and must outlive it.
 */
int hl_alerts_new(struct hl_alerts **out, const struct hl_config *cfg, struct hl_store *store,
                  struct hl_remediator *rem, struct hl_err *err);
void hl_alerts_free(struct hl_alerts *a);

/* Registers the "alert" and "argocd" kind handlers on the remediator (the
 * loop's retries and queued starts). Before the loop starts. */
int hl_alerts_register(struct hl_alerts *a, struct hl_err *err) HL_MUST_CHECK;

/* What processing a delivery did (for the delivery's record and logs). */
struct hl_alerts_outcome {
	char task_id[HL_TASK_ID_MAX];
	char agent[16];
	char failure_type[48];
	char coderun_name[64];
	char dedup_status[16]; /* "new", "existing", "skipped" */
	char outcome[32];      /* "dispatched", "decided", "existing", "skipped", "queued",
	                          "resolved", "nothing", "refused" (the API refused the CodeRun),
	                          "superseded" (a retry: another task's CodeRun is
	                          active for the pod or application) */
	char reason[256];
};

/*
 * Processes one stored alert delivery (source, action, body as stored by
 * intake; task_id as answered). Errors are transient (the cluster or the
 * store did not answer: HL_EUPSTREAM, HL_EIO, HL_ETIMEOUT, HL_EDB, with a
 * message saying what could not be reached) after which the delivery may be
 * retried, or HL_EINVAL for a body that does not parse.
 */
int hl_alerts_process(struct hl_alerts *a, struct hl_alerts_outcome *out, const char *source,
                      const char *action, const char *task_id, const char *delivery_id,
                      const char *body, size_t len, struct hl_err *err) HL_MUST_CHECK;

#endif
