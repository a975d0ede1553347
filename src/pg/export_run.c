/*
 * One export run, from the segment to the audience: the engine shared by the
 * background worker and by fb_export_segment(..., wait => true). run_export
 * is the list of phases, none holding a transaction across HTTP:
 *
 *  1. read (segment_read.c): one REPEATABLE READ transaction reads the
 *     segment as the role that asked, each row normalized and spooled (add)
 *     or sorted by the digest of its values and merged with the export's
 *     ledger (mirror, replace: mirror.c);
 *  2. audience (export_send.c): checked, reused or created at Meta;
 *  3. send (export_send.c): batches from the spool, several requests in
 *     flight, every outcome committed to connector.runs as it comes; then
 *     the ledger of a mirror or replace run (mirror.c).
 *
 * Nothing is sent when the read fails its checks: the profile limit, a
 * replace with no row, a mirror run that would remove too much.
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/buffile.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/pmsignal.h"
#include "utils/elog.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "export_phases.h"
#include "run_progress.h"
#include "requester_scope.h"
#include "run_records.h"

volatile sig_atomic_t export_cancel_requested = false;
volatile sig_atomic_t export_stop_intended = false;

RunResources run_resources;

static void
release_resources(void)
{
	if (run_resources.sender != NULL)
		connector_export_sender_free(run_resources.sender);
	if (run_resources.encoder != NULL)
		connector_export_encoder_free(run_resources.encoder);
	if (run_resources.spool != NULL)
		BufFileClose(run_resources.spool);
	if (run_resources.removals != NULL)
		BufFileClose(run_resources.removals);
	if (run_resources.next_ledger != NULL)
		BufFileClose(run_resources.next_ledger);
	forget_credentials(&run_resources.credentials);
	memset(&run_resources, 0, sizeof(run_resources));
}

/* Polled by the core while requests are in flight: a dead postmaster stops them too. */
bool
export_should_abort(void)
{
	return export_cancel_requested || ProcDiePending || QueryCancelPending || !PostmasterIsAlive();
}

void
raise_if_cancelled(void)
{
	/* Nothing can be recorded any more; the restarted server recovers the run. */
	if (!PostmasterIsAlive())
		proc_exit(1);
	if (export_cancel_requested)
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("export run cancelled")));
	CHECK_FOR_INTERRUPTS();
}

void
begin_step(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

void
end_step(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Rows read of which none can be sent is a mistake (a wrong mapping, a key
 * identifier the segment does not have, every value invalid), not a success:
 * the run fails before any audience is created or touched, saying why.
 */
static void
check_rows_exportable(const Run *run)
{
	StringInfoData reasons;
	int			i;

	if (run->rows_read == 0 || run->rows_exportable > 0)
		return;
	initStringInfo(&reasons);
	for (i = 0; i < CONNECTOR_SKIP_REASONS; i++)
		if (run->skipped[i] > 0)
			appendStringInfo(&reasons, "%s%s " INT64_FORMAT, reasons.len > 0 ? ", " : "",
							 connector_skip_reason_name(i), run->skipped[i]);
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("none of the " INT64_FORMAT " rows read from segment %s can be sent (skipped: %s)",
					run->rows_read, run->segment, reasons.data),
			 errdetail("Nothing was sent; no audience was created or changed."),
			 errhint("fb_normalize(key, value) shows what each column gives; check the mapping and key_identifier of the export.")));
}

static void
check_replace_has_rows(const Run *run)
{
	if (run->rows_kept == 0 && run->mode == EXPORT_REPLACE)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA),
				 errmsg("segment %s has no row to export, so a replace would leave the audience as it is", run->segment),
				 errdetail("Nothing was sent."),
				 errhint("Meta cannot replace an audience with nothing; mode => 'mirror' removes the rows this export sent.")));
}

static void
report_outcome(ExportProgress *progress, RunStatus status, const char *sqlstate, const char *error)
{
	if (progress == NULL)
		return;
	strlcpy(progress->status, run_status_name(status), sizeof(progress->status));
	strlcpy(progress->sqlstate, sqlstate != NULL ? sqlstate : "00000", sizeof(progress->sqlstate));
	strlcpy(progress->error, error != NULL ? error : "", sizeof(progress->error));
	pg_memory_barrier();
	progress->finished = true;
}

/*
 * A worker can end with a FATAL error in the middle of a run (the segment's
 * code may turn exit_on_error on and then fail). Its run is then recorded as
 * failed with that error before the process exits, so that the launcher
 * never re-queues it as if a crash had interrupted it.
 */
static int64 active_run_id = 0;
static ExportProgress *active_progress = NULL;
static char fatal_message[512];
static char fatal_sqlstate[6];
static emit_log_hook_type previous_emit_log_hook = NULL;

