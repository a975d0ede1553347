/*
 * fb_forget(destination, key, value): the right to erasure. The person named
 * by one identifier (normalized and hashed as an export does) is removed from
 * every audience connector manages for the destination, by that identifier
 * and, where a mirror or replace ledger knows them, by the very rows that were
 * sent; those ledger entries become tombstones: the source digest stays with
 * no member, so an unchanged source row is not sent again while a new or
 * changed one is. Every call is recorded in connector.erasures (who, when,
 * how many audiences and ledger entries), never the identifier; errors never
 * carry the statement, which holds it.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "module.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "core_errors.h"
#include "destination_admin.h"
#include "destinations.h"
#include "privileged.h"
#include "sql_args.h"

#define DIGEST_BYTES CONNECTOR_SOURCE_DIGEST_BYTES

CONNECTOR_SQL_FUNCTION(fb_forget);

/* Refuses while a run of the destination is going: its ledger is in flight. */
static void
lock_destination_exports(const Destination *destination)
{
	Datum		id = Int64GetDatum(destination->id);

	/* No run of the destination's exports can be queued until the call ends. */
	if (SPI_execute_with_args("SELECT FROM connector.exports WHERE destination_id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
							  1, (Oid[]) {INT8OID}, &id, NULL, false, 0) != SPI_OK_SELECT ||
		SPI_execute_with_args("SELECT r.run_id FROM connector.runs r"
							  " JOIN connector.exports e ON e.export_id OPERATOR(pg_catalog.=) r.export_id"
							  " WHERE e.destination_id OPERATOR(pg_catalog.=) $1 AND r.status OPERATOR(pg_catalog.=) 'running'"
							  " LIMIT 1", 1, (Oid[]) {INT8OID}, &id, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.runs");
	if (SPI_processed == 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("export run %s of destination \"%s\" is running",
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), destination->name),
				 errhint("Call fb_forget again when it has finished, or cancel it with fb_cancel_export.")));
}

/* A session id for a removal: positive, never reused. */
static int64
new_session_id(void)
{
	int64		session_id;

	if (!pg_strong_random(&session_id, sizeof(session_id)))
		elog(ERROR, "could not generate a session id");
	return (session_id & INT64CONST(0x3FFFFFFFFFFFFFFF)) | 1;
}

/*
 * Sends the person's members of one export's ledger, as they were sent, for
 * removal from its audience: whatever Meta matched them to goes too.
 */
static void
remove_members(const ConnectorGraphConfig *graph, const char *format, const char *audience_id,
			   List *members)
{
	int			count = list_length(members);
	const char **data = palloc(sizeof(char *) * count);
	size_t	   *lengths = palloc(sizeof(size_t) * count);
	ConnectorStatus status;
	ListCell   *cell;
	int			i = 0;

	foreach(cell, members)
	{
		bytea	   *member = (bytea *) lfirst(cell);

		data[i] = VARDATA(member);
		lengths[i++] = VARSIZE(member) - VARHDRSZ;
	}
	if (connector_forget_members_in_audience(graph, format, data, lengths, count, audience_id,
											 new_session_id(), &status) == CONNECTOR_ERROR)
		raise_core_error(&status);
}

/*
 * Turns the person's entries of one export's ledger into tombstones and
 * removes those members from the export's audience; how many.
 */
