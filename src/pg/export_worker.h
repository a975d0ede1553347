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

#endif							/* CONNECTOR_EXPORT_WORKER_H */
