/*
 * fb_export_segment, fb_run_export and fb_cancel_export: what an analyst
 * calls. Everything that can be checked before a run starts is checked here,
 * as the caller: the destination and its grant, the segment and the SELECT
 * privilege on it, the mapping against the segment's columns.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "module.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/varlena.h"

#include "destinations.h"
#include "export_worker.h"
#include "launcher.h"
#include "run_records.h"
#include "segment_read.h"
#include "settings.h"
#include "sql_args.h"

CONNECTOR_SQL_FUNCTION(fb_export_segment);
CONNECTOR_SQL_FUNCTION(fb_run_export);
CONNECTOR_SQL_FUNCTION(fb_cancel_export);
CONNECTOR_SQL_FUNCTION(fb_drop_export);
CONNECTOR_SQL_FUNCTION(fb_preview_export);

/* What a call does when a run of the export or of its audience is queued or running. */
typedef enum IfRunning
{
	IF_RUNNING_WAIT,			/* take turns: the new run waits for it */
	IF_RUNNING_ERROR,			/* refuse the call */
	IF_RUNNING_SKIP				/* queue nothing; return NULL */
} IfRunning;

/* An export call once the saved export filled in what it left out. */
typedef struct ExportCall
{
	Oid			relid;			/* InvalidOid: the saved segment is gone */
	char	   *segment;		/* qualified, quoted */
	char	   *destination;
	char	   *audience_id;
	char	   *audience_name;
	char	   *mapping;
	char	   *key_identifier;
	char	   *mode;
	bool		wait;
	IfRunning	if_running;
	int64		saved_export_id;	/* 0: a new export (or not the caller's) */
	char	   *resolved_mapping;	/* set by the checks */
} ExportCall;

static IfRunning
parse_if_running(const char *value)
{
	if (value == NULL || pg_strcasecmp(value, "wait") == 0)
		return IF_RUNNING_WAIT;
	if (pg_strcasecmp(value, "error") == 0)
		return IF_RUNNING_ERROR;
	if (pg_strcasecmp(value, "skip") == 0)
		return IF_RUNNING_SKIP;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown if_running \"%s\"", value),
			 errhint("Use wait (the run waits for the one going), error or skip.")));
}

static void
copy_argument(char *field, size_t size, const char *value, const char *what)
{
	if (value != NULL && strlen(value) >= size)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("%s is longer than %zu characters", what, size - 1)));
	strlcpy(field, value != NULL ? value : "", size);
}

/* The saved segment's relation, or InvalidOid when no relation has its name any more. */
static Oid
saved_segment_relid(const char *segment)
{
	List	   *names = textToQualifiedNameList(cstring_to_text(segment));

	return RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
}

/*
 * Everything that can be checked before a run starts, as the caller: the
 * arguments, the destination and its grant, the segment and the SELECT
 * privilege on it, the mapping against its columns, the queue.
 */
static void
check_call(ExportCall *call)
{
	Destination *destination;

	(void) parse_export_mode(call->mode);	/* raises on an unknown mode */
	if (call->audience_id != NULL && strspn(call->audience_id, "0123456789") != strlen(call->audience_id))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a custom audience id", call->audience_id),
				 errhint("fb_list_audiences('%s') shows the audiences and their ids.", call->destination)));
	if (!OidIsValid(call->relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("segment %s of export " INT64_FORMAT " does not exist any more", call->segment,
						call->saved_export_id),
				 errhint("Recreate the view under that name, or export another segment with fb_export_segment.")));
	destination = load_usable_destination(call->destination);
	check_segment_for_export(call->relid, call->segment, call->mapping, call->key_identifier, destination,
							 &call->resolved_mapping);
	if (!call->wait)
	{
		require_launcher_for_this_database();
		require_room_in_queue(GetUserId());
	}
}

/*
 * The checks, in a subtransaction: when a call of a saved export fails them,
 * a failed run records why (a scheduled call's error otherwise only reaches
 * cron.job_run_details), then the error goes on to the caller. A cancel is
 * not a failed check.
 */
