/*
 * decisions.h - holding the sensor's ci-failure answer until the decision
 * is made (private to src/http; see decisions.c).
 */
#ifndef HL_HTTP_DECISIONS_H
#define HL_HTTP_DECISIONS_H

#include "base/err.h"
#include "http_impl.h"

#include <jansson.h>
#include <stdbool.h>

struct hl_decision_board;

/* store (borrowed, outlives the board) is read by hl_decisions_recheck. */
int hl_decisions_new(struct hl_decision_board **out, struct hl_store *store, struct hl_err *err);
/* Resumes every waiting request and stops the timer (drain). Idempotent. */
void hl_decisions_release_all(struct hl_decision_board *b);
void hl_decisions_free(struct hl_decision_board *b);

/* Called from the commit callback with r suspended: when the decision is
 * already known, sets r->decision and returns false (resume now); else
 * registers r for at most wait_ms and returns true (the board resumes it). */
bool hl_decisions_wait(struct hl_decision_board *b, struct http_req *r, int wait_ms);

/* Called from the commit callback with r suspended, for a duplicate whose
 * first delivery (r->ireq.answer.duplicate_of, else r->delivery_id) has a
 * task: registers r for at most wait_ms while the reader thread reads the
 * first delivery's decision; when there is none yet, r waits for it as the
 * first call does. r->decision gets its task id, agent, failure type and
 * CodeRun; the board resumes r then, or without them when the wait ends
 * first. Returns false when r was not registered (decided a moment ago:
 * r->decision is set; or the board is stopping): resume it now. */
bool hl_decisions_task_read(struct hl_decision_board *b, struct http_req *r, int wait_ms);

/* Records a decision (JSON text) for the delivery id (id_len bytes of id)
 * and resumes the request waiting for it, if any. */
void hl_decisions_publish(struct hl_decision_board *b, const char *id, size_t id_len,
                          const char *decision_json);

/* Signals may have been lost (the store's listener reconnected): the
 * board's thread soon reads the decision of every waiting request from the
 * store and resumes those already decided. Never blocks on the store. */
void hl_decisions_recheck(struct hl_decision_board *b);
/* Whether a reply without a decision reads the stored one itself: on
 * SQLite (a read in this process); not on a shared store, where a stalled
 * database would hold the request thread, and the reader thread's reads
 * find a decision whose signal was lost within a second anyway. */
bool hl_decisions_reply_reads(const struct hl_decision_board *b);

#endif
