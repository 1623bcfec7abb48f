/*
 * retention.h - removes the deliveries that ended more than
 * HEALER_RETENTION_DAYS ago (with their normalized events, event keys and
 * redelivery records: hl_store_prune), so the store does not grow for
 * ever. Tasks, attempts, outcomes and notifications, the ledger that
 * memory and the insights learn from, are kept. The delivery counters
 * keep counting what was removed.
 *
 * One thread. A pass runs at start and every hour, only on the replica
 * leading "retention" (hl_store_leader): batches of RETENTION_BATCH
 * deliveries, oldest first, with a pause after each so intake and the
 * workers never wait long for the store, until a batch comes back short
 * or the pass has run RETENTION_PASS_MS (the next pass goes on). A pass
 * that removed them all then gives the free space back to the file
 * system where the store can (hl_store_compact: a SQLite file converted
 * to auto_vacuum incremental shrinks at its next checkpoint),
 * RETENTION_COMPACT pages at a time.
 * Every replica also removes, at start and every hour, the files of its
 * heal workspace (logs/, alerts/) last written before the retention.
 * HEALER_RETENTION_DAYS=0: off.
 */
#ifndef HL_LOOP_RETENTION_H
#define HL_LOOP_RETENTION_H

#include "base/buf.h"
#include "base/err.h"
#include "config/config.h"
#include "store/store.h"

struct hl_retention;

/* Starts the thread; *out is NULL (and 0 returned) when retention is off.
 * cfg and store are borrowed and must outlive it. */
int hl_retention_start(struct hl_retention **out, const struct hl_config *cfg,
                       struct hl_store *store, struct hl_err *err) HL_MUST_CHECK;

/* Stops the thread (after the batch under way) and frees. NULL: no-op. */
void hl_retention_stop(struct hl_retention *r);

/* Appends healer_retention_removed_total (deliveries this replica removed),
 * healer_retention_freed_bytes_total, healer_retention_passes_total{result}
 * and healer_retention_files_removed_total to out; r may be NULL (off). */
void hl_retention_metrics(struct hl_retention *r, struct hl_buf *out);

#endif