static void
remember_fatal_error(ErrorData *edata)
{
	if (edata->elevel >= FATAL && active_run_id != 0)
	{
		strlcpy(fatal_message, edata->message != NULL ? edata->message : "", sizeof(fatal_message));
		strlcpy(fatal_sqlstate, unpack_sql_state(edata->sqlerrcode), sizeof(fatal_sqlstate));
	}
	if (previous_emit_log_hook)
		previous_emit_log_hook(edata);
}

static void
record_lost_run(int code, Datum arg)
{
	int64		run_id = active_run_id;
	char	   *error;

	if (run_id == 0 || !PostmasterIsAlive())
		return;
	active_run_id = 0;
	AbortOutOfAnyTransaction();
	restore_worker_identity();
	error = psprintf("the export worker ended with a fatal error: %s",
					 fatal_message[0] ? fatal_message : "see the server log");
	record_outcome(run_id, RUN_FAILED, fatal_sqlstate[0] ? fatal_sqlstate : "XX000", error);
	report_outcome(active_progress, RUN_FAILED, fatal_sqlstate[0] ? fatal_sqlstate : "XX000", error);
}

static void
watch_for_fatal_errors(int64 run_id, ExportProgress *progress)
{
	static bool registered = false;

	if (!registered)
	{
		previous_emit_log_hook = emit_log_hook;
		emit_log_hook = remember_fatal_error;
		before_shmem_exit(record_lost_run, (Datum) 0);
		registered = true;
	}
	fatal_message[0] = fatal_sqlstate[0] = '\0';
	active_progress = progress;
	active_run_id = run_id;
}

/*
 * One run per export and per audience at a time: a session lock on each,
 * taken before the run starts and held until its worker exits. Tags of our
 * own (field4) never meet the advisory locks of SQL code.
 */
#define TURN_LOCK_EXPORT 0x6678
#define TURN_LOCK_AUDIENCE 0x6679

static bool
take_turn_lock(int64 key, uint16 kind)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) ((uint64) key >> 32), (uint32) key, kind);
	return LockAcquire(&tag, ExclusiveLock, true, true) != LOCKACQUIRE_NOT_AVAIL;
}

static void
release_turn_lock(int64 key, uint16 kind)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) ((uint64) key >> 32), (uint32) key, kind);
	LockRelease(&tag, ExclusiveLock, true);
}

/*
 * Waits until no other run of the run's export or audience is going, then
 * holds both for the rest of the process. A waiting run stays queued (a
 * waiting caller is told for which run it waits); false, with the outcome
 * reported, when it was cancelled meanwhile or asked to stop.
 */
static bool
wait_for_turn(int64 run_id, ExportProgress *progress)
{
	for (;;)
	{
		int64		export_id;
		int64		audience_key;
		int64		running;
		bool		queued;

		if (export_cancel_requested && !export_stop_intended)
		{
			/* A shutdown: the run stays queued for the next start. */
			report_outcome(progress, RUN_INTERRUPTED, "57P01",
						   "the server shut down while the run waited for its turn; it stays queued");
			return false;
		}
		if (export_cancel_requested)
		{
			const char *error = "export run cancelled while it waited for its turn";

			QueryCancelPending = false;
			record_outcome(run_id, RUN_CANCELLED, "57014", error);
			report_outcome(progress, RUN_CANCELLED, "57014", error);
			return false;
		}
		begin_step("connector: waiting for its turn");
		queued = read_run_turn(run_id, &export_id, &audience_key, &running);
		end_step();
		if (!queued)
		{
			report_outcome(progress, RUN_CANCELLED, "57014", "the run was no longer queued");
			return false;
		}
		if (running == 0 && take_turn_lock(export_id, TURN_LOCK_EXPORT))
		{
			if (audience_key == 0 || take_turn_lock(audience_key, TURN_LOCK_AUDIENCE))
				return true;
			release_turn_lock(export_id, TURN_LOCK_EXPORT);
		}
		if (progress != NULL && running != 0)
			pg_atomic_write_u64(&progress->waiting_for, (uint64) running);
		pgstat_report_activity(STATE_IDLE, psprintf("connector: waiting for export run " INT64_FORMAT " to finish",
													running));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 500, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* Raises an error unless the role is still the one that asked (by OID, never by name). */
static void
require_requester(const Run *run)
{
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(run->requested_by)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the role (OID %u) that requested export run " INT64_FORMAT " was dropped",
						run->requested_by, run->run_id),
				 errdetail("A run is never carried out for another role, even one of the same name."),
				 errhint("Export the segment again as a role that exists.")));
}

/* Phases 2 and 3: the audience, the batches of the run's mode, the ledger. */
static void
send_run(Run *run, Destination *destination, ExportProgress *progress)
{
	begin_sending_phase(run);
	ensure_audience(run, destination);
	close_open_replace_session(run);
	if (run->mode == EXPORT_MIRROR)
	{
		send_spool(run, progress, CONNECTOR_UPLOAD_ADD, run_resources.spool, run->rows_kept, run->session_id);
		send_spool(run, progress, CONNECTOR_UPLOAD_REMOVE, run_resources.removals, run->rows_to_remove,
				   run->session_id + 1);
		progress_phase(PHASE_FINISHING, 0);
		record_ledger(run);
	}
	else if (run->mode == EXPORT_REPLACE)
	{
		run->replace_started = true;
		send_spool(run, progress, CONNECTOR_UPLOAD_REPLACE, run_resources.spool, run->rows_kept,
				   run->session_id);
		progress_phase(PHASE_FINISHING, 0);
		record_ledger(run);
	}
	else
		send_spool(run, progress, CONNECTOR_UPLOAD_ADD, run_resources.spool, run->rows_kept,
				   run->session_id);
}

