/*
 * The launcher is one static background worker that connects to no database:
 * a long-lived connection would block DROP DATABASE. It waits on its latch,
 * woken when a transaction that queued a run commits (or when one of the
 * workers it started ends, or once a minute as a safety net), and then starts
 * a short-lived "sweeper" worker in connector.database. The sweeper fails and
 * re-queues runs that a crash left running, claims queued runs up to
 * connector.max_concurrent_runs and starts one export worker for each, then
 * exits.
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

#include "export_request.h"
#include "launcher.h"
#include "privileged.h"
#include "settings.h"

PGDLLEXPORT void connector_launcher_main(Datum main_arg);
PGDLLEXPORT void connector_sweeper_main(Datum main_arg);

#define SAFETY_NET_MS 60000

typedef struct LauncherShared
{
	int			launcher_procno;	/* -1 while no launcher runs */
	pg_atomic_uint32 wake_pending;
} LauncherShared;

static LauncherShared *shared = NULL;
static shmem_request_hook_type previous_shmem_request_hook = NULL;
static shmem_startup_hook_type previous_shmem_startup_hook = NULL;
static volatile sig_atomic_t terminate_requested = false;
static bool wake_registered = false;
static bool run_queued_in_transaction = false;

static void
request_shared_memory(void)
{
	if (previous_shmem_request_hook)
		previous_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(LauncherShared)));
}

