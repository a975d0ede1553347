/*
 * One export run, from the segment to the audience: the engine shared by the
 * background worker and by fb_export_segment(..., wait => true).
 */
#ifndef CONNECTOR_EXPORT_RUN_H
#define CONNECTOR_EXPORT_RUN_H

#include "port/atomics.h"

#include "connector_shim.h"

/* Progress that a waiting caller reads while the run goes on. */
typedef struct ExportProgress
{
	pg_atomic_uint64 rows_read;
	pg_atomic_uint64 rows_sent;
	pg_atomic_uint64 batches;
	pg_atomic_uint64 waiting_for;	/* a run of the same export or audience still going */
	/* written once, when the run ends */
	bool		finished;
	char		status[16];
	char		sqlstate[6];
	char		error[512];
	char		hint[512];		/* of a request refused before it became a run */
} ExportProgress;

/* Set by SIGTERM or SIGUSR2: the run stops at its next step. */
extern volatile sig_atomic_t export_cancel_requested;

/*
 * Set by SIGUSR2, which only intentional stops send (fb_cancel_export, a
 * dropped destination, a waiting caller cancelled): the run is cancelled. A
 * SIGTERM alone comes from a shutdown (or pg_terminate_backend): the run is
 * interrupted and queued again.
 */
extern volatile sig_atomic_t export_stop_intended;

/*
 * Runs a queued (or just created) run to its end, outside any transaction,
 * recording progress per batch and the outcome in connector.runs. Errors are
 * recorded, not raised. progress may be NULL.
 */
extern void run_export(int64 run_id, ExportProgress *progress);

#endif							/* CONNECTOR_EXPORT_RUN_H */
