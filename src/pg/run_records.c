/*
 * The records of a run on connector.runs once it is queued (queueing is in
 * export_records.c, the queue itself in run_queue.c): a run started, its
 * progress, a replace session it found left open, its outcome, and a refused
 * call recorded as a failed run.
 * Each runs as the extension owner in the privileged scope; those said to
 * run "in the caller's step" use its transaction and scope.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "export_phases.h"
#include "privileged.h"
#include "run_records.h"
#include "settings.h"

static const char *const mode_names[] = {"add", "replace", "mirror"};
static const char *const status_names[] = {"queued", "running", "succeeded", "failed", "cancelled", "interrupted"};

const char *
export_mode_name(ExportMode mode)
{
	return mode_names[mode];
}

ExportMode
parse_export_mode(const char *name)
{
	int			mode;

	for (mode = 0; mode < lengthof(mode_names); mode++)
		if (strcmp(name, mode_names[mode]) == 0)
			return (ExportMode) mode;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown export mode \"%s\"", name),
			 errhint("Use add (only adds), replace (the audience becomes the segment, in one session) or mirror (adds what is new, removes what is gone).")));
}

const char *
run_status_name(RunStatus status)
{
	return status_names[status];
}

static char *
text_column(int column)
{
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column);
}

static Oid
oid_column(int column)
{
	bool		isnull;

	return DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, &isnull));
}

bool
start_run(int64 run_id, Run *run)
{
	PrivilegedScope scope;
	Oid			argtypes[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(run_id), Int32GetDatum(MyProcPid)};
	MemoryContext run_context = TopMemoryContext;
	MemoryContext old;
	bool		startable;
	bool		isnull;

	begin_step("connector: starting an export run");
	enter_privileged_scope(&scope);
	/* The configuration pinned in the run when it was queued, not the export's of now. */
	if (SPI_execute_with_args("SELECT r.export_id, r.requested_by::pg_catalog.oid, r.status, e.segment, d.name,"
							  " r.audience_id, e.audience_name, r.mapping::pg_catalog.text, r.key_identifier,"
							  " r.mode, e.owner::pg_catalog.oid, r.mirror_max_removal, r.date_order"
							  " FROM connector.runs r"
							  " JOIN connector.exports e ON e.export_id OPERATOR(pg_catalog.=) r.export_id"
							  " JOIN connector.destinations d ON d.destination_id OPERATOR(pg_catalog.=) e.destination_id"
							  " WHERE r.run_id OPERATOR(pg_catalog.=) $1 FOR UPDATE OF r",
							  1, argtypes, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.runs");
	startable = SPI_processed == 1 && strcmp(text_column(3), run_status_name(RUN_QUEUED)) == 0;
	if (startable)
	{
		old = MemoryContextSwitchTo(run_context);
		run->run_id = run_id;
		run->export_id = pg_strtoint64(text_column(1));
		run->requested_by = oid_column(2);
		run->owner = oid_column(11);
		run->mirror_max_removal = DatumGetFloat4(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
															   12, &isnull));
		run->day_first = strcmp(text_column(13), "DMY") == 0;
		run->segment = pstrdup(text_column(4));
		run->destination_name = pstrdup(text_column(5));
		run->audience_id = text_column(6) ? pstrdup(text_column(6)) : NULL;
		run->audience_name = pstrdup(text_column(7));
		run->mapping = text_column(8) ? pstrdup(text_column(8)) : NULL;
		run->key_identifier = text_column(9) ? pstrdup(text_column(9)) : NULL;
		run->mode = parse_export_mode(text_column(10));
		MemoryContextSwitchTo(old);
		if (SPI_execute_with_args("UPDATE connector.runs SET status = 'running',"
								  " started_at = pg_catalog.now(), worker_pid = $2 WHERE run_id OPERATOR(pg_catalog.=) $1",
								  2, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update connector.runs");
	}
	leave_privileged_scope(&scope);
	end_step();
	return startable;
}

static char *
skipped_json(const Run *run)
{
	StringInfoData json;
	int			i;
	bool		first = true;

	initStringInfo(&json);
	appendStringInfoChar(&json, '{');
	for (i = 0; i < CONNECTOR_SKIP_REASONS; i++)
	{
		if (run->skipped[i] == 0)
			continue;
		appendStringInfo(&json, "%s\"%s\": " INT64_FORMAT, first ? "" : ", ",
						 connector_skip_reason_name(i), run->skipped[i]);
		first = false;
	}
	if (run->rejected_prehashed > 0)
		appendStringInfo(&json, "%s\"rejected_prehashed_values\": " INT64_FORMAT,
						 first ? "" : ", ", run->rejected_prehashed);
	appendStringInfoChar(&json, '}');
	return json.data;
}

/* Writes the read phase's counts; the run's session id too. */
void
record_read(const Run *run)
{
	PrivilegedScope scope;
	Oid			argtypes[7] = {INT8OID, INT8OID, TEXTOID, INT8OID, INT8OID, TEXTOID, INT8OID};
	Datum		values[7] = {Int64GetDatum(run->run_id), Int64GetDatum(run->rows_read),
		CStringGetTextDatum(skipped_json(run)), Int64GetDatum(run->session_id),
		Int64GetDatum(run->rows_unchanged),
		CStringGetTextDatum(connector_export_encoder_resolved_mapping(run_resources.encoder)),
	Int64GetDatum(run->export_id)};

	begin_step("connector: recording the segment read");
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("WITH e AS (UPDATE connector.exports SET resolved_mapping = $6::pg_catalog.jsonb"
							  "  WHERE export_id OPERATOR(pg_catalog.=) $7)"
							  " UPDATE connector.runs SET rows_read = $2, rows_skipped = $3::pg_catalog.jsonb,"
							  " session_id = $4, rows_unchanged = $5, resolved_mapping = $6::pg_catalog.jsonb"
							  " WHERE run_id OPERATOR(pg_catalog.=) $1",
							  7, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update connector.runs");
	leave_privileged_scope(&scope);
	end_step();
}

/* Adds finished batches to the run's counts, in the caller's step. */
void
record_batch_counts(int64 run_id, bool removing, int64 batches, int64 rows, int64 retries,
					int64 received, int64 invalid)
{
	Oid			argtypes[7] = {INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, BOOLOID};
	Datum		values[7] = {Int64GetDatum(run_id), Int64GetDatum(batches), Int64GetDatum(rows),
		Int64GetDatum(retries), Int64GetDatum(received), Int64GetDatum(invalid),
	BoolGetDatum(removing)};

	if (SPI_execute_with_args("UPDATE connector.runs SET batches = batches OPERATOR(pg_catalog.+) $2,"
							  " rows_sent = rows_sent OPERATOR(pg_catalog.+) CASE WHEN $7 THEN 0 ELSE $3 END,"
							  " rows_removed = rows_removed OPERATOR(pg_catalog.+) CASE WHEN $7 THEN $3 ELSE 0 END,"
							  " retries = retries OPERATOR(pg_catalog.+) $4,"
							  " num_received = GREATEST(num_received, $5),"
							  " num_invalid_entries = num_invalid_entries OPERATOR(pg_catalog.+) $6"
							  " WHERE run_id OPERATOR(pg_catalog.=) $1",
							  7, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update connector.runs");
}

/*
 * The replace session an earlier run left open on the run's audience: the
 * last replace run of any export on the audience, when it did not succeed and
 * its session was not closed since. Sets run->open_session_id and
 * open_session_run (0 when none); returns the export of that run.
 */
int64
find_open_replace_session(Run *run)
{
	Oid			argtypes[3] = {INT8OID, TEXTOID, INT8OID};
	Datum		values[3];
	bool		isnull;
	int64		export_id = 0;
	PrivilegedScope scope;

	run->open_session_id = run->open_session_run = 0;
	if (run->audience_id == NULL)
		return 0;
	values[0] = Int64GetDatum(run->export_id);
	values[1] = CStringGetTextDatum(run->audience_id);
	values[2] = Int64GetDatum(run->run_id);
	begin_step("connector: looking for a replace session left open");
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("SELECT r.run_id, r.session_id, r.export_id FROM connector.runs r"
							  " JOIN connector.exports e ON e.export_id OPERATOR(pg_catalog.=) r.export_id"
							  " WHERE e.destination_id OPERATOR(pg_catalog.=)"
							  "  (SELECT destination_id FROM connector.exports WHERE export_id OPERATOR(pg_catalog.=) $1)"
							  " AND r.audience_id OPERATOR(pg_catalog.=) $2 AND r.mode OPERATOR(pg_catalog.=) 'replace'"
							  " AND r.run_id OPERATOR(pg_catalog.<>) $3 AND r.started_at IS NOT NULL"
							  " ORDER BY r.started_at DESC LIMIT 1",
							  3, argtypes, values, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		HeapTuple	tuple = SPI_tuptable->vals[0];
		int64		replace_run = DatumGetInt64(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 1, &isnull));
		Datum		session = SPI_getbinval(tuple, SPI_tuptable->tupdesc, 2, &isnull);

		if (!isnull &&
			SPI_execute_with_args("SELECT 1 FROM connector.runs WHERE run_id OPERATOR(pg_catalog.=) $1"
								  " AND NOT session_closed AND status OPERATOR(pg_catalog.=)"
								  " ANY ('{failed,cancelled,interrupted}'::pg_catalog.text[])",
								  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(replace_run)},
								  NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		{
			run->open_session_id = DatumGetInt64(session);
			run->open_session_run = replace_run;
			export_id = DatumGetInt64(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 3, &isnull));
		}
	}
	leave_privileged_scope(&scope);
	end_step();
	return export_id;
}

/*
 * A replace session that ended before its last batch: the audience holds
 * what the session received, which the ledger of the replace's export no
 * longer describes, so that ledger goes (its next mirror run sends everything
 * again). Its own step.
 */
void
record_incomplete_replace(int64 replace_run, bool closed)
{
	PrivilegedScope scope;

	begin_step("connector: recording an incomplete replace");
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("WITH r AS (UPDATE connector.runs SET session_closed = $2"
							  "  WHERE run_id OPERATOR(pg_catalog.=) $1 RETURNING export_id),"
							  " l AS (DELETE FROM connector.ledger WHERE export_id OPERATOR(pg_catalog.=) (SELECT export_id FROM r))"
							  " UPDATE connector.exports SET ledger_format = NULL"
							  " WHERE export_id OPERATOR(pg_catalog.=) (SELECT export_id FROM r)",
							  2, (Oid[]) {INT8OID, BOOLOID}, (Datum[]) {Int64GetDatum(replace_run), BoolGetDatum(closed)},
							  NULL, false, 0) < 0)
		elog(ERROR, "could not record the incomplete replace");
	leave_privileged_scope(&scope);
	end_step();
}

/*
 * A call that named a saved export but failed its checks: a failed run of the
 * saved configuration, so that fb_export_runs shows what a scheduled call
 * could not do. In the worker's own transaction (the caller's is aborting).
 */
int64
record_refused_call(int64 export_id, Oid requested_by, const char *sqlstate, const char *error)
{
	bool		isnull;
	int64		run_id = 0;

	if (SPI_execute_with_args("INSERT INTO connector.runs (export_id, requested_by, status, mode, mapping,"
							  " key_identifier, audience_id, started_at, finished_at, error, sqlstate)"
							  " SELECT export_id, $2, 'failed', mode, mapping, key_identifier, audience_id,"
							  " pg_catalog.now(), pg_catalog.now(), $3, $4 FROM connector.exports"
							  " WHERE export_id OPERATOR(pg_catalog.=) $1 RETURNING run_id",
							  4, (Oid[]) {INT8OID, REGROLEOID, TEXTOID, TEXTOID},
							  (Datum[]) {Int64GetDatum(export_id), ObjectIdGetDatum(requested_by),
							  CStringGetTextDatum(error), CStringGetTextDatum(sqlstate)},
							  NULL, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not insert into connector.runs");
	if (SPI_processed == 1)
	{
		run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		Async_Notify("connector_export",
					 psprintf("{\"run_id\": " INT64_FORMAT ", \"status\": \"failed\"}", run_id));
	}
	return run_id;
}

void
record_audience_status(int64 run_id, const ConnectorAudience *audience)
{
	PrivilegedScope scope;
	Datum		values[7] = {Int64GetDatum(run_id), Int64GetDatum(audience->approximate_count_lower_bound),
		Int64GetDatum(audience->approximate_count_upper_bound), Int32GetDatum(audience->operation_status_code),
		CStringGetTextDatum(audience->operation_status), Int32GetDatum(audience->delivery_status_code),
	CStringGetTextDatum(audience->delivery_status)};
	char		nulls[7] = {' ',
		audience->approximate_count_lower_bound < 0 ? 'n' : ' ',
		audience->approximate_count_upper_bound < 0 ? 'n' : ' ',
		audience->operation_status_code == 0 ? 'n' : ' ', audience->operation_status[0] ? ' ' : 'n',
	audience->delivery_status_code == 0 ? 'n' : ' ', audience->delivery_status[0] ? ' ' : 'n'};

	begin_step("connector: recording the audience as Meta reports it");
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("UPDATE connector.runs SET audience_size_lower = $2, audience_size_upper = $3,"
							  " operation_status_code = $4, operation_status = $5, delivery_status_code = $6,"
							  " delivery_status = $7 WHERE run_id OPERATOR(pg_catalog.=) $1",
							  7, (Oid[]) {INT8OID, INT8OID, INT8OID, INT4OID, TEXTOID, INT4OID, TEXTOID},
							  values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update connector.runs");
	leave_privileged_scope(&scope);
	end_step();
}

double
recent_seconds_per_batch(void)
{
	PrivilegedScope scope;
	bool		isnull;
	Datum		value;
	double		seconds = 0;

	SPI_connect();
	enter_privileged_scope(&scope);
	if (SPI_execute("SELECT (pg_catalog.sum(pg_catalog.date_part('epoch', finished_at OPERATOR(pg_catalog.-) started_at))"
					" OPERATOR(pg_catalog./) pg_catalog.sum(batches))::double precision FROM connector.runs"
					" WHERE status OPERATOR(pg_catalog.=) 'succeeded' AND batches OPERATOR(pg_catalog.>) 0"
					" AND finished_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) '30 days'::pg_catalog.interval)",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.runs");
	value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		seconds = DatumGetFloat8(value);
	leave_privileged_scope(&scope);
	SPI_finish();
	return seconds;
}

/* The run's end, and a NOTIFY connector_export for listeners. */
void
record_outcome(int64 run_id, RunStatus status, const char *sqlstate, const char *error)
{
	PrivilegedScope scope;
	Oid			argtypes[4] = {INT8OID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4] = {Int64GetDatum(run_id), CStringGetTextDatum(run_status_name(status)), (Datum) 0,
	(Datum) 0};
	char		nulls[4] = "  nn";

	if (error != NULL)
	{
		values[2] = CStringGetTextDatum(error);
		values[3] = CStringGetTextDatum(sqlstate);
		nulls[2] = nulls[3] = ' ';
	}
	begin_step("connector: recording the outcome");
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("UPDATE connector.runs SET status = $2, error = $3, sqlstate = $4,"
							  " finished_at = pg_catalog.now() WHERE run_id OPERATOR(pg_catalog.=) $1",
							  4, argtypes, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update connector.runs");
	if (sqlstate != NULL && strcmp(sqlstate, "28000") == 0 &&
		SPI_execute_with_args("UPDATE connector.destinations d SET status = 'needs_reauth', status_detail = $3"
							  " FROM connector.runs r"
							  " JOIN connector.exports e ON e.export_id OPERATOR(pg_catalog.=) r.export_id"
							  " WHERE r.run_id OPERATOR(pg_catalog.=) $1"
							  " AND d.destination_id OPERATOR(pg_catalog.=) e.destination_id",
							  4, argtypes, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update connector.destinations");
	leave_privileged_scope(&scope);
	Async_Notify("connector_export",
				 psprintf("{\"run_id\": " INT64_FORMAT ", \"status\": \"%s\"}", run_id,
						  run_status_name(status)));
	end_step();
}
