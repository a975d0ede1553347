/*
 * Every statement on connector.exports: a request saved as the export's
 * configuration with its queued run (the export belongs to the role that
 * created it), the audience an export sends to, the schema its ledger was
 * written with. The runs' own records are in run_records.c.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "export_phases.h"
#include "privileged.h"
#include "run_records.h"
#include "settings.h"

/* The role's name for a message, or its OID once it was dropped. */
static char *
role_name_or_oid(Oid role)
{
	char	   *name = GetUserNameFromId(role, true);

	return name != NULL ? name : psprintf("with OID %u", role);
}

/*
 * An audience named by id must not be one that another role's export manages
 * (or that connector created for another role): an exporter acts only
 * through its own exports.
 */
static void
require_audience_not_of_another(const ExportRequest *request, int64 destination_id, bool admin)
{
	uint64		i;

	if (request->audience_id[0] == '\0' || admin)
		return;
	if (SPI_execute_with_args("SELECT owner::pg_catalog.oid FROM connector.exports"
							  " WHERE destination_id OPERATOR(pg_catalog.=) $1 AND audience_id OPERATOR(pg_catalog.=) $2"
							  " UNION ALL SELECT created_by::pg_catalog.oid FROM connector.audiences"
							  " WHERE destination_id OPERATOR(pg_catalog.=) $1 AND audience_id OPERATOR(pg_catalog.=) $2",
							  2, (Oid[]) {INT8OID, TEXTOID},
							  (Datum[]) {Int64GetDatum(destination_id), CStringGetTextDatum(request->audience_id)},
							  NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.exports");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

		if (!has_privs_of_role(request->requested_by, owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("audience %s of destination \"%s\" belongs to an export of role %s",
							request->audience_id, request->destination, role_name_or_oid(owner)),
					 errhint("Leave audience_id out to have an audience of your own created, or ask a member of connector_admin.")));
	}
}

/*
 * Saves the configuration and queues a run, as the role that asked. The
 * export of a segment to an audience name belongs to the role that created
 * it: another exporter gets a clear refusal, never a change to it; an admin
 * may change any. The run pins the configuration it will execute.
 */
int64
save_export_request(const ExportRequest *request)
{
	PrivilegedScope scope;
	Oid			requester = request->requested_by;
	bool		admin = is_destination_admin(requester);
	/*
	 * $1-$3 the export's key, $4-$7 its configuration, $8 the requester, $9
	 * an existing export, $10 the caller's connector.mirror_max_removal, $11
	 * its connector.date_order, $12 the resolved mapping
	 */
	Oid			types[12] = {TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, REGROLEOID, INT8OID,
	FLOAT4OID, TEXTOID, TEXTOID};
	Datum		values[12];
	char		nulls[12];
	bool		isnull;
	int64		export_id = 0;
	Datum		saved_audience = (Datum) 0;
	bool		saved_audience_null = true;
	int64		run_id;

	SPI_connect();
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("SELECT destination_id FROM connector.destinations WHERE name OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(request->destination)},
							  NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("destination \"%s\" does not exist", request->destination)));
	values[1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	require_audience_not_of_another(request, DatumGetInt64(values[1]), admin);

	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(request->segment);
	values[2] = CStringGetTextDatum(request->audience_name);
	values[3] = request->mapping_length > 0 ? CStringGetTextDatum(request->mapping) : (Datum) 0;
	nulls[3] = request->mapping_length > 0 ? ' ' : 'n';
	values[4] = CStringGetTextDatum(request->key_identifier);
	nulls[4] = request->key_identifier[0] ? ' ' : 'n';
	values[5] = CStringGetTextDatum(request->mode);
	values[6] = CStringGetTextDatum(request->audience_id);
	nulls[6] = request->audience_id[0] ? ' ' : 'n';
	values[7] = ObjectIdGetDatum(requester);
	values[8] = (Datum) 0;
	values[9] = Float4GetDatum((float4) connector_mirror_max_removal);
	values[10] = CStringGetTextDatum(connector_date_order == DATE_ORDER_DMY ? "DMY" : "MDY");
	values[11] = CStringGetTextDatum(request->resolved_mapping);
	nulls[11] = request->resolved_mapping[0] ? ' ' : 'n';
	while (export_id == 0)
	{
		if (SPI_execute_with_args("SELECT export_id, owner::pg_catalog.oid FROM connector.exports"
								  " WHERE segment OPERATOR(pg_catalog.=) $1 AND destination_id OPERATOR(pg_catalog.=) $2"
								  " AND audience_name OPERATOR(pg_catalog.=) $3 FOR UPDATE",
								  3, types, values, nulls, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read connector.exports");
		if (SPI_processed == 1)
		{
			Oid			owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

			if (!admin && !has_privs_of_role(requester, owner))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("the export of segment %s to audience \"%s\" of destination \"%s\" belongs to role %s",
								request->segment, request->audience_name, request->destination,
								role_name_or_oid(owner)),
						 errhint("Export it under an audience name of your own (audience_name => '...'); only its owner or a member of connector_admin may change this export.")));
			values[8] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (SPI_execute_with_args("UPDATE connector.exports SET audience_id = COALESCE($7, audience_id),"
									  " mapping = $4::pg_catalog.jsonb, key_identifier = $5, mode = $6,"
									  " resolved_mapping = $12::pg_catalog.jsonb, updated_at = pg_catalog.now()"
									  " WHERE export_id OPERATOR(pg_catalog.=) $9 RETURNING export_id, audience_id",
									  12, types, values, nulls, false, 0) != SPI_OK_UPDATE_RETURNING)
				elog(ERROR, "could not update connector.exports");
		}
		else if (SPI_execute_with_args("INSERT INTO connector.exports (segment, destination_id, audience_name,"
									   " mapping, key_identifier, mode, audience_id, owner, resolved_mapping)"
									   " VALUES ($1, $2, $3, $4::pg_catalog.jsonb, $5, $6, $7, $8, $12::pg_catalog.jsonb)"
									   " ON CONFLICT DO NOTHING RETURNING export_id, audience_id",
									   12, types, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not insert into connector.exports");
		/* Nothing inserted: another session created it meanwhile; look again. */
		if (SPI_processed == 1)
		{
			export_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			saved_audience = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &saved_audience_null);
		}
	}

	/* The run pins what it will execute: mode, mapping, key identifier, audience. */
	values[6] = saved_audience;
	nulls[6] = saved_audience_null ? 'n' : ' ';
	values[8] = Int64GetDatum(export_id);
	if (SPI_execute_with_args("INSERT INTO connector.runs (export_id, requested_by, mode, mapping,"
							  " key_identifier, audience_id, mirror_max_removal, date_order)"
							  " VALUES ($9, $8, $6, $4::pg_catalog.jsonb, $5, $7, $10, $11) RETURNING run_id",
							  12, types, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not insert into connector.runs");
	run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	leave_privileged_scope(&scope);
	SPI_finish();
	return run_id;
}

/* The text of column n of the current SPI row, in `context`; NULL for NULL. */
static char *
copy_column(int n, MemoryContext context)
{
	MemoryContext old = MemoryContextSwitchTo(context);
	char	   *value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, n);

	MemoryContextSwitchTo(old);
	return value;
}

bool
load_saved_export(int64 export_id, const char *segment, const char *destination,
				  const char *audience_name, SavedExport *saved)
{
	MemoryContext context = CurrentMemoryContext;
	PrivilegedScope scope;
	Oid			requester = GetUserId();
	Datum		values[4];
	char		nulls[4] = "    ";
	bool		found = false;

	values[0] = Int64GetDatum(export_id);
	nulls[0] = export_id > 0 ? ' ' : 'n';
	values[1] = segment != NULL ? CStringGetTextDatum(segment) : (Datum) 0;
	values[2] = destination != NULL ? CStringGetTextDatum(destination) : (Datum) 0;
	values[3] = audience_name != NULL ? CStringGetTextDatum(audience_name) : (Datum) 0;
	if (export_id > 0)
		nulls[1] = nulls[2] = nulls[3] = 'n';
	SPI_connect();
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("SELECT e.export_id, e.segment, d.name, e.audience_id, e.audience_name,"
							  " e.mapping::pg_catalog.text, e.key_identifier, e.mode, e.owner::pg_catalog.oid"
							  " FROM connector.exports e"
							  " JOIN connector.destinations d ON d.destination_id OPERATOR(pg_catalog.=) e.destination_id"
							  " WHERE CASE WHEN $1 IS NOT NULL THEN e.export_id OPERATOR(pg_catalog.=) $1"
							  " ELSE e.segment OPERATOR(pg_catalog.=) $2 AND d.name OPERATOR(pg_catalog.=) $3"
							  " AND e.audience_name OPERATOR(pg_catalog.=) $4 END",
							  4, (Oid[]) {INT8OID, TEXTOID, TEXTOID, TEXTOID}, values, nulls, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.exports");
	if (SPI_processed == 1)
	{
		bool		isnull;
		Oid			owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 9, &isnull));

		found = is_destination_admin(requester) || has_privs_of_role(requester, owner);
		if (found)
		{
			saved->export_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			saved->segment = copy_column(2, context);
			saved->destination = copy_column(3, context);
			saved->audience_id = copy_column(4, context);
			saved->audience_name = copy_column(5, context);
			saved->mapping = copy_column(6, context);
			saved->key_identifier = copy_column(7, context);
			saved->mode = copy_column(8, context);
		}
	}
	leave_privileged_scope(&scope);
	SPI_finish();
	return found;
}

int64
find_busy_run(int64 export_id, const char *destination, const char *audience_id, char **status)
{
	MemoryContext context = CurrentMemoryContext;
	PrivilegedScope scope;
	int64		run_id = 0;
	Oid			caller = GetUserId();
	Datum		values[5] = {Int64GetDatum(export_id), CStringGetTextDatum(destination),
		audience_id != NULL ? CStringGetTextDatum(audience_id) : (Datum) 0, ObjectIdGetDatum(caller),
	BoolGetDatum(is_destination_admin(caller))};
	char		nulls[5] = {' ', ' ', audience_id != NULL ? ' ' : 'n', ' ', ' '};

	SPI_connect();
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("SELECT r.run_id, r.status FROM connector.runs r"
							  " JOIN connector.exports e ON e.export_id OPERATOR(pg_catalog.=) r.export_id"
							  " JOIN connector.destinations d ON d.destination_id OPERATOR(pg_catalog.=) e.destination_id"
							  " WHERE r.status OPERATOR(pg_catalog.=) ANY ('{queued,running}'::pg_catalog.text[])"
							  " AND (r.export_id OPERATOR(pg_catalog.=) $1"
							  "  OR (d.name OPERATOR(pg_catalog.=) $2 AND r.audience_id OPERATOR(pg_catalog.=) $3))"
							  /* Another role's runs are none of the caller's business. */
							  " AND ($5 OR pg_catalog.pg_has_role($4, e.owner::pg_catalog.oid, 'USAGE'))"
							  " ORDER BY r.status OPERATOR(pg_catalog.=) 'running' DESC, r.run_id LIMIT 1",
							  5, (Oid[]) {INT8OID, TEXTOID, TEXTOID, OIDOID, BOOLOID}, values, nulls, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.runs");
	if (SPI_processed == 1)
	{
		bool		isnull;

		run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		*status = copy_column(2, context);
	}
	leave_privileged_scope(&scope);
	SPI_finish();
	return run_id;
}

void
drop_saved_export(const SavedExport *saved)
{
	PrivilegedScope scope;
	bool		isnull;
	int64		runs;
	Datum		id = Int64GetDatum(saved->export_id);

	SPI_connect();
	enter_privileged_scope(&scope);
	/* The export is locked first: no run can be queued for it meanwhile. */
	if (SPI_execute_with_args("SELECT FROM connector.exports WHERE export_id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
							  1, (Oid[]) {INT8OID}, &id, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock connector.exports");
	if (SPI_execute_with_args("SELECT run_id, status FROM connector.runs WHERE export_id OPERATOR(pg_catalog.=) $1"
							  " AND status OPERATOR(pg_catalog.=) ANY ('{queued,running}'::pg_catalog.text[])"
							  " ORDER BY run_id LIMIT 1",
							  1, (Oid[]) {INT8OID}, &id, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.runs");
	if (SPI_processed == 1)
	{
		char	   *run_id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("export " INT64_FORMAT " has run %s %s", saved->export_id, run_id,
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)),
				 errhint("Cancel it first: SELECT fb_cancel_export(%s);", run_id)));
	}
	if (SPI_execute_with_args("WITH gone AS (DELETE FROM connector.exports WHERE export_id OPERATOR(pg_catalog.=) $1)"
							  " SELECT pg_catalog.count(*) FROM connector.runs WHERE export_id OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {INT8OID}, &id, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not delete from connector.exports");
	runs = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	leave_privileged_scope(&scope);
	SPI_finish();
	if (saved->audience_id != NULL)
		ereport(NOTICE,
				(errmsg_plural("export " INT64_FORMAT " of segment %s is forgotten with its " INT64_FORMAT " run and its ledger;"
							   " audience %s stays at Meta with its members",
							   "export " INT64_FORMAT " of segment %s is forgotten with its " INT64_FORMAT " runs and its ledger;"
							   " audience %s stays at Meta with its members",
							   (unsigned long) runs, saved->export_id, saved->segment, runs, saved->audience_id),
				 errhint("fb_list_audiences('%s') shows it; delete it at Meta if it is no longer wanted. A pg_cron job"
						 " that runs this export fails from now on: remove it with cron.unschedule.",
						 saved->destination)));
	else
		ereport(NOTICE,
				(errmsg_plural("export " INT64_FORMAT " of segment %s is forgotten with its " INT64_FORMAT " run;"
							   " it had no audience at Meta yet",
							   "export " INT64_FORMAT " of segment %s is forgotten with its " INT64_FORMAT " runs;"
							   " it had no audience at Meta yet",
							   (unsigned long) runs, saved->export_id, saved->segment, runs)));
}

/* One role cannot fill the queue that every exporter shares. */
void
require_room_in_queue(Oid role)
{
	PrivilegedScope scope;
	bool		isnull;
	int64		queued;

	SPI_connect();
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("SELECT pg_catalog.count(*) FROM connector.runs"
							  " WHERE status OPERATOR(pg_catalog.=) 'queued' AND requested_by OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {REGROLEOID}, (Datum[]) {ObjectIdGetDatum(role)}, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.runs");
	queued = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	leave_privileged_scope(&scope);
	SPI_finish();
	if (queued >= connector_max_queued_runs_per_role)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("role %s already has " INT64_FORMAT " export runs queued, the limit of connector.max_queued_runs_per_role",
						GetUserNameFromId(role, false), queued),
				 errhint("Wait for them to run, or cancel some with fb_cancel_export; a superuser can raise connector.max_queued_runs_per_role.")));
}

/* The audience the run sends to, for the export's later runs too. */
void
record_audience(const Run *run)
{
	PrivilegedScope scope;

	begin_step("connector: recording the audience");
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("WITH e AS (UPDATE connector.exports SET audience_id = $2"
							  "  WHERE export_id OPERATOR(pg_catalog.=) $1)"
							  " UPDATE connector.runs SET audience_id = $2 WHERE run_id OPERATOR(pg_catalog.=) $3",
							  3, (Oid[]) {INT8OID, TEXTOID, INT8OID},
							  (Datum[]) {Int64GetDatum(run->export_id), CStringGetTextDatum(run->audience_id),
							  Int64GetDatum(run->run_id)}, NULL, false, 0) < 0)
		elog(ERROR, "could not record the audience");
	leave_privileged_scope(&scope);
	end_step();
}

/*
 * Whether the export's ledger was written in another member format than
 * `format` (so that it cannot be merged with this run's rows), in the
 * caller's step.
 */
bool
ledger_format_changed(int64 export_id, const char *format)
{
	bool		isnull;

	if (SPI_execute_with_args("SELECT ledger_format IS NOT NULL AND ledger_format OPERATOR(pg_catalog.<>) $2"
							  " FROM connector.exports WHERE export_id OPERATOR(pg_catalog.=) $1",
							  2, (Oid[]) {INT8OID, TEXTOID},
							  (Datum[]) {Int64GetDatum(export_id), CStringGetTextDatum(format)},
							  NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read connector.exports");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* Records the member format the export's ledger is now written in, in the caller's step. */
void
record_ledger_format(int64 export_id, const char *format)
{
	if (SPI_execute_with_args("UPDATE connector.exports SET ledger_format = $2"
							  " WHERE export_id OPERATOR(pg_catalog.=) $1",
							  2, (Oid[]) {INT8OID, TEXTOID},
							  (Datum[]) {Int64GetDatum(export_id), CStringGetTextDatum(format)},
							  NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update connector.exports");
}
