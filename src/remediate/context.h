/*
 * context.h - gathering a failure's context from every configured source in
 * parallel, through one fetch batch per phase.
 *
 * Sources: GitHub (the failed jobs of a run, the job log, the open PR for the
 * branch, the changed files of the head commit or the PR, the check run),
 * ArgoCD (the Application's sync, health, conditions and unhealthy
 * resources, from ARGOCD_SERVER or, for a target that asks, the cluster's
 * Application object; its resource tree for a target that asks), Loki
 * (recent error lines of the service's selector), Prometheus (the service's
 * error rate, by its job), Kubernetes (the pods of the service's workload
 * with their restarts and last termination, and the warning events of
 * those pods), Grafana (annotations of the last hour and panel links) and
 * OpenMemory (similar past failures). What names the service in each source
 * comes from the service map (HEALER_SERVICES_FILE, config.h), else from the
 * repository's short name, or from the caller's target. An unconfigured source
 * is "skipped"; a source that fails or misses the deadline is "failed" and
 * the remediation goes ahead with what arrived - the prompt names what is
 * missing. An answer too large for its cap degrades where the source can
 * ask for less: Loki is asked again for fewer, most recent, lines, and the
 * source's detail and the prompt's Loki section say it was reduced.
 *
 * Phases: everything whose inputs are in the event goes out at once. Only
 * two things wait for an answer: the logs of a workflow_run's failed jobs
 * (the job ids come from the run's job list) and the PR's files when the
 * head commit's files could not be had. So for a workflow_job or check_run
 * the whole context costs one round trip to the slowest source.
 *
 * Not thread-safe per struct hl_context; any number of gathers may run at
 * once on different contexts (the clients are shared and thread-safe).
 */
#ifndef HL_REMEDIATE_CONTEXT_H
#define HL_REMEDIATE_CONTEXT_H

#include "base/buf.h"
#include "base/err.h"
#include "config/config.h"
#include "event/event.h"
#include "net/github.h"
#include "net/kube.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define HL_CONTEXT_MAX_SOURCES 24
#define HL_CONTEXT_NOTE_MAX    240

enum hl_source_state { HL_SOURCE_OK, HL_SOURCE_FAILED, HL_SOURCE_SKIPPED };

struct hl_source_status {
	const char *name; /* static: "github_log", "github_pr", ... */
	enum hl_source_state state;
	int64_t elapsed_ms;
	char detail[240]; /* why it failed or was skipped; "" when ok */
};

struct hl_context {
	struct hl_buf log; /* the failed job's log (tail kept when over the cap) */
	bool log_truncated;
	char *log_job_name;          /* the job the log belongs to, when learned here */
	char *failed_step;           /* learned from the run's job list, when not in the event */
	char *commit_message;        /* the head commit's message (workflow_job and check_run
	                                payloads carry none) */
	json_t *pr;                  /* the open PR object, or NULL */
	json_t *changed_files;       /* array of {filename,status,additions,deletions} */
	int64_t changed_files_total; /* files changed in all: the list's length when it
	                                is whole, the PR's changed_files when it is
	                                not, -1 when more exist but are not counted */
	json_t *argocd;              /* {name,health,sync,message} or NULL */
	json_t *loki_lines;          /* array of strings, each cut to 1 KiB (loki_note) */
	json_t *prometheus;          /* Prometheus data.result or NULL */
	json_t *kube_events;         /* array of {type,reason,object,message,count} */
	json_t *kube_pods;           /* array of {name,namespace,phase,reason,restarts,message}
	                                (hl_context_pod_summary) of the workload */
	json_t *argocd_app;          /* the Application object as read, or NULL */
	json_t *argocd_nodes;        /* its resource tree's nodes (target->argocd_tree), or NULL */
	json_t *grafana;             /* {annotations: N, links: ["`url`"...]} or NULL */
	struct hl_service_view service; /* the names the sources were asked with */
	json_t *memory;                 /* array of {id,content,score} */
	/* retries (hl_context_retry) */
	struct hl_buf agent_output; /* the tail of the previous attempt's pod log */
	json_t *commits;            /* commits since the failing sha: [{sha, message, author}] */
	struct hl_source_status sources[HL_CONTEXT_MAX_SOURCES];
	size_t n_sources;
	int64_t elapsed_ms;
	/* what the Loki lines lost to the caps ("reduced: ..."), "" when nothing:
	 * an answer over 1 MiB is asked again for fewer lines (the most recent) */
	char loki_note[HL_CONTEXT_NOTE_MAX];
};

/* What a later attempt adds to the gathering (contract section 9, retry). */
struct hl_context_retry {
	int64_t current_job_id;  /* the job whose log shows the current failure (0: the event's) */
	const char *agent_pod;   /* the previous attempt's pod, for its output (or NULL) */
	const char *failing_sha; /* compare from here ... */
	const char *head_ref;    /* ... to here (the branch the agents push to) */
};

/* What the running-system sources look at, when the caller knows better
 * than the event's repository (an ArgoCD application, a pod's workload). */
struct hl_context_target {
	const struct hl_service_view *service; /* the names to ask with */
	/* without ARGOCD_SERVER, read the Application object from the cluster
	 * (service->argocd_namespace / service->argocd_app) */
	bool argocd_from_cluster;
	bool argocd_tree; /* with ARGOCD_SERVER, also read the resource tree */
};

struct hl_context_clients {
	const struct hl_config *cfg;
	struct hl_github *github;               /* NULL: GitHub sources skipped */
	struct hl_kube *kube;                   /* NULL: Kubernetes source skipped */
	int64_t timeout_ms;                     /* per source; 0 means 8000 */
	int64_t deadline_ms;                    /* overall, monotonic; 0 means now + 15000 */
	size_t log_cap;                         /* job log cap; 0 means 4 MiB */
	const struct hl_context_retry *retry;   /* NULL for a first attempt */
	const struct hl_context_target *target; /* NULL: the event's repository names all */
};

void hl_context_init(struct hl_context *ctx);
void hl_context_release(struct hl_context *ctx);

/* Gathers what the sources have for ev. Fails only on allocation failure:
 * a source's failure is recorded in ctx->sources. */
int hl_context_gather(struct hl_context *ctx, const struct hl_context_clients *c,
                      const struct hl_event *ev, struct hl_err *err);

/*
 * A pod as the prompt's Kubernetes section shows it: a new object {name,
 * namespace, phase, reason (the waiting reason of a container, else the
 * reason of its last termination, else the pod's), restarts (all
 * containers), message ("last terminated: OOMKilled, exit code 137 at T"
 * for the container that restarted most, and a waiting message)}. NULL on
 * OOM.
 */
json_t *hl_context_pod_summary(const json_t *pod);

/*
 * An ArgoCD Application's summary for the prompt (the prompt data model's
 * argocd object): {app, health, sync, message (the operation's message,
 * else the health message), unhealthy_resources: [{kind, name, namespace,
 * status, message}]} from status.resources (health not Healthy, or not
 * Synced) and, when nodes (a resource tree's nodes) is given, every node
 * whose health is neither Healthy nor absent; at most 50. NULL on OOM.
 */
json_t *hl_context_argocd_summary(const json_t *app, const json_t *nodes);

/* The source statuses as a JSON array [{name,state,elapsed_ms,detail}]. */
json_t *hl_context_sources_json(const struct hl_context *ctx);
const char *hl_source_state_name(enum hl_source_state st);

#endif
