/*
 * SQL functions over a destination's custom audiences: fb_list_audiences and
 * fb_create_audience, for admins and for exporters granted the destination.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "module.h"
#include "utils/builtins.h"

#include "core_errors.h"
#include "destinations.h"
#include "privileged.h"

CONNECTOR_SQL_FUNCTION(fb_list_audiences);
CONNECTOR_SQL_FUNCTION(fb_create_audience);

static Datum
text_or_null(const char *value, bool *isnull)
{
	*isnull = value == NULL || value[0] == '\0';
	return *isnull ? (Datum) 0 : CStringGetTextDatum(value);
}

static void
store_audiences(ReturnSetInfo *rsinfo, const ConnectorAudienceList *list)
{
	size_t		count = connector_audience_count(list);
	size_t		i;

	for (i = 0; i < count; i++)
	{
		ConnectorAudience audience = connector_audience_at(list, i);
		Datum		values[9];
		bool		nulls[9];

		values[0] = text_or_null(audience.id, &nulls[0]);
		values[1] = text_or_null(audience.name, &nulls[1]);
		values[2] = text_or_null(audience.subtype, &nulls[2]);
		values[3] = Int64GetDatum(audience.approximate_count_lower_bound);
		nulls[3] = audience.approximate_count_lower_bound < 0;
		values[4] = Int64GetDatum(audience.approximate_count_upper_bound);
		nulls[4] = audience.approximate_count_upper_bound < 0;
		values[5] = Int32GetDatum(audience.operation_status_code);
		nulls[5] = audience.operation_status_code == 0;
		values[6] = text_or_null(audience.operation_status, &nulls[6]);
		values[7] = Int32GetDatum(audience.delivery_status_code);
		nulls[7] = audience.delivery_status_code == 0;
		values[8] = text_or_null(audience.description, &nulls[8]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * fb_list_audiences(destination) RETURNS TABLE (audience_id, name, subtype,
 * approximate_count_lower_bound, approximate_count_upper_bound,
 * operation_status_code, operation_status, delivery_status_code, description)
 */
Datum
fb_list_audiences(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Destination *destination = load_usable_destination(name);
	DestinationCredentials credentials = open_credentials(destination);
	ConnectorGraphConfig config = graph_config(&credentials);
	ConnectorStatus status;
	ConnectorAudienceList *list;

	InitMaterializedSRF(fcinfo, 0);
	list = connector_list_audiences(&config, name, destination->ad_account_id, &status);
	forget_credentials(&credentials);
	if (list == NULL)
		raise_graph_error(&status);
	PG_TRY();
	{
		store_audiences(rsinfo, list);
	}
	PG_FINALLY();
	{
		connector_free_audience_list(list);
	}
	PG_END_TRY();
	return (Datum) 0;
}

/*
 * fb_create_audience(destination, name, description) RETURNS text: a new
 * customer-list audience, remembered as created by connector (so that
 * fb_drop_destination(..., delete_audiences => true) can remove it).
 */
Datum
fb_create_audience(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *audience_name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *description = PG_ARGISNULL(2) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(2));
	Destination *destination = load_usable_destination(name);
	DestinationCredentials credentials = open_credentials(destination);
	ConnectorGraphConfig config = graph_config(&credentials);
	ConnectorStatus status;
	const char *out;
	size_t		out_len;
	char	   *audience_id;
	PrivilegedScope scope;

	if (audience_name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an audience needs a name")));
	if (connector_create_audience(&config, name, destination->ad_account_id, audience_name,
								  description, &out, &out_len, &status) == CONNECTOR_ERROR)
	{
		forget_credentials(&credentials);
		raise_graph_error(&status);
	}
	forget_credentials(&credentials);
	audience_id = pnstrdup(out, out_len);

	SPI_connect();
	enter_privileged_scope(&scope);
	{
		Oid			argtypes[4] = {INT8OID, TEXTOID, TEXTOID, REGROLEOID};
		Datum		values[4] = {Int64GetDatum(destination->id), CStringGetTextDatum(audience_id),
			CStringGetTextDatum(audience_name), ObjectIdGetDatum(scope.caller)};

		if (SPI_execute_with_args("INSERT INTO connector.audiences (destination_id, audience_id, name, created_by)"
								  " VALUES ($1, $2, $3, $4)",
								  4, argtypes, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not insert into connector.audiences");
	}
	leave_privileged_scope(&scope);
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(audience_id));
}
