/*
 * SQL functions that manage destinations: create, alter, verify, drop, grant
 * and revoke. Only members of connector_admin may call them.
 *
 * These calls may carry an access token as a literal, so every error they
 * raise is reported without the statement text and without its context
 * (errhidestmt, errhidecontext): with the default log_min_error_statement the
 * server log would otherwise print the token next to the error, and a call
 * from a DO block or a function would print it in the CONTEXT line.
 */
#include "postgres.h"

#include <signal.h>
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
#include "destinations.h"
#include "destination_admin.h"
#include "privileged.h"
#include "run_records.h"
#include "settings.h"
#include "sql_args.h"

CONNECTOR_SQL_FUNCTION(fb_create_destination);
CONNECTOR_SQL_FUNCTION(fb_alter_destination);
CONNECTOR_SQL_FUNCTION(fb_drop_destination);
CONNECTOR_SQL_FUNCTION(fb_grant_destination);
CONNECTOR_SQL_FUNCTION(fb_revoke_destination);


static void
check_destination_name(const char *name)
{
	const char *c;

	if (name == NULL || name[0] == '\0' || strlen(name) > 63)
		goto invalid;
	for (c = name; *c; c++)
		if (!(isalnum((unsigned char) *c) || *c == '_' || *c == '-' || *c == '.'))
			goto invalid;
	return;
invalid:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_NAME),
			 errmsg("\"%s\" is not a valid destination name", name ? name : ""),
			 errhint("Use 1 to 63 letters, digits, underscores, hyphens or dots, such as meta_main.")));
}

/* "act_123" or "123" -> "123". */
static char *
normalized_ad_account_id(const char *ad_account_id)
{
	const char *digits = ad_account_id;
	size_t		length;

	if (digits != NULL && strncmp(digits, "act_", 4) == 0)
		digits += 4;
	length = digits != NULL ? strlen(digits) : 0;
	if (length == 0 || length > 20 || strspn(digits, "0123456789") != length)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a valid ad account id", ad_account_id ? ad_account_id : ""),
				 errhint("Use act_ followed by the account's digits, or the digits alone, as Meta Ads Manager shows them.")));
	return pstrdup(digits);
}

static int64
spi_int64(const char *query, int nargs, Oid *argtypes, Datum *values)
{
	bool		isnull;

	if (SPI_execute_with_args(query, nargs, argtypes, values, NULL, false, 1) < 0 || SPI_processed != 1)
		elog(ERROR, "connector: \"%s\" returned no row", query);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

static bool
destination_exists(const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};

	return spi_int64("SELECT pg_catalog.count(*) FROM connector.destinations"
					 " WHERE name OPERATOR(pg_catalog.=) $1",
					 1, argtypes, values) > 0;
}

/*
 * fb_create_destination(name, ad_account_id, access_token, consent,
 *                       app_secret, verify, token_file, app_secret_file)
 */
