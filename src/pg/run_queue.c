/*
 * The queue of runs on connector.runs: a run's turn (one run per export and
 * per audience at a time), queued runs claimed in turns between roles, runs a
 * shutdown, a restart or a crash interrupted queued again, runs cancelled.
 * Each statement runs as the extension owner in the privileged scope; those
 * said to run "in the caller's step" use its transaction and scope.
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "export_phases.h"
#include "privileged.h"
#include "run_records.h"
#include "settings.h"

/*
 * Names the worker that waits for the run's turn (so that the launcher starts
 * no other for it); false when the run is no longer queued.
 */
bool
read_run_turn(int64 run_id, int64 *export_id, int64 *audience_id, int64 *running)
{
	PrivilegedScope scope;
	bool		isnull;
	Datum		value;

	enter_privileged_scope(&scope);
	/* The worker that waits is named, so that the launcher starts no other for the run. */
	if (SPI_execute_with_args("UPDATE connector.runs r SET worker_pid = $2"
							  " WHERE r.run_id OPERATOR(pg_catalog.=) $1 AND r.status OPERATOR(pg_catalog.=) 'queued'"
							  " RETURNING r.export_id, pg_catalog.hashtextextended(r.audience_id, 0),"
							  " (SELECT o.run_id FROM connector.runs o"
							  "   JOIN connector.exports oe ON oe.export_id OPERATOR(pg_catalog.=) o.export_id"
							  "   WHERE o.status OPERATOR(pg_catalog.=) 'running' AND o.run_id OPERATOR(pg_catalog.<>) r.run_id"
							  "   AND (o.export_id OPERATOR(pg_catalog.=) r.export_id"
							  "    OR o.audience_id OPERATOR(pg_catalog.=) r.audience_id"
							  "    OR oe.audience_id OPERATOR(pg_catalog.=) r.audience_id)"
							  "   ORDER BY o.run_id LIMIT 1)",
							  2, (Oid[]) {INT8OID, INT4OID}, (Datum[]) {Int64GetDatum(run_id), Int32GetDatum(MyProcPid)},
							  NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not update connector.runs");
	leave_privileged_scope(&scope);
	if (SPI_processed != 1)
		return false;
	*export_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	*audience_id = isnull ? 0 : DatumGetInt64(value);
	value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	*running = isnull ? 0 : DatumGetInt64(value);
	return true;
}

char *
record_interrupted_run(int64 run_id)
{
	PrivilegedScope scope;
	bool		isnull;
	char	   *message = "interrupted by a server shutdown";

	begin_step("connector: recording an interrupted run");
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("WITH again AS ("
							  "  INSERT INTO connector.runs (export_id, requested_by, mode, mapping, key_identifier,"
							  "   audience_id, mirror_max_removal, date_order, crash_requeues)"
							  "  SELECT export_id, requested_by, mode, mapping, key_identifier, audience_id,"
							  "   mirror_max_removal, date_order, crash_requeues FROM connector.runs"
							  "  WHERE run_id OPERATOR(pg_catalog.=) $1 RETURNING run_id)"
							  " UPDATE connector.runs r SET status = 'interrupted', sqlstate = '57P01',"
							  "  finished_at = pg_catalog.now(), error = 'interrupted by a server shutdown; queued again as run '"
							  "  OPERATOR(pg_catalog.||) again.run_id"
							  " FROM again WHERE r.run_id OPERATOR(pg_catalog.=) $1 RETURNING again.run_id",
							  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(run_id)},
							  NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not record the interrupted run");
	if (SPI_processed == 1)
		message = psprintf("interrupted by a server shutdown; queued again as run " INT64_FORMAT,
						   DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)));
	leave_privileged_scope(&scope);
	Async_Notify("connector_export",
				 psprintf("{\"run_id\": " INT64_FORMAT ", \"status\": \"interrupted\"}", run_id));
	end_step();
	return message;
}

/*
 * Fails the runs that lost their worker and queues each again, carrying its
 * pinned configuration; returns how many runs are running now. A run that
 * started before this server did was interrupted by a restart: it is always
 * queued again. One that started since died with its worker (a crash): it is
 * queued again only connector.max_crash_requeues times, so that an export
 * that crashes its worker cannot restart the server in a loop.
 */