void
run_export(int64 run_id, ExportProgress *progress)
{
	MemoryContext context = CurrentMemoryContext;
	Run			run;

	memset(&run, 0, sizeof(run));
	memset(&run_resources, 0, sizeof(run_resources));
	if (!wait_for_turn(run_id, progress))
		return;
	if (!start_run(run_id, &run))
	{
		report_outcome(progress, RUN_CANCELLED, "57014", "the run was no longer queued");
		return;
	}
	watch_for_fatal_errors(run_id, progress);
	progress_begin(run_id, run.requested_by);
	progress_phase(PHASE_READING, 0);

	PG_TRY();
	{
		Destination *destination;
		Oid			saved_user;
		int			saved_context;

		/* Grants are checked as the role that asked, at the time of the run. */
		GetUserIdAndSecContext(&saved_user, &saved_context);
		begin_step("connector: loading the destination");
		require_requester(&run);
		SetUserIdAndSecContext(run.requested_by, saved_context | SECURITY_LOCAL_USERID_CHANGE);
		{
			/* Both outlive this step's transaction. */
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			destination = load_usable_destination(run.destination_name);
			run_resources.credentials = open_credentials(destination);
			MemoryContextSwitchTo(old);
		}
		SetUserIdAndSecContext(saved_user, saved_context);
		end_step();
		run.unhashed_keys_allowed = destination->unhashed_keys_allowed;

		if (!pg_strong_random(&run.session_id, sizeof(run.session_id)))
			elog(ERROR, "could not generate a session id");
		/* Positive, and room for the removal session of a mirror run. */
		run.session_id = (run.session_id & INT64CONST(0x3FFFFFFFFFFFFFFF)) | 1;

		/*
		 * A replace of this export that ended before its last batch left the
		 * audience with part of its rows: the ledger no longer describes it.
		 */
		if (find_open_replace_session(&run) == run.export_id && run.open_session_id != 0)
			record_incomplete_replace(run.open_session_run, false);
		read_segment(&run, progress);
		record_read(&run);
		check_rows_exportable(&run);
		check_replace_has_rows(&run);
		check_mirror_removal(&run);
		/* An empty segment adds nothing: Meta is not even asked. */
		if (run.mode != EXPORT_ADD || run.rows_read > 0)
		{
			send_run(&run, destination, progress);
			progress_phase(PHASE_FINISHING, 0);
			read_audience_status(&run);
		}
		release_resources();
		record_outcome(run_id, RUN_SUCCEEDED, NULL, NULL);
		report_outcome(progress, RUN_SUCCEEDED, NULL, NULL);
	}
	PG_CATCH();
	{
		ErrorData  *error;
		char	   *sqlstate;
		RunStatus	status;
		bool		timed_out;

		MemoryContextSwitchTo(context);
		error = CopyErrorData();
		FlushErrorState();
		timed_out = requester_statement_timed_out();
		/*
		 * A stop asked for (fb_cancel_export, pg_cancel_backend) cancels the
		 * run; a SIGTERM alone is a shutdown, which interrupts it: it is
		 * queued again. The requester's statement_timeout fails it.
		 */
		if (export_cancel_requested && !export_stop_intended)
			status = RUN_INTERRUPTED;
		else if (error->sqlerrcode == ERRCODE_QUERY_CANCELED && !timed_out)
			status = RUN_CANCELLED;
		else
			status = RUN_FAILED;
		/* A cancel is answered by this outcome: it must not interrupt recording it. */
		QueryCancelPending = false;
		AbortOutOfAnyTransaction();
		restore_worker_identity();
		if (status != RUN_INTERRUPTED && close_own_replace_session(&run))
			error->message = psprintf("%s; its replace session at Meta was closed, so the audience holds the rows"
									  " this run sent until the export runs again", error->message);
		release_resources();
		sqlstate = pstrdup(unpack_sql_state(error->sqlerrcode));
		ereport(LOG,
				(errmsg("connector: export run " INT64_FORMAT " %s: %s", run_id, run_status_name(status),
						error->message)));
		if (status == RUN_INTERRUPTED)
		{
			char	   *message = record_interrupted_run(run_id);

			report_outcome(progress, status, "57P01", message);
		}
		else
		{
			record_outcome(run_id, status, sqlstate, error->message);
			report_outcome(progress, status, sqlstate, error->message);
		}
	}
	PG_END_TRY();
	progress_end();
	active_run_id = 0;
}
