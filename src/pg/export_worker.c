/*
 * Export runs in background workers. fb_export_segment(..., wait => true)
 * starts a dynamic worker for its run and waits for it, relaying progress as
 * NOTICEs: batches commit in the worker's own transactions, no transaction
 * of the caller's stays open across HTTP, and no shared_preload_libraries is
 * needed (a dynamic worker only needs a free max_worker_processes slot).
 */
#include "postgres.h"

#include <malloc.h>

#include <signal.h>

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "module.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

#include "export_worker.h"
#include "launcher.h"
#include "privileged.h"
#include "requester_scope.h"
#include "run_records.h"
#include "settings.h"

PGDLLEXPORT void connector_export_worker_main(Datum main_arg);

/* What a worker started for a waiting caller finds in its DSM segment. */
typedef struct WaitedRun
{
	ExportProgress progress;
	pg_atomic_uint64 run_id;	/* 0 until the run is saved */
	ExportRequest request;		/* last: its mapping has a flexible length */
} WaitedRun;

/* What a worker started to record a refused call finds in its DSM segment. */
typedef struct RefusedCall
{
	int64		export_id;
	Oid			requested_by;
	char		sqlstate[6];
	char		error[1024];
} RefusedCall;

/* bgw_extra of an export worker. */
typedef struct WorkerExtra
{
	Oid			database;
	Oid			user;			/* connects as the extension's owner */
	int64		run_id;			/* 0: the run is in the DSM segment's request */
	bool		refused_call;	/* the DSM segment holds a RefusedCall to record */
} WorkerExtra;

static void
handle_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	export_cancel_requested = true;
	/* Also cancels the segment's own query, wherever it waits or loops. */
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

/* Only intentional stops send it: the run is cancelled, not interrupted. */
static void
handle_sigusr2(SIGNAL_ARGS)
{
	export_stop_intended = true;
	handle_sigterm(postgres_signal_arg);
}

static void
apply_settings(const char *settings)
{
	char	   *copy = pstrdup(settings);
	char	   *line;
	char	   *next;

	for (line = copy; line != NULL && *line != '\0'; line = next)
	{
		char	   *tab = strchr(line, '\t');

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (tab == NULL)
			continue;
		*tab = '\0';
		SetConfigOption(line, tab + 1, PGC_SUSET, PGC_S_SESSION);
	}
}

/*
 * Saves the waiting caller's request; a refusal (another role's export, an
 * unknown destination) is handed to the caller as its error. 0 then.
 */
static int64
save_waited_request(WaitedRun *waited)
{
	MemoryContext context = CurrentMemoryContext;
	int64		run_id = 0;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		run_id = save_export_request(&waited->request);
		PopActiveSnapshot();
		CommitTransactionCommand();
		pg_atomic_write_u64(&waited->run_id, (uint64) run_id);
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(context);
		error = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		strlcpy(waited->progress.status, "refused", sizeof(waited->progress.status));
		strlcpy(waited->progress.sqlstate, unpack_sql_state(error->sqlerrcode), sizeof(waited->progress.sqlstate));
		strlcpy(waited->progress.error, error->message, sizeof(waited->progress.error));
		strlcpy(waited->progress.hint, error->hint != NULL ? error->hint : "", sizeof(waited->progress.hint));
		pg_memory_barrier();
		waited->progress.finished = true;
		run_id = 0;
	}
	PG_END_TRY();
	return run_id;
}

/*
 * Records a refused call in a transaction of its own, which does not wait
 * long for the caller's locks (the caller waits for this worker).
 */
