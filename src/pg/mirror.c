/*
 * Mirror mode: the segment's payload rows are staged, once the requester's
 * read is over, in a temporary table that plain SQL diffs against the ledger
 * of what Meta confirmed for the export: what is new is sent, what is gone is
 * removed, and the ledger changes only for batches Meta confirmed. A replace
 * leaves the ledger equal to the audience it made. The tables belong to the
 * extension owner; everything here runs in the worker scope (owner,
 * search_path pinned, every operator qualified).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "export_phases.h"
#include "privileged.h"
#include "run_records.h"
#include "settings.h"

/* Rows staged per statement. */
#define STAGE_ROWS 1000

/* A mirror run that would remove more than connector.mirror_max_removal allows. */
#define ERRCODE_MIRROR_REMOVAL_LIMIT MAKE_SQLSTATE('U', 'C', '0', '0', '1')

/*
 * Mirror mode stages the segment's payload rows, read from the spool once the
 * read is over, in a temporary table, so that plain SQL can diff them against
 * the ledger of what Meta confirmed before. The tables belong to the extension
 * owner, like the ledger; everything here runs in the worker scope (owner,
 * search_path pinned, every operator qualified), after the requester's scope
 * has ended and every setting the segment's code changed was rolled back.
 */
static void
insert_spooled_rows(BufFile *spool, const char *insert, int64 export_id)
{
	Datum	   *rows = palloc(sizeof(Datum) * STAGE_ROWS);
	int			count = 0;
	StringInfoData row;
	MemoryContext rows_context = AllocSetContextCreate(CurrentMemoryContext, "connector staged rows",
													   ALLOCSET_DEFAULT_SIZES);
	bool		more = true;

	if (BufFileSeek(spool, 0, 0, SEEK_SET) != 0)
		elog(ERROR, "could not rewind the export spool file");
	initStringInfo(&row);
	while (more)
	{
		more = unspool_row(spool, &row);
		if (more)
		{
			MemoryContext old = MemoryContextSwitchTo(rows_context);

			rows[count++] = PointerGetDatum(cstring_to_text_with_len(row.data, row.len));
			MemoryContextSwitchTo(old);
		}
		if (count == STAGE_ROWS || (!more && count > 0))
		{
			Datum		values[2];
			MemoryContext old = MemoryContextSwitchTo(rows_context);

			/* With the rows, so that both go at the reset below: memory stays one batch. */
			values[0] = Int64GetDatum(export_id);
			values[1] = PointerGetDatum(construct_array(rows, count, TEXTOID, -1, false, TYPALIGN_INT));
			MemoryContextSwitchTo(old);
			if (SPI_execute_with_args(insert, 2, (Oid[]) {INT8OID, TEXTARRAYOID}, values, NULL, false, 0)
				!= SPI_OK_INSERT)
				elog(ERROR, "could not stage the segment's rows");
			count = 0;
			MemoryContextReset(rows_context);
			raise_if_cancelled();
		}
	}
	MemoryContextDelete(rows_context);
}

/* The same row twice in a segment is one member. */
#define INSERT_ROWS_OF(table_and_columns, export_id) \
	"INSERT INTO " table_and_columns " SELECT " export_id "pg_catalog.sha256(pg_catalog.convert_to(r, 'UTF8')), r" \
	" FROM pg_catalog.unnest($2::pg_catalog.text[]) AS r ON CONFLICT DO NOTHING"

static void
stage_spooled_rows(BufFile *spool)
{
	if (SPI_execute("DROP TABLE IF EXISTS pg_temp.connector_current, pg_temp.connector_adds,"
					" pg_temp.connector_removes;"
					"CREATE TEMP TABLE connector_current (row_hash bytea PRIMARY KEY, row_json text NOT NULL)",
					false, 0) < 0)
		elog(ERROR, "could not create the mirror staging table");
	/* $1, the export, is not needed here. */
	insert_spooled_rows(spool, INSERT_ROWS_OF("pg_temp.connector_current (row_hash, row_json)", ""), 0);
}

/* Spools a staged table's rows in seq order; returns how many. */
static int64
spool_table(const char *query, BufFile **file)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	Portal		portal;
	int64		rows = 0;
	bool		isnull;

	*file = BufFileCreateTemp(true);
	MemoryContextSwitchTo(old);
	/* Not read-only: it must see what this transaction just wrote. */
	portal = SPI_cursor_open_with_args(NULL, query, 0, NULL, NULL, NULL, false, 0);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, STAGE_ROWS);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			text	   *json = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

			spool_row(*file, VARDATA_ANY(json), VARSIZE_ANY_EXHDR(json));
			rows++;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	return rows;
}

/*
 * What is new since the ledger, and what is gone, each spooled in seq order;
 * the segment's spool is replaced by the spool of what is new.
 */
