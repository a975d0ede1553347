/*
 * The launcher is one static background worker that connects to no database:
 * a long-lived connection would block DROP DATABASE. It waits on its latch,
 * woken when a transaction that queued a run commits (or when one of the
 * workers it started ends, or once a minute as a safety net), and then starts
 * a short-lived "sweeper" worker in connector.database (sweeper.c), which
 * starts the export workers.
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "module.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "launcher.h"
#include "run_progress.h"
#include "settings.h"

PGDLLEXPORT void connector_launcher_main(Datum main_arg);

#define SAFETY_NET_MS 60000

typedef struct LauncherShared
{
	int			launcher_procno;	/* -1 while no launcher runs */
	pg_atomic_uint32 wake_pending;
	pg_atomic_uint64 history_pruned_at; /* TimestampTz of the last pruning; 0: not since start */
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
	RequestAddinShmemSpace(MAXALIGN(run_progress_shmem_size()));
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
		pg_atomic_init_u64(&shared->history_pruned_at, 0);
	}
	run_progress_shmem_init();
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

bool
claim_daily_history_pruning(void)
{
	TimestampTz now = GetCurrentTimestamp();
	uint64		last;

	if (shared == NULL)
		return false;
	last = pg_atomic_read_u64(&shared->history_pruned_at);
	if (last != 0 && !TimestampDifferenceExceeds((TimestampTz) last, now, 24 * 60 * 60 * 1000))
		return false;
	return pg_atomic_compare_exchange_u64(&shared->history_pruned_at, &last, (uint64) now);
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

/*
 * The postmaster's word that the sweeper started or stopped (bgw_notify_pid).
 * A worker without a database connection would otherwise not wake for it,
 * and a run queued while a sweeper ran would wait for the safety net.
 */
static void
handle_sigusr1(SIGNAL_ARGS)
{
	int			save_errno = errno;

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
	pqsignal(SIGUSR1, handle_sigusr1);
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