static void
record_refused_call_here(dsm_segment *segment)
{
	RefusedCall *call = dsm_segment_address(segment);

	SetConfigOption("lock_timeout", "5s", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("statement_timeout", "10s", PGC_SUSET, PGC_S_SESSION);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "connector: recording a refused export call");
	(void) record_refused_call(call->export_id, call->requested_by, call->sqlstate, call->error);
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
connector_export_worker_main(Datum main_arg)
{
	WorkerExtra extra;
	dsm_segment *segment = NULL;
	WaitedRun  *waited = NULL;
	int64		run_id;

	memcpy(&extra, MyBgworkerEntry->bgw_extra, sizeof(extra));
	/*
	 * One malloc arena for the process: batch bodies built on the core's
	 * thread then reuse what the sorts freed, instead of growing an arena of
	 * their own beside it.
	 */
	mallopt(M_ARENA_MAX, 1);
	pqsignal(SIGTERM, handle_sigterm);
	pqsignal(SIGUSR2, handle_sigusr2);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(extra.database, extra.user, 0);
	/* Dates reach the normalizers in one form, whatever the server's default. */
	SetConfigOption("datestyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION);
	/* It runs as the extension owner: nothing of anyone else's may be resolved. */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("application_name", "connector export", PGC_USERSET, PGC_S_SESSION);
	pgstat_report_appname("connector export");
	remember_worker_identity();

	if (extra.refused_call)
	{
		segment = dsm_attach(DatumGetUInt32(main_arg));
		if (segment != NULL)
		{
			record_refused_call_here(segment);
			dsm_detach(segment);
		}
		return;
	}
	run_id = extra.run_id;
	if (run_id == 0)
	{
		segment = dsm_attach(DatumGetUInt32(main_arg));
		if (segment == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("connector: the waiting session of this export is gone")));
		waited = dsm_segment_address(segment);
		apply_settings(waited->request.settings);

		run_id = save_waited_request(waited);
		if (run_id == 0)
		{
			dsm_detach(segment);
			return;
		}
	}
	run_export(run_id, waited != NULL ? &waited->progress : NULL);
	if (segment != NULL)
		dsm_detach(segment);
	wake_launcher();
}

static void
describe_worker(BackgroundWorker *worker, int64 run_id)
{
	WorkerExtra extra;

	memset(worker, 0, sizeof(*worker));
	memset(&extra, 0, sizeof(extra));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker->bgw_library_name, "connector", BGW_MAXLEN);
	strlcpy(worker->bgw_function_name, "connector_export_worker_main", BGW_MAXLEN);
	strlcpy(worker->bgw_type, "connector export", BGW_MAXLEN);
	extra.database = MyDatabaseId;
	extra.user = extension_owner();
	extra.run_id = run_id;
	memcpy(worker->bgw_extra, &extra, sizeof(extra));
}

void
start_export_worker(int64 run_id)
{
	BackgroundWorker worker;

	describe_worker(&worker, run_id);
	snprintf(worker.bgw_name, BGW_MAXLEN, "connector export run " INT64_FORMAT, run_id);
	if (!RegisterDynamicBackgroundWorker(&worker, NULL))
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("no background worker slot for export run " INT64_FORMAT ": it stays queued", run_id),
				 errhint("Raise max_worker_processes.")));
}

static void
start_worker(dsm_segment *segment, BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	describe_worker(&worker, 0);
	snprintf(worker.bgw_name, BGW_MAXLEN, "connector export for PID %d", MyProcPid);
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(segment));
	worker.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&worker, handle))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a background worker for the export"),
				 errhint("Raise max_worker_processes, or wait for other background workers to finish.")));
}

void
record_refused_call_apart(int64 export_id, const ErrorData *error)
{
	dsm_segment *segment = dsm_create(sizeof(RefusedCall), 0);
	RefusedCall *call = dsm_segment_address(segment);
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	WorkerExtra extra;

	memset(call, 0, sizeof(*call));
	call->export_id = export_id;
	call->requested_by = GetUserId();
	strlcpy(call->sqlstate, unpack_sql_state(error->sqlerrcode), sizeof(call->sqlstate));
	strlcpy(call->error, error->message != NULL ? error->message : "", sizeof(call->error));

	describe_worker(&worker, 0);
	memcpy(&extra, worker.bgw_extra, sizeof(extra));
	extra.refused_call = true;
	memcpy(worker.bgw_extra, &extra, sizeof(extra));
	snprintf(worker.bgw_name, BGW_MAXLEN, "connector record for PID %d", MyProcPid);
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(segment));
	worker.bgw_notify_pid = MyProcPid;
	if (RegisterDynamicBackgroundWorker(&worker, &handle))
		(void) WaitForBackgroundWorkerShutdown(handle);
	else
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("no background worker slot to record the refused call in fb_export_runs"),
				 errhint("Raise max_worker_processes.")));
	dsm_detach(segment);
}