void
diff_against_ledger(Run *run, const char *schema)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(run->export_id)};
	bool		isnull;
	PrivilegedScope scope;

	enter_worker_scope(&scope);
	stage_spooled_rows(run_resources.spool);
	BufFileClose(run_resources.spool);
	run_resources.spool = NULL;

	/* A ledger written with other columns cannot be diffed: start it anew. */
	if (set_ledger_schema(run->export_id, schema))
	{
		ereport(WARNING,
				(errmsg("the columns exported from segment %s changed since its last mirror run", run->segment),
				 errdetail("Rows sent with the old columns stay in the audience."),
				 errhint("Run it once with mode => 'replace' to make the audience exactly the segment.")));
		if (SPI_execute_with_args("DELETE FROM connector.ledger WHERE export_id OPERATOR(pg_catalog.=) $1",
								  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not reset connector.ledger");
	}
	if (SPI_execute_with_args("CREATE TEMP TABLE connector_adds AS"
							  " SELECT pg_catalog.row_number() OVER (ORDER BY c.row_hash) AS seq, c.row_hash, c.row_json"
							  " FROM pg_temp.connector_current c WHERE NOT EXISTS (SELECT FROM connector.ledger l"
							  "  WHERE l.export_id OPERATOR(pg_catalog.=) $1"
							  "  AND l.row_hash OPERATOR(pg_catalog.=) c.row_hash)",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_UTILITY ||
		SPI_execute_with_args("CREATE TEMP TABLE connector_removes AS"
							  " SELECT pg_catalog.row_number() OVER (ORDER BY l.row_hash) AS seq, l.row_hash, l.row_json"
							  " FROM connector.ledger l WHERE l.export_id OPERATOR(pg_catalog.=) $1"
							  " AND NOT EXISTS (SELECT FROM pg_temp.connector_current c"
							  "  WHERE c.row_hash OPERATOR(pg_catalog.=) l.row_hash)",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_UTILITY ||
		SPI_execute("CREATE INDEX ON pg_temp.connector_adds (seq);"
					"CREATE INDEX ON pg_temp.connector_removes (seq);"
					"DROP TABLE pg_temp.connector_current", false, 0) < 0)
		elog(ERROR, "could not diff the segment against the ledger");

	if (SPI_execute_with_args("SELECT pg_catalog.count(*) FROM connector.ledger"
							  " WHERE export_id OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count connector.ledger");
	run->ledger_rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	run->rows_kept = spool_table("SELECT row_json FROM pg_temp.connector_adds ORDER BY seq",
								 &run_resources.spool);
	run->rows_to_remove = spool_table("SELECT row_json FROM pg_temp.connector_removes ORDER BY seq",
									  &run_resources.removals);
	leave_privileged_scope(&scope);
}

/*
 * A mirror run never empties an audience by accident (a view that returned
 * nothing, a broken join): removing more than the run's share of what the
 * export sent fails before anything is sent.
 */
void
check_mirror_removal(const Run *run)
{
	if (run->mode != EXPORT_MIRROR || run->rows_to_remove == 0 ||
		run->rows_to_remove <= run->mirror_max_removal * run->ledger_rows)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_MIRROR_REMOVAL_LIMIT),
			 errmsg("the mirror run of segment %s would remove " INT64_FORMAT " of the " INT64_FORMAT " members this export sent, more than connector.mirror_max_removal (%g)",
					run->segment, run->rows_to_remove, run->ledger_rows, run->mirror_max_removal),
			 errdetail("The segment read " INT64_FORMAT " rows; nothing was sent.", run->rows_read),
			 errhint("If the segment really shrank, export it again after SET connector.mirror_max_removal = 1; (it is kept with the run); otherwise fix the view first.")));
}

/*
 * The ledger follows a confirmed batch, in the caller's step: batch k of an
 * operation holds rows (k-1)*batch_size+1 .. of its spool, in seq order.
 */
void
record_ledger_batch(const Run *run, bool removing, int64 batch_seq, int64 rows)
{
	int64		first = (batch_seq - 1) * connector_batch_size;
	Oid			argtypes[3] = {INT8OID, INT8OID, INT8OID};
	Datum		values[3] = {Int64GetDatum(run->export_id), Int64GetDatum(first), Int64GetDatum(first + rows)};

	if (SPI_execute_with_args(removing
							  ? "DELETE FROM connector.ledger l USING pg_temp.connector_removes r"
							  " WHERE l.export_id OPERATOR(pg_catalog.=) $1"
							  " AND l.row_hash OPERATOR(pg_catalog.=) r.row_hash"
							  " AND r.seq OPERATOR(pg_catalog.>) $2 AND r.seq OPERATOR(pg_catalog.<=) $3"
							  : "INSERT INTO connector.ledger (export_id, row_hash, row_json)"
							  " SELECT $1, row_hash, row_json FROM pg_temp.connector_adds"
							  " WHERE seq OPERATOR(pg_catalog.>) $2 AND seq OPERATOR(pg_catalog.<=) $3"
							  " ON CONFLICT DO NOTHING",
							  3, argtypes, values, NULL, false, 0) < 0)
		elog(ERROR, "could not update connector.ledger");
}

/*
 * After a replace the audience is exactly the segment: so is the ledger, so
 * that a later mirror run of the export starts from what the replace made.
 */
void
record_replaced_ledger(const Run *run)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(run->export_id)};
	PrivilegedScope scope;

	begin_step("connector: recording what the replace made the audience");
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("DELETE FROM connector.ledger WHERE export_id OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not reset connector.ledger");
	/* Straight from the spool: no staging table is needed to write what was sent. */
	insert_spooled_rows(run_resources.spool,
						INSERT_ROWS_OF("connector.ledger (export_id, row_hash, row_json)", "$1, "),
						run->export_id);
	(void) set_ledger_schema(run->export_id, connector_export_encoder_schema(run_resources.encoder));
	leave_privileged_scope(&scope);
	end_step();
}