static void
attach_shared_memory(void)
{
	bool		found;

	if (previous_shmem_startup_hook)
		previous_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("connector launcher", sizeof(LauncherShared), &found);
	if (!found)
	{
		shared->launcher_procno = -1;
		pg_atomic_init_u32(&shared->wake_pending, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
register_launcher(void)
{
	BackgroundWorker worker;

	previous_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = request_shared_memory;
	previous_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = attach_shared_memory;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	strlcpy(worker.bgw_library_name, "connector", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "connector_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "connector launcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "connector launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

void
require_launcher_for_this_database(void)
{
	if (shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("queued exports need connector in shared_preload_libraries"),
				 errhint("Use wait => true to run the export now, or add connector to shared_preload_libraries and restart.")));
	if (strcmp(get_database_name(MyDatabaseId), connector_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the connector background worker serves database \"%s\", not this one", connector_database),
				 errhint("Use wait => true to run the export now, or set connector.database and restart.")));
}

static void
wake_at_commit(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && run_queued_in_transaction)
		wake_launcher();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		run_queued_in_transaction = false;
}

void
wake_launcher(void)
{
	if (shared != NULL)
	{
		int			procno = shared->launcher_procno;

		pg_atomic_write_u32(&shared->wake_pending, 1);
		if (procno >= 0)
			SetLatch(&ProcGlobal->allProcs[procno].procLatch);
	}
}

void
wake_launcher_at_commit(void)
{
	if (!wake_registered)
	{
		RegisterXactCallback(wake_at_commit, NULL);
		wake_registered = true;
	}
	run_queued_in_transaction = true;
}

static void
handle_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	terminate_requested = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

static bool
start_sweeper(BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "connector", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "connector_sweeper_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "connector sweeper", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "connector sweeper", BGW_MAXLEN);
	worker.bgw_notify_pid = MyProcPid;
	return RegisterDynamicBackgroundWorker(&worker, handle);
}

void
connector_launcher_main(Datum main_arg)
{
	BackgroundWorkerHandle *sweeper = NULL;
	bool		sweep_wanted = true;	/* at start-up: runs a crash left behind */

	pqsignal(SIGTERM, handle_sigterm);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	shared->launcher_procno = MyProc->pgprocno;
	ereport(LOG, (errmsg("connector launcher started for database \"%s\"", connector_database)));

	while (!terminate_requested)
	{
		pid_t		pid;
		int			events;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (pg_atomic_exchange_u32(&shared->wake_pending, 0) != 0)
			sweep_wanted = true;
		if (sweeper != NULL && GetBackgroundWorkerPid(sweeper, &pid) == BGWH_STOPPED)
		{
			pfree(sweeper);
			sweeper = NULL;
		}
		if (sweep_wanted && sweeper == NULL)
		{
			if (start_sweeper(&sweeper))
				sweep_wanted = false;
			else
				sweeper = NULL;
		}
		pgstat_report_activity(STATE_IDLE, NULL);
		/* Woken by a commit that queued a run, an export that ended, the sweeper's end. */
		events = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, SAFETY_NET_MS,
						   PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		if (events & WL_TIMEOUT)
			sweep_wanted = true;
	}
	shared->launcher_procno = -1;
	proc_exit(0);
}

/*
 * Fails the runs that lost their worker and queues each again, carrying its
 * pinned configuration; returns how many runs are running now. A run that
 * started before this server did was interrupted by a restart: it is always
 * queued again. One that started since died with its worker (a crash): it is
 * queued again only connector.max_crash_requeues times, so that an export
 * that crashes its worker cannot restart the server in a loop.
 */
static int64
recover_interrupted_runs(void)
{
	bool		isnull;

	if (SPI_execute_with_args("WITH lost AS ("
							  "  UPDATE connector.runs r SET status = 'failed', finished_at = pg_catalog.now(),"
							  "    sqlstate = '57P01', error = CASE"
							  "     WHEN r.started_at OPERATOR(pg_catalog.<) pg_catalog.pg_postmaster_start_time()"
							  "      THEN 'interrupted by a server restart; a new run was queued'"
							  "     WHEN r.crash_requeues OPERATOR(pg_catalog.<) $1"
							  "      THEN 'interrupted: its worker died (see the server log); a new run was queued'"
							  "     ELSE 'interrupted: its worker died (see the server log), after '"
							  "      OPERATOR(pg_catalog.||) r.crash_requeues"
							  "      OPERATOR(pg_catalog.||) ' earlier crash(es) of this export run; not queued again"
							  " (connector.max_crash_requeues)' END"
							  "  WHERE r.status OPERATOR(pg_catalog.=) 'running'"
							  "  AND NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity a"
							  "    WHERE a.pid OPERATOR(pg_catalog.=) r.worker_pid"
							  "    AND a.backend_type OPERATOR(pg_catalog.=) 'connector export')"
							  "  RETURNING r.export_id, r.requested_by, r.mode, r.mapping, r.key_identifier, r.audience_id,"
							  "   r.mirror_max_removal,"
							  "   CASE WHEN r.started_at OPERATOR(pg_catalog.<) pg_catalog.pg_postmaster_start_time()"
							  "    THEN r.crash_requeues ELSE r.crash_requeues OPERATOR(pg_catalog.+) 1 END AS crash_requeues)"
							  " INSERT INTO connector.runs (export_id, requested_by, mode, mapping, key_identifier,"
							  "  audience_id, mirror_max_removal, crash_requeues)"
							  " SELECT export_id, requested_by, mode, mapping, key_identifier, audience_id,"
							  "  mirror_max_removal, crash_requeues"
							  " FROM lost WHERE crash_requeues OPERATOR(pg_catalog.<=) $1",
							  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(connector_max_crash_requeues)},
							  NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not recover interrupted runs");
	if (SPI_processed > 0)
		ereport(LOG, (errmsg("connector: queued %lu export run(s) again after their worker stopped",
							 (unsigned long) SPI_processed)));
	if (SPI_execute("SELECT pg_catalog.count(*) FROM connector.runs WHERE status OPERATOR(pg_catalog.=) 'running'",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count running exports");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Claims up to $1 queued runs, taking turns between the roles that asked for
 * them: a role's k-th queued run waits behind every other role's earlier
 * turns, its running runs count as turns taken, and between equal turns the
 * role that started a run least recently goes first. One exporter's long
 * queue never holds another's run back for more than one run of each.
 */
#define CLAIM_ROUND_ROBIN \
	"WITH waiting AS (" \
	"  SELECT run_id, requested_by::pg_catalog.oid AS role," \
	"   pg_catalog.row_number() OVER (PARTITION BY requested_by::pg_catalog.oid ORDER BY run_id) AS turn" \
	"  FROM connector.runs WHERE status OPERATOR(pg_catalog.=) 'queued'" \
	"  AND (started_at IS NULL OR started_at OPERATOR(pg_catalog.<)" \
	"   (pg_catalog.now() OPERATOR(pg_catalog.-) '1 minute'::pg_catalog.interval)))," \
	" taken AS (" \
	"  SELECT requested_by::pg_catalog.oid AS role," \
	"   pg_catalog.count(*) FILTER (WHERE status OPERATOR(pg_catalog.=) 'running') AS running," \
	"   pg_catalog.max(started_at) AS last_started" \
	"  FROM connector.runs WHERE started_at OPERATOR(pg_catalog.>)" \
	"   (pg_catalog.now() OPERATOR(pg_catalog.-) '1 day'::pg_catalog.interval)" \
	"  AND status OPERATOR(pg_catalog.<>) 'queued' GROUP BY 1)" \
	" UPDATE connector.runs SET started_at = pg_catalog.now()" \
	" WHERE run_id OPERATOR(pg_catalog.=) ANY (ARRAY(" \
	"  SELECT w.run_id FROM waiting w" \
	"  LEFT JOIN taken t ON t.role OPERATOR(pg_catalog.=) w.role" \
	"  ORDER BY w.turn OPERATOR(pg_catalog.+) COALESCE(t.running, 0), t.last_started NULLS FIRST, w.run_id" \
	"  LIMIT $1))" \
	" AND status OPERATOR(pg_catalog.=) 'queued' RETURNING run_id"

void
connector_sweeper_main(Datum main_arg)
{
	bool		installed;
	bool		isnull;

	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(connector_database, NULL, 0);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "connector: looking for queued export runs");
	if (SPI_execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_extension"
					" WHERE extname OPERATOR(pg_catalog.=) 'connector')",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_extension");
	installed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (installed)
	{
		int64		running = recover_interrupted_runs();
		int64		room = connector_max_concurrent_runs - running;
		uint64		i;

		/*
		 * A claimed run keeps status queued until its worker starts it;
		 * started_at marks the claim so the next sweep does not start it twice.
		 */
		if (room > 0 &&
			SPI_execute_with_args(CLAIM_ROUND_ROBIN, 1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(room)},
								  NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "could not claim queued export runs");
		for (i = 0; room > 0 && i < SPI_processed; i++)
			start_export_worker(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)));
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
