/*
 * Checking a destination's credentials at the Graph API: when they are set
 * (fb_create_destination, fb_alter_destination) and again on demand
 * (fb_verify_destination, daily from pg_cron), recording the outcome.
 */
#include "postgres.h"

#include <unistd.h>

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "module.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "core_errors.h"
#include "destination_admin.h"
#include "destinations.h"
#include "privileged.h"
#include "settings.h"
#include "sql_args.h"

CONNECTOR_SQL_FUNCTION(fb_verify_destination);

/* Checks the credentials against the Graph API; raises what it finds. */
void
verify_credentials(const char *destination, const char *ad_account_id,
				   const char *access_token, const char *app_secret)
{
	DestinationCredentials credentials = {(char *) access_token, (char *) app_secret};
	ConnectorGraphConfig config = graph_config(&credentials);
	ConnectorStatus status;

	if (connector_verify_account(&config, destination, ad_account_id, &status) == CONNECTOR_ERROR)
		raise_graph_error(&status);
}

static void
record_check(int64 destination_id, const char *status, const char *detail)
{
	PrivilegedScope scope;
	Oid			argtypes[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3] = {Int64GetDatum(destination_id), CStringGetTextDatum(status),
	(Datum) 0};
	char		nulls[3] = "  n";

	if (detail != NULL)
	{
		values[2] = CStringGetTextDatum(detail);
		nulls[2] = ' ';
	}
	SPI_connect();
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("UPDATE connector.destinations SET status = $2, status_detail = $3,"
							  " verified_at = CASE WHEN $2 OPERATOR(pg_catalog.=) 'ok' THEN pg_catalog.now()"
							  " ELSE verified_at END WHERE destination_id OPERATOR(pg_catalog.=) $1",
							  3, argtypes, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update connector.destinations");
	leave_privileged_scope(&scope);
	SPI_finish();
}

/*
 * fb_verify_destination(name) RETURNS boolean: checks the stored credentials
 * again (daily from pg_cron, for instance) and records the outcome in
 * fb_destinations. A Graph API refusal is a WARNING and false, so that the
 * recorded status survives; local problems are errors.
 */
static Datum
verify_destination(PG_FUNCTION_ARGS)
{
	char	   *name = text_arg(fcinfo, 0);
	Destination *destination;
	DestinationCredentials credentials;
	ConnectorGraphConfig config;
	ConnectorStatus status;
	ConnectorResult result;

	require_destination_admin("verify destinations");
	destination = load_usable_destination(name);
	credentials = open_credentials(destination);
	config = graph_config(&credentials);
	result = connector_verify_account(&config, name, destination->ad_account_id, &status);
	forget_credentials(&credentials);
	if (result != CONNECTOR_ERROR)
	{
		record_check(destination->id, "ok", NULL);
		PG_RETURN_BOOL(true);
	}
	CHECK_FOR_INTERRUPTS();
	if (strncmp(status.sqlstate, "08", 2) == 0 || strcmp(status.sqlstate, "58000") == 0)
		raise_core_error(&status);	/* could not ask: the recorded status stands */
	record_check(destination->id,
				 strcmp(status.sqlstate, "28000") == 0 ? "needs_reauth" : "error",
				 status.message);
	ereport(WARNING,
			(errcode(MAKE_SQLSTATE(status.sqlstate[0], status.sqlstate[1], status.sqlstate[2],
								   status.sqlstate[3], status.sqlstate[4])),
			 errmsg("%s", status.message),
			 status.hint[0] ? errhint("%s", status.hint) : 0));
	PG_RETURN_BOOL(false);
}

Datum
fb_verify_destination(PG_FUNCTION_ARGS)
{
	return without_statement_in_errors(verify_destination, fcinfo);
}