static void
check_call_or_record(ExportCall *call)
{
	MemoryContext context = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(context);
	PG_TRY();
	{
		check_call(call);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(context);
		error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;
		if (call->saved_export_id != 0 && ERRCODE_TO_CATEGORY(error->sqlerrcode) != ERRCODE_OPERATOR_INTERVENTION)
			record_refused_call_apart(call->saved_export_id, error);
		ReThrowError(error);
	}
	PG_END_TRY();
}

/*
 * True when the call goes ahead; false when it is to be skipped. Raises when
 * the caller asked for an error.
 */
static bool
turn_is_free(const ExportCall *call)
{
	char	   *status = NULL;
	int64		busy;

	if (call->if_running == IF_RUNNING_WAIT)
		return true;
	busy = find_busy_run(call->saved_export_id, call->destination, call->audience_id, &status);
	if (busy == 0)
		return true;
	if (call->if_running == IF_RUNNING_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("run " INT64_FORMAT " of segment %s or of its audience is already %s", busy, call->segment,
						status),
				 errhint("Wait for it (if_running => 'wait'), or cancel it: SELECT fb_cancel_export(" INT64_FORMAT ");",
						 busy)));
	ereport(NOTICE,
			(errmsg("run " INT64_FORMAT " of segment %s or of its audience is already %s: no run queued",
					busy, call->segment, status)));
	return false;
}

/* Checks the call, then queues its run or runs it now; the run id, or 0 when skipped. */
static int64
export_call(ExportCall *call)
{
	size_t		mapping_length = call->mapping != NULL ? strlen(call->mapping) : 0;
	ExportRequest *request;

	check_call_or_record(call);
	if (!turn_is_free(call))
		return 0;

	request = palloc0(offsetof(ExportRequest, mapping) + mapping_length + 1);
	request->requested_by = GetUserId();
	copy_argument(request->segment, sizeof(request->segment), call->segment, "the segment name");
	copy_argument(request->destination, sizeof(request->destination), call->destination, "the destination name");
	copy_argument(request->audience_id, sizeof(request->audience_id), call->audience_id, "the audience id");
	copy_argument(request->audience_name, sizeof(request->audience_name), call->audience_name, "the audience name");
	copy_argument(request->key_identifier, sizeof(request->key_identifier), call->key_identifier, "the key identifier");
	copy_argument(request->mode, sizeof(request->mode), call->mode, "the mode");
	if (strlen(call->resolved_mapping) < sizeof(request->resolved_mapping))
		strlcpy(request->resolved_mapping, call->resolved_mapping, sizeof(request->resolved_mapping));
	capture_export_settings(request->settings, sizeof(request->settings));
	request->mapping_length = (int) mapping_length;
	if (call->mapping != NULL)
		memcpy(request->mapping, call->mapping, mapping_length + 1);

	if (call->wait)
		return run_request_and_wait(request);
	wake_launcher_at_commit();
	return save_export_request(request);
}

/*
 * fb_export_segment(segment, destination, audience_id, audience_name, mapping,
 *                   key_identifier, mode, wait, if_running) RETURNS bigint
 *
 * An argument left out (NULL) keeps what the saved export has; a new export
 * takes the defaults: mode mirror, every key matched by name, any key
 * identifier. mapping => '{}' and key_identifier => 'any' go back to those.
 */