static int64
forget_in_ledger(int64 export_id, const char *format, const char *audience_id,
				 const ConnectorForgotten *forgotten, const ConnectorGraphConfig *graph)
{
	List	   *members = NIL;
	ConnectorStatus status;
	ConnectorForgetMatcher *matcher = connector_forget_matcher_new(forgotten, format, &status);
	int64		forgotten_entries = 0;
	uint64		i;

	if (matcher == NULL)
		raise_core_error(&status);
	PG_TRY();
	{
		SPITupleTable *chunks;
		uint64		count;

		if (!connector_forget_matcher_applies(matcher) ||
			SPI_execute_with_args("SELECT chunk, entries FROM connector.ledger WHERE export_id OPERATOR(pg_catalog.=) $1",
								  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(export_id)},
								  NULL, false, 0) != SPI_OK_SELECT)
			count = 0;
		else
			count = SPI_processed;
		chunks = SPI_tuptable;
		for (i = 0; i < count; i++)
		{
			bool		isnull;
			int32		chunk = DatumGetInt32(SPI_getbinval(chunks->vals[i], chunks->tupdesc, 1, &isnull));
			bytea	   *entries = DatumGetByteaPP(SPI_getbinval(chunks->vals[i], chunks->tupdesc, 2, &isnull));
			const char *data = VARDATA_ANY(entries);
			size_t		length = VARSIZE_ANY_EXHDR(entries);
			size_t		at = 0;
			StringInfoData kept;
			int64		in_chunk = 0;

			initStringInfo(&kept);
			while (at < length)
			{
				size_t		member_length;
				ConnectorResult matched;

				if (length - at < DIGEST_BYTES + 2)
					elog(ERROR, "malformed ledger of export " INT64_FORMAT, export_id);
				member_length = (unsigned char) data[at + DIGEST_BYTES] |
					(unsigned char) data[at + DIGEST_BYTES + 1] << 8;
				if (length - at - DIGEST_BYTES - 2 < member_length)
					elog(ERROR, "malformed ledger of export " INT64_FORMAT, export_id);
				matched = connector_forget_matches(matcher, data + at + DIGEST_BYTES + 2, member_length, &status);
				if (matched == CONNECTOR_ERROR)
					raise_core_error(&status);
				if (matched == CONNECTOR_VALUE)
				{
					bytea	   *member = palloc(VARHDRSZ + member_length);

					SET_VARSIZE(member, VARHDRSZ + member_length);
					memcpy(VARDATA(member), data + at + DIGEST_BYTES + 2, member_length);
					members = lappend(members, member);
					/* The digest stays, the member goes. */
					appendBinaryStringInfo(&kept, data + at, DIGEST_BYTES);
					appendStringInfoChar(&kept, 0);
					appendStringInfoChar(&kept, 0);
					in_chunk++;
				}
				else
					appendBinaryStringInfo(&kept, data + at, DIGEST_BYTES + 2 + member_length);
				at += DIGEST_BYTES + 2 + member_length;
			}
			if (in_chunk > 0)
			{
				bytea	   *value = palloc(VARHDRSZ + kept.len);

				SET_VARSIZE(value, VARHDRSZ + kept.len);
				memcpy(VARDATA(value), kept.data, kept.len);
				if (SPI_execute_with_args("UPDATE connector.ledger SET entries = $3"
										  " WHERE export_id OPERATOR(pg_catalog.=) $1 AND chunk OPERATOR(pg_catalog.=) $2",
										  3, (Oid[]) {INT8OID, INT4OID, BYTEAOID},
										  (Datum[]) {Int64GetDatum(export_id), Int32GetDatum(chunk), PointerGetDatum(value)},
										  NULL, false, 0) != SPI_OK_UPDATE)
					elog(ERROR, "could not update connector.ledger");
				forgotten_entries += in_chunk;
			}
		}
		if (members != NIL && audience_id != NULL)
			remove_members(graph, format, audience_id, members);
	}
	PG_FINALLY();
	{
		connector_forget_matcher_free(matcher);
	}
	PG_END_TRY();
	return forgotten_entries;
}

