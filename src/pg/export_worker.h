/*
 * Export runs in background workers: one started by the launcher's sweeper
 * for each claimed run, or by fb_export_segment(..., wait => true) for its
 * own request, which it waits for.
 */
#ifndef CONNECTOR_EXPORT_WORKER_H
#define CONNECTOR_EXPORT_WORKER_H

#include "export_request.h"

/* Starts a background worker for a queued run (from the sweeper). */
extern void start_export_worker(int64 run_id);

/* Runs the request in a new background worker and waits, relaying progress. */
extern int64 run_request_and_wait(const ExportRequest *request);

/*
 * Records a call of a saved export that failed its checks as a failed run, in
 * a background worker's transaction (the caller's is about to abort); waits
 * for it. A warning, nothing more, when no worker slot is free.
 */
extern void record_refused_call_apart(int64 export_id, const ErrorData *error);

#endif							/* CONNECTOR_EXPORT_WORKER_H */