Datum
fb_export_segment(PG_FUNCTION_ARGS)
{
	ExportCall	call;
	SavedExport saved;
	char	   *mapping = PG_ARGISNULL(4) ? NULL : JsonbToCString(NULL, &PG_GETARG_JSONB_P(4)->root, 0);
	char	   *key_identifier = text_arg(fcinfo, 5);
	char	   *mode = text_arg(fcinfo, 6);
	int64		run_id;

	memset(&call, 0, sizeof(call));
	call.destination = text_arg(fcinfo, 1);
	if (PG_ARGISNULL(0) || call.destination == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a segment and a destination are required")));
	call.relid = PG_GETARG_OID(0);
	if (get_rel_relkind(call.relid) == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("segment with OID %u does not exist", call.relid)));
	call.segment = segment_name(call.relid);
	call.audience_id = text_arg(fcinfo, 2);
	call.audience_name = PG_ARGISNULL(3) ? get_rel_name(call.relid) : text_arg(fcinfo, 3);
	call.wait = !PG_ARGISNULL(7) && PG_GETARG_BOOL(7);
	call.if_running = parse_if_running(text_arg(fcinfo, 8));

	if (load_saved_export(0, call.segment, call.destination, call.audience_name, &saved))
	{
		call.saved_export_id = saved.export_id;
		if (call.audience_id == NULL)
			call.audience_id = saved.audience_id;
		if (mapping == NULL)
			mapping = saved.mapping;
		if (key_identifier == NULL)
			key_identifier = saved.key_identifier;
		if (mode == NULL)
			mode = saved.mode;
	}
	call.mapping = mapping;
	call.key_identifier = key_identifier != NULL && pg_strcasecmp(key_identifier, "any") != 0 ? key_identifier : NULL;
	call.mode = mode != NULL ? mode : "mirror";

	run_id = export_call(&call);
	if (run_id == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(run_id);
}

/* fb_run_export(export_id, wait, if_running): a saved export, exactly as saved. */
Datum
fb_run_export(PG_FUNCTION_ARGS)
{
	ExportCall	call;
	SavedExport saved;
	int64		run_id;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("an export id is required"),
				 errhint("SELECT export_id, segment, destination FROM fb_exports; shows them.")));
	if (!load_saved_export(PG_GETARG_INT64(0), NULL, NULL, NULL, &saved))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("export " INT64_FORMAT " does not exist", PG_GETARG_INT64(0)),
				 errhint("SELECT export_id, segment, destination FROM fb_exports; shows the exports you may run.")));
	memset(&call, 0, sizeof(call));
	call.saved_export_id = saved.export_id;
	call.relid = saved_segment_relid(saved.segment);
	call.segment = OidIsValid(call.relid) ? segment_name(call.relid) : saved.segment;
	call.destination = saved.destination;
	call.audience_id = saved.audience_id;
	call.audience_name = saved.audience_name;
	call.mapping = saved.mapping;
	call.key_identifier = saved.key_identifier;
	call.mode = saved.mode;
	call.wait = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
	call.if_running = parse_if_running(text_arg(fcinfo, 2));

	run_id = export_call(&call);
	if (run_id == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(run_id);
}

/*
 * fb_cancel_export(run_id): a queued run is cancelled at once; a running one
 * is asked to stop (its worker marks it cancelled within a moment).
 */
Datum
fb_cancel_export(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(cancel_run(PG_GETARG_INT64(0)));
}

/*
 * fb_drop_export(export_id): the saved export goes, with its runs and its
 * ledger (its owner, or an admin); its audience stays at Meta.
 */
Datum
fb_drop_export(PG_FUNCTION_ARGS)
{
	SavedExport saved;

	if (!load_saved_export(PG_GETARG_INT64(0), NULL, NULL, NULL, &saved))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("export " INT64_FORMAT " does not exist", PG_GETARG_INT64(0)),
				 errhint("SELECT export_id, segment, destination FROM fb_exports; shows the exports you may drop.")));
	drop_saved_export(&saved);
	PG_RETURN_VOID();
}

/*
 * fb_preview_export(segment, mapping, key_identifier, sample) RETURNS jsonb:
 * what an export would send, read as the caller; nothing is sent and no
 * destination is needed.
 */
Datum
fb_preview_export(PG_FUNCTION_ARGS)
{
	char	   *mapping = PG_ARGISNULL(1) ? NULL : JsonbToCString(NULL, &PG_GETARG_JSONB_P(1)->root, 0);
	char	   *key_identifier = text_arg(fcinfo, 2);
	int			sample = PG_ARGISNULL(3) ? 5 : PG_GETARG_INT32(3);
	char	   *report;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a segment is required")));
	if (sample < 0 || sample > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sample must be between 0 and 1000 rows, not %d", sample)));
	if (key_identifier != NULL && pg_strcasecmp(key_identifier, "any") == 0)
		key_identifier = NULL;
	report = preview_segment(PG_GETARG_OID(0), mapping, key_identifier, sample);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(report)));
}
