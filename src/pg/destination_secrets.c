/*
 * The secrets of destinations as the destination functions take them: from
 * an argument or a server file, checked, sealed under the key file; and the
 * wrapper that keeps a statement carrying a token out of the server log.
 */
#include "postgres.h"

#include <unistd.h>

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "core_errors.h"
#include "destination_admin.h"
#include "destinations.h"
#include "privileged.h"
#include "settings.h"

#define MAX_SECRET_LENGTH 4096

/* Runs body(fcinfo); any error it raises is re-raised without statement and context. */
Datum
without_statement_in_errors(PGFunction body, FunctionCallInfo fcinfo)
{
	MemoryContext context = CurrentMemoryContext;
	Datum		result = (Datum) 0;

	PG_TRY();
	{
		result = body(fcinfo);
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(context);
		error = CopyErrorData();
		FlushErrorState();
		error->hide_stmt = true;
		error->hide_ctx = true;
		ReThrowError(error);
	}
	PG_END_TRY();
	return result;
}

/*
 * A secret must be printable ASCII without spaces: it travels in an HTTP
 * header, where a line break would be an injection. The value is never shown.
 */
static void
check_secret(const char *secret, const char *what, const char *destination)
{
	size_t		length = strlen(secret);
	size_t		i;

	if (length == 0 || length > MAX_SECRET_LENGTH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the %s for destination \"%s\" is empty or too long", what, destination)));
	for (i = 0; i < length; i++)
		if (secret[i] <= ' ' || secret[i] > '~')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the %s for destination \"%s\" contains spaces or characters that are not printable ASCII",
							what, destination),
					 errhint("Paste the value exactly as Meta Business Settings shows it.")));
}

/*
 * Reads a secret from a file on the database server, so that it never appears
 * in SQL text, the server log or pg_stat_activity. Surrounding whitespace and
 * a trailing newline are removed.
 */
static char *
read_secret_file(const char *path, const char *what, const char *destination)
{
	FILE	   *file;
	char	   *buffer = palloc(MAX_SECRET_LENGTH + 2);
	size_t		length;
	char	   *start;

	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read the %s of destination \"%s\" from a file", what, destination),
				 errhint("Reading server files needs superuser or membership in pg_read_server_files.")));
	file = AllocateFile(path, "r");
	if (file == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open the %s file \"%s\" for destination \"%s\": %m", what, path, destination)));
	length = fread(buffer, 1, MAX_SECRET_LENGTH + 1, file);
	FreeFile(file);
	if (length > MAX_SECRET_LENGTH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the %s file \"%s\" is larger than %d bytes", what, path, MAX_SECRET_LENGTH)));
	buffer[length] = '\0';
	while (length > 0 && isspace((unsigned char) buffer[length - 1]))
		buffer[--length] = '\0';
	for (start = buffer; isspace((unsigned char) *start); start++)
		;
	return start;
}

/* The secret from the argument or the file, never both. */
char *
secret_from(const char *literal, const char *path, const char *what, const char *destination)
{
	char	   *secret;

	if (literal != NULL && path != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("give the %s for destination \"%s\" either as a value or as a file, not both",
						what, destination)));
	if (literal == NULL && path == NULL)
		return NULL;
	secret = path != NULL ? read_secret_file(path, what, destination) : pstrdup(literal);
	check_secret(secret, what, destination);
	return secret;
}

/*
 * Seals a secret of a destination. Runs in the privileged scope. A missing
 * key file is created only while no other destination holds a secret: one
 * sealed under a lost key must never be stranded by a new key made silently.
 */
bytea *
seal(const char *plaintext, int64 destination_id, const char *field)
{
	char	   *context = secret_context(destination_id, field);
	const char *out;
	size_t		out_len;
	ConnectorStatus status;
	bytea	   *sealed;
	bool		only_secrets;

	const char *key_path = key_file_path();
	bool		creates_key;
	bool		isnull;

	if (SPI_execute_with_args("SELECT NOT EXISTS (SELECT FROM connector.destinations"
							  " WHERE destination_id OPERATOR(pg_catalog.<>) $1)",
							  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(destination_id)},
							  NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.destinations");
	only_secrets = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	creates_key = only_secrets && access(key_path, F_OK) != 0;

	if (connector_seal_secret(key_path, only_secrets, plaintext, strlen(plaintext), context,
							  &out, &out_len, &status) == CONNECTOR_ERROR)
		raise_core_error(&status);
	/* Said aloud: other databases of the cluster may hold secrets under a key that was lost. */
	if (creates_key)
		ereport(LOG,
				(errmsg("connector: created the key file \"%s\" for the secrets of destinations", key_path),
				 errhidestmt(true), errhidecontext(true)));
	sealed = palloc(VARHDRSZ + out_len);
	SET_VARSIZE(sealed, VARHDRSZ + out_len);
	memcpy(VARDATA(sealed), out, out_len);
	return sealed;
}