static Datum
forget(PG_FUNCTION_ARGS)
{
	char	   *destination_name = text_arg(fcinfo, 0);
	char	   *key = text_arg(fcinfo, 1);
	char	   *value = text_arg(fcinfo, 2);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext context = CurrentMemoryContext;
	Destination *destination;
	DestinationCredentials credentials;
	ConnectorForgotten *forgotten;
	ConnectorStatus status;
	PrivilegedScope scope;
	int64		audiences = 0;
	int64		entries = 0;
	uint64		i;

	require_destination_admin("forget a person");
	destination = load_usable_destination(destination_name);
	forgotten = connector_forgotten_new(key, value, &status);
	if (forgotten == NULL)
		raise_core_error(&status);
	InitMaterializedSRF(fcinfo, 0);
	credentials = open_credentials(destination);
	PG_TRY();
	{
		ConnectorGraphConfig graph = graph_config(&credentials);
		SPITupleTable *found;
		uint64		count;

		SPI_connect();
		enter_privileged_scope(&scope);
		lock_destination_exports(destination);
		if (SPI_execute_with_args("SELECT audience_id FROM connector.audiences WHERE destination_id OPERATOR(pg_catalog.=) $1"
								  " UNION SELECT audience_id FROM connector.exports"
								  " WHERE destination_id OPERATOR(pg_catalog.=) $1 AND audience_id IS NOT NULL"
								  " ORDER BY 1", 1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(destination->id)},
								  NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read connector.audiences");
		found = SPI_tuptable;
		count = SPI_processed;
		for (i = 0; i < count; i++)
		{
			char	   *audience_id = SPI_getvalue(found->vals[i], found->tupdesc, 1);
			ConnectorResult result;
			Datum		values[2];
			bool		nulls[2] = {false, false};

			result = connector_forget_in_audience(&graph, forgotten, audience_id, new_session_id(), &status);
			if (result == CONNECTOR_ERROR)
				raise_core_error(&status);
			values[0] = CStringGetTextDatum(audience_id);
			values[1] = CStringGetTextDatum(result == CONNECTOR_VALUE ? "removed" : "deleted at Meta");
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			if (result == CONNECTOR_VALUE)
				audiences++;
		}
		if (SPI_execute_with_args("SELECT export_id, ledger_format, audience_id FROM connector.exports"
								  " WHERE destination_id OPERATOR(pg_catalog.=) $1 AND ledger_format IS NOT NULL",
								  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(destination->id)},
								  NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read connector.exports");
		found = SPI_tuptable;
		count = SPI_processed;
		for (i = 0; i < count; i++)
		{
			bool		isnull;

			entries += forget_in_ledger(DatumGetInt64(SPI_getbinval(found->vals[i], found->tupdesc, 1, &isnull)),
										SPI_getvalue(found->vals[i], found->tupdesc, 2),
										SPI_getvalue(found->vals[i], found->tupdesc, 3), forgotten, &graph);
		}
		if (SPI_execute_with_args("INSERT INTO connector.erasures (destination, key, audiences, ledger_entries, requested_by)"
								  " VALUES ($1, $2, $3, $4, $5)", 5,
								  (Oid[]) {TEXTOID, TEXTOID, INT4OID, INT8OID, TEXTOID},
								  (Datum[]) {CStringGetTextDatum(destination->name), CStringGetTextDatum(key),
									  Int32GetDatum((int32) audiences), Int64GetDatum(entries),
								  CStringGetTextDatum(GetUserNameFromId(scope.caller, false))},
								  NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not insert into connector.erasures");
		leave_privileged_scope(&scope);
		SPI_finish();
	}
	PG_FINALLY();
	{
		connector_forgotten_free(forgotten);
		forget_credentials(&credentials);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(context);
	ereport(NOTICE,
			(errmsg_plural("the person was removed from " INT64_FORMAT " audience of destination \"%s\"; " INT64_FORMAT
						   " ledger entries forgotten",
						   "the person was removed from " INT64_FORMAT " audiences of destination \"%s\"; " INT64_FORMAT
						   " ledger entries forgotten",
						   (unsigned long) audiences, audiences, destination->name, entries),
			 errhint("Runs in add or replace mode send every row of their segment: take the person out of the segment too.")));
	return (Datum) 0;
}

/* fb_forget(destination, key, value) RETURNS TABLE (audience_id text, outcome text) */
Datum
fb_forget(PG_FUNCTION_ARGS)
{
	return without_statement_in_errors(forget, fcinfo);
}