int64
recover_interrupted_runs(void)
{
	bool		isnull;

	if (SPI_execute_with_args("WITH lost AS ("
							  "  UPDATE connector.runs r SET finished_at = pg_catalog.now(), sqlstate = '57P01',"
							  "    status = CASE WHEN r.started_at OPERATOR(pg_catalog.<) pg_catalog.pg_postmaster_start_time()"
							  "     THEN 'interrupted' ELSE 'failed' END, error = CASE"
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
							  "   r.mirror_max_removal, r.date_order,"
							  "   CASE WHEN r.started_at OPERATOR(pg_catalog.<) pg_catalog.pg_postmaster_start_time()"
							  "    THEN r.crash_requeues ELSE r.crash_requeues OPERATOR(pg_catalog.+) 1 END AS crash_requeues)"
							  " INSERT INTO connector.runs (export_id, requested_by, mode, mapping, key_identifier,"
							  "  audience_id, mirror_max_removal, date_order, crash_requeues)"
							  " SELECT export_id, requested_by, mode, mapping, key_identifier, audience_id,"
							  "  mirror_max_removal, date_order, crash_requeues"
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
 * queue never holds another's run back for more than one run of each. A run
 * waits while an earlier run of its export or audience is queued or running
 * (one run per export and per audience at a time).
 */
#define CLAIM_ROUND_ROBIN \
	"WITH waiting AS (" \
	"  SELECT run_id, requested_by::pg_catalog.oid AS role," \
	"   pg_catalog.row_number() OVER (PARTITION BY requested_by::pg_catalog.oid ORDER BY run_id) AS turn" \
	"  FROM connector.runs q WHERE status OPERATOR(pg_catalog.=) 'queued'" \
	"  AND (started_at IS NULL OR started_at OPERATOR(pg_catalog.<)" \
	"   (pg_catalog.now() OPERATOR(pg_catalog.-) '1 minute'::pg_catalog.interval))" \
	"  AND NOT EXISTS (SELECT FROM connector.runs o" \
	"   WHERE (o.status OPERATOR(pg_catalog.=) 'running' OR (o.status OPERATOR(pg_catalog.=) 'queued'" \
	"    AND o.run_id OPERATOR(pg_catalog.<) q.run_id))" \
	"   AND (o.export_id OPERATOR(pg_catalog.=) q.export_id" \
	"    OR o.audience_id OPERATOR(pg_catalog.=) q.audience_id))" \
	"  AND NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity a" \
	"   WHERE a.pid OPERATOR(pg_catalog.=) q.worker_pid" \
	"   AND a.backend_type OPERATOR(pg_catalog.=) 'connector export'))," \
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

int
claim_queued_runs(int64 room, int64 **run_ids)
{
	bool		isnull;
	uint64		i;

	if (room <= 0)
		return 0;
	if (SPI_execute_with_args(CLAIM_ROUND_ROBIN, 1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(room)},
							  NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not claim queued export runs");
	*run_ids = palloc(sizeof(int64) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
		(*run_ids)[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	return (int) SPI_processed;
}

/*
 * Signals the export workers of the running runs that match: only a
 * connector export worker is ever signalled. Returns how many.
 */
static int
stop_export_workers(const char *which, int64 id)
{
	StringInfoData query;
	bool		isnull;
	uint64		i;

	initStringInfo(&query);
	appendStringInfo(&query,
					 "SELECT r.worker_pid FROM connector.runs r"
					 " JOIN connector.exports e ON e.export_id OPERATOR(pg_catalog.=) r.export_id"
					 " JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) r.worker_pid"
					 " WHERE %s OPERATOR(pg_catalog.=) $1 AND r.status OPERATOR(pg_catalog.=) 'running'"
					 " AND a.backend_type OPERATOR(pg_catalog.=) 'connector export'", which);
	if (SPI_execute_with_args(query.data, 1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(id)},
							  NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.runs");
	for (i = 0; i < SPI_processed; i++)
		kill(DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)), SIGUSR2);
	return (int) SPI_processed;
}

/* In the caller's step: the destination's running exports stop. */
void
stop_destination_exports(int64 destination_id)
{
	(void) stop_export_workers("e.destination_id", destination_id);
}

/*
 * fb_cancel_export's work: a queued run is cancelled at once; a running one
 * is asked to stop (its worker marks it cancelled within a moment). True
 * when it was still queued or running.
 */
bool
cancel_run(int64 run_id)
{
	PrivilegedScope scope;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(run_id)};
	bool		isnull;
	bool		changed = false;
	Oid			caller = GetUserId();
	Oid			requested_by;
	char	   *status;

	SPI_connect();
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("SELECT requested_by::pg_catalog.oid, status FROM connector.runs"
							  " WHERE run_id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
							  1, argtypes, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.runs");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("export run " INT64_FORMAT " does not exist", run_id)));
	requested_by = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	/* By OID: the requester may have been dropped, and its name taken by another role. */
	if (!has_privs_of_role(caller, requested_by) && !is_destination_admin(caller))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to cancel export run " INT64_FORMAT, run_id),
				 errhint("Runs are cancelled by the role that asked for them or by connector_admin.")));
	if (strcmp(status, run_status_name(RUN_QUEUED)) == 0)
	{
		if (SPI_execute_with_args("UPDATE connector.runs SET status = 'cancelled', finished_at = pg_catalog.now(),"
								  " error = 'cancelled before it started', sqlstate = '57014'"
								  " WHERE run_id OPERATOR(pg_catalog.=) $1",
								  1, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update connector.runs");
		changed = true;
	}
	else if (strcmp(status, run_status_name(RUN_RUNNING)) == 0)
		changed = stop_export_workers("r.run_id", run_id) > 0;
	leave_privileged_scope(&scope);
	SPI_finish();
	return changed;
}

void
prune_run_history(int minutes)
{
	if (SPI_execute_with_args("DELETE FROM connector.runs r"
							  " WHERE r.finished_at OPERATOR(pg_catalog.<) (pg_catalog.now()"
							  "  OPERATOR(pg_catalog.-) pg_catalog.make_interval(mins => $1))"
							  " AND r.status OPERATOR(pg_catalog.<>) ALL ('{queued,running}'::pg_catalog.text[])"
							  " AND r.run_id OPERATOR(pg_catalog.<>) (SELECT pg_catalog.max(l.run_id) FROM connector.runs l"
							  "  WHERE l.export_id OPERATOR(pg_catalog.=) r.export_id)",
							  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(minutes)}, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not prune connector.runs");
	if (SPI_processed > 0)
		ereport(LOG,
				(errmsg("connector: deleted " UINT64_FORMAT " export runs older than connector.run_history",
						(uint64) SPI_processed)));
}
