/*
 * The records of exports and their runs (export_records.c, run_records.c,
 * run_queue.c): every statement on connector.exports and connector.runs.
 */
#ifndef CONNECTOR_RUN_RECORDS_H
#define CONNECTOR_RUN_RECORDS_H

#include "export_phases.h"
#include "export_request.h"

/* export_records.c */

/* Saves the configuration and queues a run in the current transaction; returns its id. */
extern int64 save_export_request(const ExportRequest *request);

/*
 * The saved export with this id (export_id > 0) or this segment, destination
 * and audience name, that the current user may change (its owner's member or
 * an admin); false when there is none.
 */
extern bool load_saved_export(int64 export_id, const char *segment, const char *destination,
							  const char *audience_name, SavedExport *saved);
/*
 * Deletes a saved export with its runs and its ledger (refused while a run of
 * it is queued or running); says what stays at Meta.
 */
extern void drop_saved_export(const SavedExport *saved);
/*
 * A queued or running run of the export or of the audience (0 when none),
 * and its status.
 */
extern int64 find_busy_run(int64 export_id, const char *destination, const char *audience_id,
						   char **status);
/* Raises an error when the role has connector.max_queued_runs_per_role runs queued. */
extern void require_room_in_queue(Oid role);

/* The audience the run sends to, for the export's later runs too (its own step). */
extern void record_audience(const Run *run);

/*
 * The member format of the export's ledger (in the caller's step): whether it
 * was written in another one, and recording the one it is written in now.
 */
extern bool ledger_format_changed(int64 export_id, const char *format);
extern void record_ledger_format(int64 export_id, const char *format);

/* run_records.c */

/* Loads the run as it was queued and marks it running; false when it is no longer queued. */
extern bool start_run(int64 run_id, Run *run);

/* The read phase's counts, and the run's session id (its own step). */
extern void record_read(const Run *run);

/* Adds finished batches to the run's counts (in the caller's step). */
extern void record_batch_counts(int64 run_id, bool removing, int64 batches, int64 rows,
								int64 retries, int64 received, int64 invalid);

/*
 * The replace session an earlier run left open on the run's audience, in
 * run->open_session_id and open_session_run (0 when none); returns the export
 * of the run that left it (its own step).
 */
extern int64 find_open_replace_session(Run *run);
/*
 * A replace that ended before its last batch (its session closed now, or
 * still open): the ledger of its export is forgotten (its own step).
 */
extern void record_incomplete_replace(int64 replace_run, bool closed);

/*
 * A call of the export's owner that failed its checks, recorded as a failed
 * run of the saved configuration (its own transaction: the worker's).
 */
extern int64 record_refused_call(int64 export_id, Oid requested_by, const char *sqlstate, const char *error);
/* The audience as Meta reports it after the run (its own step). */
extern void record_audience_status(int64 run_id, const ConnectorAudience *audience);
/*
 * Seconds of run time per batch over the successful runs of the last 30
 * days, for fb_preview_export's estimate; 0 when there is none.
 */
extern double recent_seconds_per_batch(void);
/* The run's end, with a NOTIFY connector_export (its own step). */
extern void record_outcome(int64 run_id, RunStatus status, const char *sqlstate, const char *error);

/* run_queue.c */

/*
 * The run's export and a hash of its audience id (0 when not known yet), and
 * a run of either that is running now (0 when none); false when the run is no
 * longer queued (in the caller's step).
 */
extern bool read_run_turn(int64 run_id, int64 *export_id, int64 *audience_id, int64 *running);

/*
 * A run a shutdown stopped: recorded as interrupted, with a new queued run of
 * the same configuration (its own step). Returns the message recorded.
 */
extern char *record_interrupted_run(int64 run_id);
/* The sweeper's: runs that lost their worker, queued again as the rules say; how many run now. */
extern int64 recover_interrupted_runs(void);

/* The sweeper's: claims up to room queued runs, taking turns between roles; how many. */
extern int	claim_queued_runs(int64 room, int64 **run_ids);

/*
 * The sweeper's, once a day: deletes the finished runs older than `minutes`,
 * except the last run of each export (in the caller's step).
 */
extern void prune_run_history(int minutes);

/* fb_cancel_export: true when the run was still queued or running. */
extern bool cancel_run(int64 run_id);

/* In the caller's step: stops the running exports of a destination that goes. */
extern void stop_destination_exports(int64 destination_id);

#endif							/* CONNECTOR_RUN_RECORDS_H */