static Datum
create_destination(PG_FUNCTION_ARGS)
{
	char	   *name = text_arg(fcinfo, 0);
	char	   *ad_account_arg = text_arg(fcinfo, 1);
	bool		consent = !PG_ARGISNULL(3) && PG_GETARG_BOOL(3);
	bool		verify = PG_ARGISNULL(5) || PG_GETARG_BOOL(5);
	char	   *ad_account_id;
	char	   *access_token;
	char	   *app_secret;
	Oid			caller_id = GetUserId();
	char	   *caller = GetUserNameFromId(caller_id, false);
	PrivilegedScope scope;
	int64		destination_id;

	require_destination_admin("create destinations");
	check_destination_name(name);
	if (!consent)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("destination \"%s\" needs consent => true", name),
				 errdetail("Nothing is ever sent to a destination without a recorded consent."),
				 errhint("consent => true records that you, %s, agree that hashed personal data of customers "
						 "(e-mail addresses, phone numbers, names, addresses) leaves this database for Meta, "
						 "as your privacy policy and Meta's Custom Audience terms allow.", caller)));
	ad_account_id = normalized_ad_account_id(ad_account_arg);
	access_token = secret_from(text_arg(fcinfo, 2), text_arg(fcinfo, 6), "access token", name);
	if (access_token == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("destination \"%s\" needs an access token", name),
				 errhint("Give token_file => '/path/readable/by/the/server': a token written into SQL text can reach the server log and pg_stat_activity.")));
	app_secret = secret_from(text_arg(fcinfo, 4), text_arg(fcinfo, 7), "app secret", name);

	SPI_connect();
	enter_privileged_scope(&scope);
	if (destination_exists(name))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("destination \"%s\" already exists", name),
				 errhint("Change it with fb_alter_destination, or choose another name.")));
	leave_privileged_scope(&scope);

	/* No row is locked while the Graph API answers. */
	if (verify)
		verify_credentials(name, ad_account_id, access_token, app_secret);

	enter_privileged_scope(&scope);
	destination_id = spi_int64("SELECT pg_catalog.nextval('connector.destinations_destination_id_seq')",
							   0, NULL, NULL);
	{
		Oid			argtypes[8] = {INT8OID, TEXTOID, TEXTOID, BYTEAOID, BYTEAOID, REGROLEOID, BOOLOID, REGROLEOID};
		Datum		values[8];
		char		nulls[8] = "        ";

		values[0] = Int64GetDatum(destination_id);
		values[1] = CStringGetTextDatum(name);
		values[2] = CStringGetTextDatum(ad_account_id);
		values[3] = PointerGetDatum(seal(access_token, destination_id, "access_token"));
		if (app_secret != NULL)
			values[4] = PointerGetDatum(seal(app_secret, destination_id, "app_secret"));
		else
		{
			values[4] = (Datum) 0;
			nulls[4] = 'n';
		}
		values[5] = ObjectIdGetDatum(caller_id);
		values[6] = BoolGetDatum(verify);
		values[7] = ObjectIdGetDatum(caller_id);
		if (SPI_execute_with_args("INSERT INTO connector.destinations"
								  " (destination_id, name, ad_account_id, access_token, app_secret,"
								  "  owner, consent_by, consent_at, verified_at, status)"
								  " VALUES ($1, $2, $3, $4, $5, $6, $8, pg_catalog.now(),"
								  "  CASE WHEN $7 THEN pg_catalog.now() END,"
								  "  CASE WHEN $7 THEN 'ok' ELSE 'unverified' END)",
								  8, argtypes, values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not insert into connector.destinations");
	}
	leave_privileged_scope(&scope);
	SPI_finish();
	explicit_bzero(access_token, strlen(access_token));
	if (app_secret != NULL)
		explicit_bzero(app_secret, strlen(app_secret));
	PG_RETURN_VOID();
}

Datum
fb_create_destination(PG_FUNCTION_ARGS)
{
	return without_statement_in_errors(create_destination, fcinfo);
}

/*
 * fb_alter_destination(name, new_name, access_token, app_secret, token_file,
 *                      app_secret_file, remove_app_secret, verify,
 *                      allow_unhashed_keys)
 *
 * A secret that is not replaced is opened from its stored value, so setting
 * the access token (and the app secret, or removing it) again recovers a
 * destination whose key file was lost.
 */
static Datum
alter_destination(PG_FUNCTION_ARGS)
{
	char	   *name = text_arg(fcinfo, 0);
	char	   *new_name = text_arg(fcinfo, 1);
	bool		remove_app_secret = !PG_ARGISNULL(6) && PG_GETARG_BOOL(6);
	bool		verify = PG_ARGISNULL(7) || PG_GETARG_BOOL(7);
	bool		change_unhashed = !PG_ARGISNULL(8);
	bool		allow_unhashed = change_unhashed && PG_GETARG_BOOL(8);
	Destination *destination;
	char	   *access_token;
	char	   *app_secret;
	PrivilegedScope scope;
	bool		credentials_change;

	require_destination_admin("alter destinations");
	destination = load_usable_destination(name);
	access_token = secret_from(text_arg(fcinfo, 2), text_arg(fcinfo, 4), "access token", name);
	app_secret = secret_from(text_arg(fcinfo, 3), text_arg(fcinfo, 5), "app secret", name);
	if (remove_app_secret && app_secret != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot both set and remove the app secret of destination \"%s\"", name)));
	credentials_change = access_token != NULL || app_secret != NULL || remove_app_secret;
	if (!credentials_change && new_name == NULL && !change_unhashed)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("nothing to change for destination \"%s\"", name),
				 errhint("Pass new_name, access_token (or token_file), app_secret (or app_secret_file), remove_app_secret => true or allow_unhashed_keys.")));
	if (new_name != NULL)
		check_destination_name(new_name);

	if (credentials_change)
	{
		if (access_token == NULL)
			access_token = open_access_token(destination);
		if (app_secret == NULL && !remove_app_secret && destination->sealed_app_secret != NULL)
			app_secret = open_app_secret(destination);
		if (verify)
			verify_credentials(name, destination->ad_account_id, access_token, app_secret);
	}

	SPI_connect();
	enter_privileged_scope(&scope);
	if (new_name != NULL && strcmp(new_name, name) != 0 && destination_exists(new_name))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("destination \"%s\" already exists", new_name)));
	{
		Oid			argtypes[9] = {INT8OID, TEXTOID, BOOLOID, BYTEAOID, BYTEAOID, BOOLOID, BOOLOID,
		BOOLOID, REGROLEOID};
		Datum		values[9];
		char		nulls[9] = "         ";

		values[0] = Int64GetDatum(destination->id);
		values[1] = CStringGetTextDatum(new_name != NULL ? new_name : name);
		values[2] = BoolGetDatum(credentials_change);
		if (credentials_change)
			values[3] = PointerGetDatum(seal(access_token, destination->id, "access_token"));
		else
		{
			values[3] = (Datum) 0;
			nulls[3] = 'n';
		}
		if (credentials_change && app_secret != NULL)
			values[4] = PointerGetDatum(seal(app_secret, destination->id, "app_secret"));
		else
		{
			values[4] = (Datum) 0;
			nulls[4] = 'n';
		}
		values[5] = BoolGetDatum(verify);
		values[6] = BoolGetDatum(change_unhashed);
		values[7] = BoolGetDatum(allow_unhashed);
		values[8] = ObjectIdGetDatum(scope.caller);
		if (SPI_execute_with_args("UPDATE connector.destinations SET name = $2,"
								  " access_token = CASE WHEN $3 THEN $4 ELSE access_token END,"
								  " app_secret = CASE WHEN $3 THEN $5 ELSE app_secret END,"
								  " verified_at = CASE WHEN $3 AND $6 THEN pg_catalog.now()"
								  "   WHEN $3 THEN NULL ELSE verified_at END,"
								  " status = CASE WHEN $3 AND $6 THEN 'ok' WHEN $3 THEN 'unverified' ELSE status END,"
								  " status_detail = CASE WHEN $3 THEN NULL ELSE status_detail END,"
								  " unhashed_keys_allowed_by = CASE WHEN NOT $7 THEN unhashed_keys_allowed_by"
								  "   WHEN $8 THEN $9 END,"
								  " unhashed_keys_allowed_at = CASE WHEN NOT $7 THEN unhashed_keys_allowed_at"
								  "   WHEN $8 THEN pg_catalog.now() END"
								  " WHERE destination_id OPERATOR(pg_catalog.=) $1",
								  9, argtypes, values, nulls, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update connector.destinations");
	}
	leave_privileged_scope(&scope);
	SPI_finish();
	if (access_token != NULL)
		explicit_bzero(access_token, strlen(access_token));
	if (app_secret != NULL)
		explicit_bzero(app_secret, strlen(app_secret));
	PG_RETURN_VOID();
}

Datum
fb_alter_destination(PG_FUNCTION_ARGS)
{
	return without_statement_in_errors(alter_destination, fcinfo);
}

/*
 * fb_drop_destination(name, delete_audiences): removes the destination and
 * its secrets. With delete_audiences, the audiences connector created for it
 * are deleted at Meta first; otherwise they stay in the ad account.
 */
static Datum
drop_destination(PG_FUNCTION_ARGS)
{
	char	   *name = text_arg(fcinfo, 0);
	bool		delete_audiences = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
	Destination *destination;
	PrivilegedScope scope;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	List	   *audience_ids = NIL;
	uint64		i;

	require_destination_admin("drop destinations");
	destination = load_usable_destination(name);
	values[0] = Int64GetDatum(destination->id);

	if (delete_audiences)
	{
		MemoryContext caller_context = CurrentMemoryContext;
		DestinationCredentials credentials;
		ConnectorGraphConfig config;
		ListCell   *cell;

		SPI_connect();
		enter_privileged_scope(&scope);
		if (SPI_execute_with_args("SELECT audience_id FROM connector.audiences"
								  " WHERE destination_id OPERATOR(pg_catalog.=) $1",
								  1, argtypes, values, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read connector.audiences");
		for (i = 0; i < SPI_processed; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(caller_context);

			audience_ids = lappend(audience_ids, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
			MemoryContextSwitchTo(old);
		}
		leave_privileged_scope(&scope);
		SPI_finish();

		credentials = open_credentials(destination);
		config = graph_config(&credentials);
		foreach(cell, audience_ids)
		{
			ConnectorStatus status;

			if (connector_delete_audience(&config, name, lfirst(cell), &status) == CONNECTOR_ERROR)
			{
				forget_credentials(&credentials);
				raise_graph_error(&status);
			}
		}
		forget_credentials(&credentials);
	}

	SPI_connect();
	enter_privileged_scope(&scope);
	/* Its runs go with it: queued ones are deleted, running ones are stopped. */
	stop_destination_exports(destination->id);
	if (SPI_execute_with_args("DELETE FROM connector.destinations WHERE destination_id OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete from connector.destinations");
	leave_privileged_scope(&scope);
	SPI_finish();
	if (delete_audiences && audience_ids != NIL)
		ereport(NOTICE,
				(errmsg("deleted %d audience(s) of destination \"%s\" at Meta", list_length(audience_ids), name)));
	PG_RETURN_VOID();
}

Datum
fb_drop_destination(PG_FUNCTION_ARGS)
{
	return without_statement_in_errors(drop_destination, fcinfo);
}

static void
change_grant(FunctionCallInfo fcinfo, bool grant)
{
	char	   *name = text_arg(fcinfo, 0);
	Oid			role = PG_ARGISNULL(1) ? InvalidOid : PG_GETARG_OID(1);
	Destination *destination;
	PrivilegedScope scope;
	Oid			argtypes[2] = {INT8OID, REGROLEOID};
	Datum		values[2];

	require_destination_admin(grant ? "grant destinations" : "revoke destinations");
	if (!OidIsValid(role))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a role is required")));
	destination = load_usable_destination(name);
	values[0] = Int64GetDatum(destination->id);
	values[1] = ObjectIdGetDatum(role);
	SPI_connect();
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args(grant
							  ? "INSERT INTO connector.destination_grants (destination_id, grantee)"
							  " VALUES ($1, $2) ON CONFLICT DO NOTHING"
							  : "DELETE FROM connector.destination_grants WHERE destination_id OPERATOR(pg_catalog.=) $1"
							  " AND grantee OPERATOR(pg_catalog.=) $2",
							  2, argtypes, values, NULL, false, 0) < 0)
		elog(ERROR, "could not change connector.destination_grants");
	if (!grant && SPI_processed == 0)
		ereport(NOTICE,
				(errmsg("role \"%s\" had no grant on destination \"%s\"",
						GetUserNameFromId(role, false), name)));
	leave_privileged_scope(&scope);
	SPI_finish();
}

/* fb_grant_destination(name, role): the role may list audiences of and export to it. */
Datum
fb_grant_destination(PG_FUNCTION_ARGS)
{
	change_grant(fcinfo, true);
	PG_RETURN_VOID();
}

Datum
fb_revoke_destination(PG_FUNCTION_ARGS)
{
	change_grant(fcinfo, false);
	PG_RETURN_VOID();
}
