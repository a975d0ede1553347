/*
 * The sweeper: a short-lived background worker the launcher starts in
 * connector.database whenever there may be work. It fails (and queues again,
 * as the rules in run_records.c say) the runs that lost their worker, claims
 * queued runs in turns between roles up to connector.max_concurrent_runs and
 * starts one export worker for each; once a day it deletes the runs older
 * than connector.run_history. Then it exits.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "module.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"

#include "export_worker.h"
#include "launcher.h"
#include "run_records.h"
#include "settings.h"

PGDLLEXPORT void connector_sweeper_main(Datum main_arg);

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
		int64	   *run_ids = NULL;
		int			claimed;
		int			i;

		/*
		 * A claimed run keeps status queued until its worker starts it;
		 * started_at marks the claim so the next sweep does not start it twice.
		 */
		claimed = claim_queued_runs(connector_max_concurrent_runs - running, &run_ids);
		for (i = 0; i < claimed; i++)
			start_export_worker(run_ids[i]);
		if (connector_run_history_minutes >= 0 && claim_daily_history_pruning())
			prune_run_history(connector_run_history_minutes);
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
