/*
 * fb_export_segment and fb_cancel_export: what an analyst calls. Everything
 * that can be checked before a run starts is checked here, as the caller:
 * the destination and its grant, the segment and the SELECT privilege on it,
 * the mapping against the segment's columns.
 */
#include "postgres.h"

#include <signal.h>

#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "core_errors.h"
#include "destinations.h"
#include "export_request.h"
#include "launcher.h"
#include "privileged.h"
#include "settings.h"

PG_FUNCTION_INFO_V1(fb_export_segment);
PG_FUNCTION_INFO_V1(fb_cancel_export);

static void
copy_argument(char *field, size_t size, const char *value, const char *what)
{
	if (value != NULL && strlen(value) >= size)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("%s is longer than %zu characters", what, size - 1)));
	strlcpy(field, value != NULL ? value : "", size);
}

/*
 * The caller's connector.* settings, for a worker that runs the export now:
 * the run behaves as the session that waits for it.
 */
static void
capture_settings(char *buffer, size_t size)
{
	static const char *const names[] = {
		"connector.graph_api_url", "connector.graph_api_version", "connector.ca_file",
		"connector.connect_timeout", "connector.request_timeout", "connector.batch_size",
		"connector.max_parallel_requests", "connector.max_retries", "connector.retry_base_delay",
		"connector.max_profiles_per_export", "connector.mirror_max_removal",
	};
	StringInfoData settings;
	int			i;

	initStringInfo(&settings);
	for (i = 0; i < lengthof(names); i++)
		appendStringInfo(&settings, "%s\t%s\n", names[i], GetConfigOption(names[i], false, false));
	if (settings.len >= size)
		elog(ERROR, "connector settings too long to hand to the export worker");
	memcpy(buffer, settings.data, settings.len + 1);
}

static char *
text_arg(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/*
 * The segment, checked: a view or materialized view the caller may read,
 * whose columns fit the mapping, with unhashed keys only where allowed.
 */
static char *
checked_segment(Oid relid, const char *mapping, const char *key_identifier,
				const Destination *destination)
{
	char		relkind = get_rel_relkind(relid);
	char	   *name;
	Relation	relation;
	ConnectorExportEncoder *encoder;

	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("segment with OID %u does not exist", relid)));
	name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
	if (relkind != RELKIND_VIEW && relkind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is not a view: a segment is a view or a materialized view", name),
				 errhint("Wrap it in a view that selects the customers to export: CREATE VIEW %s_segment AS SELECT ... FROM %s WHERE ...;",
						 get_rel_name(relid), name)));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for segment %s", name),
				 errhint("The role that exports a segment must be able to SELECT from it.")));
	relation = relation_open(relid, AccessShareLock);
	encoder = encoder_for_relation(relation, name, mapping, key_identifier);
	require_unhashed_keys_allowed(encoder, name, destination->name, destination->unhashed_keys_allowed);
	connector_export_encoder_free(encoder);
	relation_close(relation, AccessShareLock);
	return name;
}

/* One role cannot fill the queue that every exporter shares. */
static void
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

/*
 * fb_export_segment(segment, destination, audience_id, audience_name, mapping,
 *                   key_identifier, mode, wait) RETURNS bigint
 */
