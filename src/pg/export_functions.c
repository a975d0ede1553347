/*
 * fb_export_segment and fb_cancel_export: what an analyst calls. Everything
 * that can be checked before a run starts is checked here, as the caller:
 * the destination and its grant, the segment and the SELECT privilege on it,
 * the mapping against the segment's columns.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "module.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "destinations.h"
#include "export_worker.h"
#include "launcher.h"
#include "run_records.h"
#include "segment_read.h"
#include "settings.h"
#include "sql_args.h"

CONNECTOR_SQL_FUNCTION(fb_export_segment);
CONNECTOR_SQL_FUNCTION(fb_cancel_export);

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
	(void) parse_export_mode(mode);	/* raises on an unknown mode */
	if (audience_id != NULL && strspn(audience_id, "0123456789") != strlen(audience_id))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a custom audience id", audience_id),
				 errhint("fb_list_audiences('%s') shows the audiences and their ids.", destination_name)));

	segment = check_segment_for_export(relid, mapping, key_identifier, load_usable_destination(destination_name));

	request = palloc0(offsetof(ExportRequest, mapping) + mapping_length + 1);
	request->requested_by = GetUserId();
	copy_argument(request->segment, sizeof(request->segment), segment, "the segment name");
	copy_argument(request->destination, sizeof(request->destination), destination_name, "the destination name");
	copy_argument(request->audience_id, sizeof(request->audience_id), audience_id, "the audience id");
	copy_argument(request->audience_name, sizeof(request->audience_name),
				  audience_name != NULL ? audience_name : get_rel_name(relid), "the audience name");
	copy_argument(request->key_identifier, sizeof(request->key_identifier), key_identifier, "the key identifier");
	copy_argument(request->mode, sizeof(request->mode), mode, "the mode");
	capture_export_settings(request->settings, sizeof(request->settings));
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
	PG_RETURN_BOOL(cancel_run(PG_GETARG_INT64(0)));
}
