/*
 * The ledger of a mirror or replace export: one entry per member its audience
 * holds (the digest of the source values that made it, then the member), in
 * digest order, stored in chunks of CHUNK_ENTRIES entries. Read entry by
 * entry through a cursor while a run diffs the segment against it (mirror.c);
 * rewritten from the next ledger the diff spooled once a run sent everything.
 *
 * The ledger belongs to the extension owner: it is read and written in the
 * privileged scope (owner, search_path pinned, every operator qualified).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "export_phases.h"
#include "privileged.h"
#include "run_records.h"

#define DIGEST_BYTES CONNECTOR_SOURCE_DIGEST_BYTES
/* Entries per ledger chunk: a few hundred KB, stored compressed out of line. */
#define CHUNK_ENTRIES 4096

/* A reader with nothing to read, until read_ledger. */
void
open_ledger(LedgerReader *reader)
{
	memset(reader, 0, sizeof(*reader));
	reader->chunk_context = AllocSetContextCreate(CurrentMemoryContext, "connector ledger chunk",
												  ALLOCSET_DEFAULT_SIZES);
}

void
read_ledger(LedgerReader *reader, int64 export_id)
{
	reader->portal = SPI_cursor_open_with_args(NULL,
											   "SELECT entries FROM connector.ledger"
											   " WHERE export_id OPERATOR(pg_catalog.=) $1 ORDER BY chunk",
											   1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(export_id)},
											   NULL, true, 0);
}

static void
malformed_ledger(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("the mirror ledger of this export is malformed"),
			 errhint("Run the export once with mode => 'replace': it rewrites the ledger.")));
}

/* Moves to the next entry; false at the end of the ledger. */
bool
next_ledger_entry(LedgerReader *reader)
{
	size_t		length;

	while (reader->portal != NULL && reader->at == reader->chunk_length)
	{
		bool		isnull;
		MemoryContext old;
		bytea	   *chunk;

		SPI_cursor_fetch(reader->portal, true, 1);
		if (SPI_processed == 0)
		{
			SPI_cursor_close(reader->portal);
			reader->portal = NULL;
			break;
		}
		MemoryContextReset(reader->chunk_context);
		old = MemoryContextSwitchTo(reader->chunk_context);
		chunk = DatumGetByteaPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		MemoryContextSwitchTo(old);
		SPI_freetuptable(SPI_tuptable);
		reader->chunk = VARDATA(chunk);
		reader->chunk_length = VARSIZE(chunk) - VARHDRSZ;
		reader->at = 0;
	}
	if (reader->portal == NULL && reader->at == reader->chunk_length)
		return false;
	if (reader->chunk_length - reader->at < DIGEST_BYTES + 2)
		malformed_ledger();
	reader->digest = reader->chunk + reader->at;
	reader->at += DIGEST_BYTES;
	length = (unsigned char) reader->chunk[reader->at] | (unsigned char) reader->chunk[reader->at + 1] << 8;
	reader->at += 2;
	if (reader->chunk_length - reader->at < length)
		malformed_ledger();
	reader->member = reader->chunk + reader->at;
	reader->member_length = length;
	reader->at += length;
	reader->entries++;
	return true;
}

void
close_ledger(LedgerReader *reader)
{
	if (reader->portal != NULL)
		SPI_cursor_close(reader->portal);
	MemoryContextDelete(reader->chunk_context);
}

static void
insert_chunk(int64 export_id, int32 chunk, StringInfo entries)
{
	bytea	   *value = palloc(VARHDRSZ + entries->len);

	SET_VARSIZE(value, VARHDRSZ + entries->len);
	memcpy(VARDATA(value), entries->data, entries->len);
	if (SPI_execute_with_args("INSERT INTO connector.ledger (export_id, chunk, entries) VALUES ($1, $2, $3)",
							  3, (Oid[]) {INT8OID, INT4OID, BYTEAOID},
							  (Datum[]) {Int64GetDatum(export_id), Int32GetDatum(chunk), PointerGetDatum(value)},
							  NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write connector.ledger");
	pfree(value);
	resetStringInfo(entries);
}

/*
 * Once a mirror or replace run sent everything, the ledger becomes what the
 * audience now holds: the next ledger the diff spooled, in chunks.
 */
void
record_ledger(const Run *run)
{
	PrivilegedScope scope;
	StringInfoData row;
	StringInfoData entries;
	int32		chunk = 0;
	int			in_chunk = 0;

	begin_step("connector: recording what the audience holds");
	enter_privileged_scope(&scope);
	/* Two runs of one export that finish together write its ledger one after the other. */
	if (SPI_execute_with_args("SELECT FROM connector.exports WHERE export_id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
							  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(run->export_id)},
							  NULL, false, 0) != SPI_OK_SELECT ||
		SPI_execute_with_args("DELETE FROM connector.ledger WHERE export_id OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(run->export_id)},
							  NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not reset connector.ledger");
	initStringInfo(&row);
	initStringInfo(&entries);
	if (BufFileSeek(run_resources.next_ledger, 0, 0, SEEK_SET) != 0)
		elog(ERROR, "could not rewind the ledger spool file");
	while (unspool_row(run_resources.next_ledger, &row))
	{
		int			length = row.len - DIGEST_BYTES;

		appendBinaryStringInfo(&entries, row.data, DIGEST_BYTES);
		appendStringInfoChar(&entries, (char) (length & 0xFF));
		appendStringInfoChar(&entries, (char) (length >> 8));
		appendBinaryStringInfo(&entries, row.data + DIGEST_BYTES, length);
		if (++in_chunk == CHUNK_ENTRIES)
		{
			insert_chunk(run->export_id, chunk++, &entries);
			in_chunk = 0;
			raise_if_cancelled();
		}
	}
	if (in_chunk > 0)
		insert_chunk(run->export_id, chunk, &entries);
	record_ledger_format(run->export_id, connector_export_encoder_member_format(run_resources.encoder));
	leave_privileged_scope(&scope);
	end_step();
}