int64
run_request_and_wait(const ExportRequest *request)
{
	Size		size = offsetof(WaitedRun, request) + offsetof(ExportRequest, mapping) + request->mapping_length + 1;
	dsm_segment *segment = dsm_create(size, 0);
	WaitedRun  *waited = dsm_segment_address(segment);
	BackgroundWorkerHandle *handle;
	uint64		reported_batches = 0;
	uint64		reported_wait = 0;
	int64		run_id;

	memset(waited, 0, size);
	pg_atomic_init_u64(&waited->progress.rows_read, 0);
	pg_atomic_init_u64(&waited->progress.rows_sent, 0);
	pg_atomic_init_u64(&waited->progress.batches, 0);
	pg_atomic_init_u64(&waited->progress.waiting_for, 0);
	pg_atomic_init_u64(&waited->run_id, 0);
	memcpy(&waited->request, request, offsetof(ExportRequest, mapping) + request->mapping_length + 1);
	start_worker(segment, &handle);

	PG_TRY();
	{
		for (;;)
		{
			pid_t		pid;
			BgwHandleStatus state = GetBackgroundWorkerPid(handle, &pid);
			uint64		batches = pg_atomic_read_u64(&waited->progress.batches);
			uint64		waiting_for = pg_atomic_read_u64(&waited->progress.waiting_for);

			if (waiting_for != 0 && waiting_for != reported_wait)
			{
				ereport(NOTICE,
						(errmsg("export run " UINT64_FORMAT " waits for run " UINT64_FORMAT " of the same export or audience to finish",
								pg_atomic_read_u64(&waited->run_id), waiting_for)));
				reported_wait = waiting_for;
			}
			if (batches != reported_batches)
			{
				ereport(NOTICE,
						(errmsg("export run " UINT64_FORMAT ": %llu rows read, %llu sent in %llu batches",
								pg_atomic_read_u64(&waited->run_id),
								(unsigned long long) pg_atomic_read_u64(&waited->progress.rows_read),
								(unsigned long long) pg_atomic_read_u64(&waited->progress.rows_sent),
								(unsigned long long) batches)));
				reported_batches = batches;
			}
			if (state == BGWH_STOPPED || state == BGWH_POSTMASTER_DIED)
				break;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000,
							 PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		pid_t		pid;

		/* Cancelled while waiting: the run is cancelled too, and says so. */
		if (GetBackgroundWorkerPid(handle, &pid) == BGWH_STARTED)
			kill(pid, SIGUSR2);
		else
			TerminateBackgroundWorker(handle);
		PG_RE_THROW();
	}
	PG_END_TRY();

	pg_memory_barrier();
	run_id = (int64) pg_atomic_read_u64(&waited->run_id);
	if (!waited->progress.finished)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("the export worker stopped before finishing run " INT64_FORMAT, run_id),
				 errhint("See the server log, and fb_export_runs.")));
	if (run_id == 0)
	{
		const char *s = waited->progress.sqlstate;

		ereport(ERROR,
				(errcode(MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4])),
				 errmsg("%s", waited->progress.error),
				 waited->progress.hint[0] ? errhint("%s", waited->progress.hint) : 0));
	}
	if (strcmp(waited->progress.status, "succeeded") != 0)
	{
		const char *s = waited->progress.sqlstate;

		bool		token_refused = strcmp(s, "28000") == 0;

		ereport(ERROR,
				(errcode(MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4])),
				 errmsg("export run " INT64_FORMAT " %s: %s", run_id, waited->progress.status,
						waited->progress.error),
				 token_refused
				 ? errhint("The access token of destination \"%s\" was refused; it is marked needs_reauth. "
						   "A member of connector_admin sets a new one from a file the server reads, never as SQL text: fb_alter_destination('%s', token_file => '/path/to/new.token').",
						   request->destination, request->destination)
				 : errhint("SELECT * FROM fb_export_runs WHERE run_id = " INT64_FORMAT ";", run_id)));
	}
	ereport(NOTICE,
			(errmsg("export run " INT64_FORMAT " succeeded: %llu rows read, %llu sent in %llu batches",
					run_id,
					(unsigned long long) pg_atomic_read_u64(&waited->progress.rows_read),
					(unsigned long long) pg_atomic_read_u64(&waited->progress.rows_sent),
					(unsigned long long) pg_atomic_read_u64(&waited->progress.batches))));
	dsm_detach(segment);
	return run_id;
}