Datum
fb_export_segment(PG_FUNCTION_ARGS)
{
	char	   *destination_name = text_arg(fcinfo, 1);
	char	   *audience_id = text_arg(fcinfo, 2);
	char	   *audience_name = text_arg(fcinfo, 3);
	char	   *mapping = PG_ARGISNULL(4) ? NULL : JsonbToCString(NULL, &PG_GETARG_JSONB_P(4)->root, 0);
	char	   *key_identifier = text_arg(fcinfo, 5);
	char	   *mode = PG_ARGISNULL(6) ? "mirror" : text_arg(fcinfo, 6);
	bool		wait = !PG_ARGISNULL(7) && PG_GETARG_BOOL(7);
	Oid			relid;
	char	   *segment;
	size_t		mapping_length = mapping != NULL ? strlen(mapping) : 0;
	ExportRequest *request;

	if (PG_ARGISNULL(0) || destination_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a segment and a destination are required")));
	relid = PG_GETARG_OID(0);
	if (strcmp(mode, "add") != 0 && strcmp(mode, "replace") != 0 && strcmp(mode, "mirror") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown export mode \"%s\"", mode),
				 errhint("Use add (only adds), replace (the audience becomes the segment, in one session) or mirror (adds what is new, removes what is gone).")));
	if (audience_id != NULL && strspn(audience_id, "0123456789") != strlen(audience_id))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a custom audience id", audience_id),
				 errhint("fb_list_audiences('%s') shows the audiences and their ids.", destination_name)));

	segment = checked_segment(relid, mapping, key_identifier, load_usable_destination(destination_name));

	request = palloc0(offsetof(ExportRequest, mapping) + mapping_length + 1);
	request->requested_by = GetUserId();
	copy_argument(request->segment, sizeof(request->segment), segment, "the segment name");
	copy_argument(request->destination, sizeof(request->destination), destination_name, "the destination name");
	copy_argument(request->audience_id, sizeof(request->audience_id), audience_id, "the audience id");
	copy_argument(request->audience_name, sizeof(request->audience_name),
				  audience_name != NULL ? audience_name : get_rel_name(relid), "the audience name");
	copy_argument(request->key_identifier, sizeof(request->key_identifier), key_identifier, "the key identifier");
	copy_argument(request->mode, sizeof(request->mode), mode, "the mode");
	capture_settings(request->settings, sizeof(request->settings));
	request->mapping_length = (int) mapping_length;
	if (mapping != NULL)
		memcpy(request->mapping, mapping, mapping_length + 1);

	if (wait)
		PG_RETURN_INT64(run_request_and_wait(request));
	require_launcher_for_this_database();
	require_room_in_queue(request->requested_by);
	wake_launcher_at_commit();
	PG_RETURN_INT64(save_export_request(request));
}

/*
 * fb_cancel_export(run_id): a queued run is cancelled at once; a running one
 * is asked to stop (its worker marks it cancelled within a moment).
 */
Datum
fb_cancel_export(PG_FUNCTION_ARGS)
{
	int64		run_id = PG_GETARG_INT64(0);
	PrivilegedScope scope;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(run_id)};
	bool		isnull;
	bool		changed = false;
	Oid			caller = GetUserId();
	Oid			requested_by;
	char	   *status;
	int			worker_pid = 0;

	SPI_connect();
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("SELECT requested_by::pg_catalog.oid, status, worker_pid FROM connector.runs"
							  " WHERE run_id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
							  1, argtypes, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.runs");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("export run " INT64_FORMAT " does not exist", run_id)));
	requested_by = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	{
		Datum		pid = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);

		worker_pid = isnull ? 0 : DatumGetInt32(pid);
	}
	/* By OID: the requester may have been dropped, and its name taken by another role. */
	if (!has_privs_of_role(caller, requested_by) && !is_destination_admin(caller))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to cancel export run " INT64_FORMAT, run_id),
				 errhint("Runs are cancelled by the role that asked for them or by connector_admin.")));
	if (strcmp(status, "queued") == 0)
	{
		if (SPI_execute_with_args("UPDATE connector.runs SET status = 'cancelled', finished_at = pg_catalog.now(),"
								  " error = 'cancelled before it started', sqlstate = '57014'"
								  " WHERE run_id OPERATOR(pg_catalog.=) $1",
								  1, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update connector.runs");
		changed = true;
	}
	else if (strcmp(status, "running") == 0 && worker_pid != 0)
	{
		/* Only a connector export worker is ever signalled. */
		if (SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_stat_activity WHERE pid OPERATOR(pg_catalog.=) $1"
								  " AND backend_type OPERATOR(pg_catalog.=) 'connector export'",
								  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(worker_pid)},
								  NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		{
			kill(worker_pid, SIGTERM);
			changed = true;
		}
	}
	leave_privileged_scope(&scope);
	SPI_finish();
	PG_RETURN_BOOL(changed);
}
