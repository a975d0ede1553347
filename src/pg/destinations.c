/*
 * Loading destinations and their secrets. Secrets are decrypted only in the
 * call that needs them and wiped afterwards; the key file never leaves the
 * core, and no secret is ever part of a message.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "core_errors.h"
#include "destinations.h"
#include "privileged.h"
#include "settings.h"

static bool
may_use_destination(Oid user, int64 destination_id)
{
	Oid			argtypes[2] = {INT8OID, OIDOID};
	Datum		values[2] = {Int64GetDatum(destination_id), ObjectIdGetDatum(user)};
	bool		isnull;

	if (is_destination_admin(user))
		return true;
	/* By OID: a grant never passes to a new role that took a dropped one's name. */
	if (SPI_execute_with_args("SELECT EXISTS (SELECT 1 FROM connector.destination_grants g"
							  " WHERE g.destination_id OPERATOR(pg_catalog.=) $1"
							  " AND pg_catalog.pg_has_role($2, g.grantee::pg_catalog.oid, 'USAGE'))",
							  2, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.destination_grants");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* A copy, in `context`, of a text or bytea column; NULL for SQL NULL. */
static bytea *
copy_varlena_column(HeapTuple tuple, TupleDesc desc, int column, MemoryContext context)
{
	bool		isnull;
	Datum		value = SPI_getbinval(tuple, desc, column, &isnull);
	MemoryContext old;
	bytea	   *copy;

	if (isnull)
		return NULL;
	old = MemoryContextSwitchTo(context);
	copy = DatumGetByteaPCopy(value);
	MemoryContextSwitchTo(old);
	return copy;
}

static char *
copy_text_column(HeapTuple tuple, TupleDesc desc, int column, MemoryContext context)
{
	bytea	   *copy = copy_varlena_column(tuple, desc, column, context);

	return copy != NULL ? MemoryContextStrdup(context, text_to_cstring((text *) copy)) : NULL;
}

Destination *
load_usable_destination(const char *name)
{
	MemoryContext caller_context = CurrentMemoryContext;
	Oid			user = GetUserId();
	PrivilegedScope scope;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};
	Destination *destination = NULL;
	bool		allowed = false;

	SPI_connect();
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("SELECT destination_id, name, ad_account_id, access_token, app_secret, status,"
							  " unhashed_keys_allowed_by IS NOT NULL"
							  " FROM connector.destinations WHERE name OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.destinations");
	if (SPI_processed == 1)
	{
		HeapTuple	tuple = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		destination = MemoryContextAllocZero(caller_context, sizeof(Destination));
		destination->id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		destination->name = copy_text_column(tuple, desc, 2, caller_context);
		destination->ad_account_id = copy_text_column(tuple, desc, 3, caller_context);
		destination->sealed_access_token = copy_varlena_column(tuple, desc, 4, caller_context);
		destination->sealed_app_secret = copy_varlena_column(tuple, desc, 5, caller_context);
		destination->status = copy_text_column(tuple, desc, 6, caller_context);
		destination->unhashed_keys_allowed = DatumGetBool(SPI_getbinval(tuple, desc, 7, &isnull));
		allowed = may_use_destination(user, destination->id);
	}
	leave_privileged_scope(&scope);
	SPI_finish();

	if (destination == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("destination \"%s\" does not exist", name),
				 errhint("SELECT name FROM fb_destinations lists the destinations you may use.")));
	if (!allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for destination \"%s\"", name),
				 errhint("A member of connector_admin can allow it: SELECT fb_grant_destination('%s', '%s');",
						 name, GetUserNameFromId(user, false))));
	return destination;
}

char *
secret_context(int64 destination_id, const char *field)
{
	return psprintf("destination/" INT64_FORMAT "/%s", destination_id, field);
}

static char *
open_sealed(const bytea *sealed, int64 destination_id, const char *field, const char *description)
{
	char	   *context = secret_context(destination_id, field);
	const char *out;
	size_t		out_len;
	ConnectorStatus status;
	char	   *plaintext;

	if (connector_open_secret(key_file_path(), VARDATA_ANY(sealed), VARSIZE_ANY_EXHDR(sealed),
							  context, description, &out, &out_len, &status) == CONNECTOR_ERROR)
		raise_core_error(&status);
	plaintext = palloc(out_len + 1);
	memcpy(plaintext, out, out_len);
	plaintext[out_len] = '\0';
	connector_forget_secret();
	return plaintext;
}

char *
open_access_token(const Destination *destination)
{
	return open_sealed(destination->sealed_access_token, destination->id, "access_token",
					   psprintf("the access token of destination \"%s\"", destination->name));
}

char *
open_app_secret(const Destination *destination)
{
	if (destination->sealed_app_secret == NULL)
		return NULL;
	return open_sealed(destination->sealed_app_secret, destination->id, "app_secret",
					   psprintf("the app secret of destination \"%s\"", destination->name));
}

DestinationCredentials
open_credentials(const Destination *destination)
{
	DestinationCredentials credentials;

	credentials.access_token = open_access_token(destination);
	credentials.app_secret = open_app_secret(destination);
	return credentials;
}

void
forget_credentials(DestinationCredentials *credentials)
{
	if (credentials->access_token != NULL)
		explicit_bzero(credentials->access_token, strlen(credentials->access_token));
	if (credentials->app_secret != NULL)
		explicit_bzero(credentials->app_secret, strlen(credentials->app_secret));
}

/* Polled by the core while a request is in flight. */
static bool
interrupt_pending(void)
{
	return QueryCancelPending || ProcDiePending;
}

ConnectorGraphConfig
graph_config(const DestinationCredentials *credentials)
{
	ConnectorGraphConfig config;

	config.base_url = connector_graph_api_url;
	config.api_version = connector_graph_api_version;
	config.ca_file = connector_ca_file != NULL ? connector_ca_file : "";
	config.connect_timeout_ms = connector_connect_timeout_ms;
	config.request_timeout_ms = connector_request_timeout_ms;
	config.access_token = credentials->access_token;
	config.app_secret = credentials->app_secret != NULL ? credentials->app_secret : "";
	config.should_abort = interrupt_pending;
	return config;
}

void
raise_graph_error(const ConnectorStatus *status)
{
	CHECK_FOR_INTERRUPTS();
	raise_core_error(status);
}
