/*
 * One export run. Three phases, none holding a transaction across HTTP:
 *
 *  1. read: one REPEATABLE READ transaction, as the role that asked for the
 *     run, reads the segment with an SPI cursor; each row is normalized and
 *     hashed by the core and spooled to a temporary file (the segment is
 *     never held in memory), rows without a key identifier counted by reason;
 *  2. audience: reused or created at Meta, and remembered;
 *  3. send: batches from the spool go to the Graph API with several requests
 *     in flight; every outcome is committed to connector.runs as it comes.
 *
 * A segment over connector.max_profiles_per_export fails in 1, at the first
 * profile past the limit, before anything is sent.
 */
#include "postgres.h"

#include <signal.h>

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/buffile.h"
#include "storage/ipc.h"
#include "storage/pmsignal.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "core_errors.h"
#include "destinations.h"
#include "export_run.h"
#include "privileged.h"
#include "requester_scope.h"
#include "settings.h"

#define FETCH_ROWS 1000
/* What one fetch of the segment may hold: the read is bounded by bytes, not rows. */
#define READ_BUDGET_BYTES (8 * 1024 * 1024)

/* A mirror run that would remove more than connector.mirror_max_removal allows. */
#define ERRCODE_MIRROR_REMOVAL_LIMIT MAKE_SQLSTATE('U', 'C', '0', '0', '1')
#define MAX_RESULTS 64

volatile sig_atomic_t export_cancel_requested = false;

typedef struct Run
{
	int64		run_id;
	int64		export_id;
	Oid			requested_by;
	Oid			owner;			/* of the export: audiences are reused by name per owner */
	char	   *segment;
	char	   *destination_name;
	char	   *audience_id;
	char	   *audience_name;
	char	   *mapping;
	char	   *key_identifier;
	char	   *mode;
	int64		session_id;
	/* read phase */
	int64		rows_read;
	int64		rows_exportable;	/* rows with a key identifier: the segment's size */
	int64		rows_kept;		/* to add, or to replace with */
	int64		rows_to_remove; /* mirror */
	int64		ledger_rows;	/* mirror: members this export had sent before */
	double		mirror_max_removal; /* the caller's setting, pinned in the run */
	int64		skipped[CONNECTOR_SKIP_REASONS];
	int64		rejected_prehashed;
	bool		unhashed_keys_allowed;	/* by the destination's admin */
} Run;

/* What must be released however the run ends. */
typedef struct RunResources
{
	ConnectorExportEncoder *encoder;
	ConnectorExportSender *sender;
	BufFile    *spool;			/* rows to add (or replace with) */
	BufFile    *removals;		/* mirror: rows to remove */
	DestinationCredentials credentials;
} RunResources;

static RunResources resources;

static void
release_resources(void)
{
	if (resources.sender != NULL)
		connector_export_sender_free(resources.sender);
	if (resources.encoder != NULL)
		connector_export_encoder_free(resources.encoder);
	if (resources.spool != NULL)
		BufFileClose(resources.spool);
	if (resources.removals != NULL)
		BufFileClose(resources.removals);
	forget_credentials(&resources.credentials);
	memset(&resources, 0, sizeof(resources));
}

/* Polled by the core while requests are in flight: a dead postmaster stops them too. */
static bool
export_should_abort(void)
{
	return export_cancel_requested || ProcDiePending || QueryCancelPending || !PostmasterIsAlive();
}

static void
raise_if_cancelled(void)
{
	/* Nothing can be recorded any more; the restarted server recovers the run. */
	if (!PostmasterIsAlive())
		proc_exit(1);
	if (export_cancel_requested)
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("export run cancelled")));
	CHECK_FOR_INTERRUPTS();
}

static void
begin_step(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
end_step(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

static char *
text_column(int column)
{
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column);
}

static Oid
oid_column(int column)
{
	bool		isnull;

	return DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, &isnull));
}

/* Loads the run and marks it running; false when it is no longer queued. */
static bool
start_run(int64 run_id, Run *run)
{
	PrivilegedScope scope;
	Oid			argtypes[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(run_id), Int32GetDatum(MyProcPid)};
	MemoryContext run_context = TopMemoryContext;
	MemoryContext old;
	bool		startable;
	bool		isnull;

	begin_step("connector: starting an export run");
	enter_privileged_scope(&scope);
	/* The configuration pinned in the run when it was queued, not the export's of now. */
	if (SPI_execute_with_args("SELECT r.export_id, r.requested_by::pg_catalog.oid, r.status, e.segment, d.name,"
							  " r.audience_id, e.audience_name, r.mapping::pg_catalog.text, r.key_identifier,"
							  " r.mode, e.owner::pg_catalog.oid, r.mirror_max_removal"
							  " FROM connector.runs r"
							  " JOIN connector.exports e ON e.export_id OPERATOR(pg_catalog.=) r.export_id"
							  " JOIN connector.destinations d ON d.destination_id OPERATOR(pg_catalog.=) e.destination_id"
							  " WHERE r.run_id OPERATOR(pg_catalog.=) $1 FOR UPDATE OF r",
							  1, argtypes, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.runs");
	startable = SPI_processed == 1 && strcmp(text_column(3), "queued") == 0;
	if (startable)
	{
		old = MemoryContextSwitchTo(run_context);
		run->run_id = run_id;
		run->export_id = pg_strtoint64(text_column(1));
		run->requested_by = oid_column(2);
		run->owner = oid_column(11);
		run->mirror_max_removal = DatumGetFloat4(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
															   12, &isnull));
		run->segment = pstrdup(text_column(4));
		run->destination_name = pstrdup(text_column(5));
		run->audience_id = text_column(6) ? pstrdup(text_column(6)) : NULL;
		run->audience_name = pstrdup(text_column(7));
		run->mapping = text_column(8) ? pstrdup(text_column(8)) : NULL;
		run->key_identifier = text_column(9) ? pstrdup(text_column(9)) : NULL;
		run->mode = pstrdup(text_column(10));
		MemoryContextSwitchTo(old);
		if (SPI_execute_with_args("UPDATE connector.runs SET status = 'running',"
								  " started_at = pg_catalog.now(), worker_pid = $2 WHERE run_id OPERATOR(pg_catalog.=) $1",
								  2, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update connector.runs");
	}
	leave_privileged_scope(&scope);
	end_step();
	return startable;
}

/* The segment's relation, checked as the role that asked for the run. */
static Relation
open_segment(const char *segment)
{
	List	   *names = textToQualifiedNameList(cstring_to_text(segment));
	Oid			relid = RangeVarGetRelid(makeRangeVarFromNameList(names), AccessShareLock, true);
	Relation	relation;
	char		relkind;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("segment %s does not exist any more", segment),
				 errhint("Recreate the view, or export another segment.")));
	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_VIEW && relkind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is not a view or materialized view", segment)));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for segment %s", segment)));
	relation = relation_open(relid, NoLock);
	return relation;
}

ConnectorExportEncoder *
encoder_for_relation(Relation relation, const char *segment, const char *mapping,
					 const char *key_identifier)
{
	TupleDesc	desc = RelationGetDescr(relation);
	const char **names = palloc(sizeof(char *) * Max(desc->natts, 1));
	int			count = 0;
	int			i;
	ConnectorStatus status;
	ConnectorExportEncoder *encoder;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attribute = TupleDescAttr(desc, i);

		if (!attribute->attisdropped)
			names[count++] = NameStr(attribute->attname);
	}
	encoder = connector_export_encoder_new(segment, names, count, mapping, key_identifier, &status);
	if (encoder == NULL)
		raise_core_error(&status);
	return encoder;
}

void
require_unhashed_keys_allowed(const ConnectorExportEncoder *encoder, const char *segment,
							  const char *destination, bool allowed)
{
	const char *keys = connector_export_encoder_unhashed_keys(encoder);

	if (keys[0] == '\0' || allowed)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("destination \"%s\" does not allow unhashed keys, and the export of segment %s maps %s",
					destination, segment, keys),
			 errdetail("EXTERN_ID and MADID leave the database unhashed; the consent recorded for a destination covers hashed data."),
			 errhint("Leave them out of the mapping, or have a member of connector_admin allow them: SELECT fb_alter_destination('%s', allow_unhashed_keys => true);",
					 destination)));
}

/* Name of the index-th live column of the relation. */
static const char *
live_column_name(Relation relation, int index)
{
	TupleDesc	desc = RelationGetDescr(relation);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attribute = TupleDescAttr(desc, i);

		if (attribute->attisdropped)
			continue;
		if (index-- == 0)
			return NameStr(attribute->attname);
	}
	elog(ERROR, "column %d of the segment is gone", index);
}

static void
spool_row(BufFile *file, const char *row, size_t length)
{
	uint32		header = (uint32) length;

	/* Values are capped (CONNECTOR_MAX_VALUE_BYTES), so no row comes near this. */
	if (length > PG_UINT32_MAX)
		elog(ERROR, "export row of %zu bytes does not fit the spool", length);

	BufFileWrite(file, &header, sizeof(header));
	BufFileWrite(file, (void *) row, length);
}

static bool
unspool_row(BufFile *file, StringInfo row)
{
	uint32		length;

	if (BufFileRead(file, &length, sizeof(length)) != sizeof(length))
		return false;
	resetStringInfo(row);
	enlargeStringInfo(row, length);
	if (BufFileRead(file, row->data, length) != length)
		elog(ERROR, "could not read the export spool file");
	row->len = length;
	row->data[length] = '\0';
	return true;
}

/*
 * Mirror mode stages the segment's payload rows, read from the spool once the
 * read is over, in a temporary table, so that plain SQL can diff them against
 * the ledger of what Meta confirmed before. The tables belong to the extension
 * owner, like the ledger; everything here runs in the worker scope (owner,
 * search_path pinned, every operator qualified), after the requester's scope
 * has ended and every setting the segment's code changed was rolled back.
 */
static void
stage_spooled_rows(BufFile *spool)
{
	Datum	   *rows = palloc(sizeof(Datum) * FETCH_ROWS);
	int			count = 0;
	StringInfoData row;
	MemoryContext rows_context = AllocSetContextCreate(CurrentMemoryContext, "connector staged rows",
													   ALLOCSET_DEFAULT_SIZES);
	bool		more = true;

	if (SPI_execute("DROP TABLE IF EXISTS pg_temp.connector_current, pg_temp.connector_adds,"
					" pg_temp.connector_removes;"
					"CREATE TEMP TABLE connector_current (row_hash bytea PRIMARY KEY, row_json text NOT NULL)",
					false, 0) < 0)
		elog(ERROR, "could not create the mirror staging table");
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
		if (count == FETCH_ROWS || (!more && count > 0))
		{
			Datum		values[1];

			values[0] = PointerGetDatum(construct_array(rows, count, TEXTOID, -1, false, TYPALIGN_INT));
			/* The same row twice in a segment is one member. */
			if (SPI_execute_with_args("INSERT INTO pg_temp.connector_current (row_hash, row_json)"
									  " SELECT pg_catalog.sha256(pg_catalog.convert_to(r, 'UTF8')), r"
									  " FROM pg_catalog.unnest($1::pg_catalog.text[]) AS r ON CONFLICT DO NOTHING",
									  1, (Oid[]) {TEXTARRAYOID}, values, NULL, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not stage the segment's rows");
			count = 0;
			MemoryContextReset(rows_context);
			raise_if_cancelled();
		}
	}
	MemoryContextDelete(rows_context);
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

		SPI_cursor_fetch(portal, true, FETCH_ROWS);
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
static void
diff_against_ledger(Run *run, const char *schema)
{
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		values[2] = {Int64GetDatum(run->export_id), CStringGetTextDatum(schema)};
	bool		isnull;
	PrivilegedScope scope;

	enter_worker_scope(&scope);
	stage_spooled_rows(resources.spool);
	BufFileClose(resources.spool);
	resources.spool = NULL;

	/* A ledger written with other columns cannot be diffed: start it anew. */
	if (SPI_execute_with_args("SELECT ledger_schema IS NOT NULL AND ledger_schema OPERATOR(pg_catalog.<>) $2"
							  " FROM connector.exports WHERE export_id OPERATOR(pg_catalog.=) $1",
							  2, argtypes, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.exports");
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
	{
		ereport(WARNING,
				(errmsg("the columns exported from segment %s changed since its last mirror run", run->segment),
				 errdetail("Rows sent with the old columns stay in the audience."),
				 errhint("Run it once with mode => 'replace' to make the audience exactly the segment.")));
		if (SPI_execute_with_args("DELETE FROM connector.ledger WHERE export_id OPERATOR(pg_catalog.=) $1",
								  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not reset connector.ledger");
	}
	if (SPI_execute_with_args("UPDATE connector.exports SET ledger_schema = $2"
							  " WHERE export_id OPERATOR(pg_catalog.=) $1",
							  2, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE ||
		SPI_execute_with_args("CREATE TEMP TABLE connector_adds AS"
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
								 &resources.spool);
	run->rows_to_remove = spool_table("SELECT row_json FROM pg_temp.connector_removes ORDER BY seq",
									  &resources.removals);
	leave_privileged_scope(&scope);
}

/*
 * The query that reads a segment: each mapped column as text, NULL when it is
 * longer than CONNECTOR_MAX_VALUE_BYTES (measured without detoasting it, so a
 * huge value is never fetched), and a last column saying whether any was.
 * Outside a UTF-8 database values arrive converted to UTF-8, as fb_hash()
 * converts them, so that an export sends exactly what fb_hash() returns.
 */
static char *
segment_query(const char *segment, Relation relation, int mapped)
{
	StringInfoData query;
	StringInfoData too_long;
	bool		utf8 = GetDatabaseEncoding() == PG_UTF8;
	int			i;

	initStringInfo(&query);
	initStringInfo(&too_long);
	appendStringInfoString(&query, "SELECT ");
	for (i = 0; i < mapped; i++)
	{
		const char *column = quote_identifier(live_column_name(relation,
															   connector_export_encoder_column(resources.encoder, i)));
		char	   *text = psprintf("(%s)::pg_catalog.text", column);
		char	   *fits = psprintf("pg_catalog.octet_length(%s) OPERATOR(pg_catalog.<=) %d",
									text, CONNECTOR_MAX_VALUE_BYTES);

		appendStringInfo(&query, "CASE WHEN %s THEN %s END, ", fits,
						 utf8 ? text : psprintf("pg_catalog.convert_to(%s, 'UTF8')", text));
		appendStringInfo(&too_long, "%sNOT %s", i > 0 ? " OR " : "", fits);
	}
	appendStringInfo(&query, "COALESCE(%s, false) FROM %s", too_long.data, segment);
	return query.data;
}

/* Rows per fetch, so that one fetch of values at their longest fits READ_BUDGET_BYTES. */
static int
rows_per_fetch(int mapped)
{
	int			value_bytes = CONNECTOR_MAX_VALUE_BYTES *
		(GetDatabaseEncoding() == PG_UTF8 ? 1 : pg_encoding_max_length(PG_UTF8));
	int			row_bytes = mapped * (value_bytes + VARHDRSZ) + 64;	/* + the tuple's own */

	return Max(1, Min(FETCH_ROWS, READ_BUDGET_BYTES / row_bytes));
}

/*
 * After a replace the audience is exactly the segment: so is the ledger, so
 * that a later mirror run of the export starts from what the replace made.
 */
static void
record_replaced_ledger(const Run *run)
{
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		values[2] = {Int64GetDatum(run->export_id),
	CStringGetTextDatum(connector_export_encoder_schema(resources.encoder))};
	PrivilegedScope scope;

	begin_step("connector: recording what the replace made the audience");
	enter_worker_scope(&scope);
	stage_spooled_rows(resources.spool);
	if (SPI_execute_with_args("DELETE FROM connector.ledger WHERE export_id OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE ||
		SPI_execute_with_args("INSERT INTO connector.ledger (export_id, row_hash, row_json)"
							  " SELECT $1, row_hash, row_json FROM pg_temp.connector_current",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_INSERT ||
		SPI_execute_with_args("UPDATE connector.exports SET ledger_schema = $2"
							  " WHERE export_id OPERATOR(pg_catalog.=) $1",
							  2, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE ||
		SPI_execute("DROP TABLE pg_temp.connector_current", false, 0) < 0)
		elog(ERROR, "could not record the ledger of a replace");
	leave_privileged_scope(&scope);
	end_step();
}

/*
 * Phase 1: the segment, in one snapshot, read as the requesting role in its
 * own scope (see requester_scope.c); rows are normalized, hashed and spooled.
 * Nothing with the owner's rights runs until that scope has ended.
 */
static void
read_segment(Run *run, ExportProgress *progress)
{
	RequesterScope requester;
	Relation	relation;
	char	   *query;
	int			fetch_rows;
	Portal		portal;
	int			mapped;
	int			i;
	const char **values;
	size_t	   *lengths;
	bool		mirror = strcmp(run->mode, "mirror") == 0;
	int			max_profiles = connector_max_profiles_per_export;	/* the worker's, not the role's */

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	XactIsoLevel = XACT_REPEATABLE_READ;
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, psprintf("connector: reading segment %s", run->segment));

	enter_requester_scope(&requester, run->requested_by);
	relation = open_segment(run->segment);
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		resources.encoder = encoder_for_relation(relation, run->segment, run->mapping,
												 run->key_identifier);
		resources.spool = BufFileCreateTemp(true);
		MemoryContextSwitchTo(old);
	}
	require_unhashed_keys_allowed(resources.encoder, run->segment, run->destination_name,
								  run->unhashed_keys_allowed);
	mapped = connector_export_encoder_column_count(resources.encoder);
	query = segment_query(run->segment, relation, mapped);
	relation_close(relation, NoLock);
	fetch_rows = rows_per_fetch(mapped);

	values = palloc(sizeof(char *) * mapped);
	lengths = palloc(sizeof(size_t) * mapped);
	portal = SPI_cursor_open_with_args(NULL, query, 0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		uint64		row;

		SPI_cursor_fetch(portal, true, fetch_rows);
		if (SPI_processed == 0)
			break;
		for (row = 0; row < SPI_processed; row++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[row];
			ConnectorStatus status;
			const char *row_json;
			size_t		row_json_len;
			int			skip_reason;
			bool		isnull;

			run->rows_read++;
			if (DatumGetBool(SPI_getbinval(tuple, SPI_tuptable->tupdesc, mapped + 1, &isnull)))
			{
				run->skipped[CONNECTOR_SKIP_VALUE_TOO_LONG]++;
				continue;
			}

			for (i = 0; i < mapped; i++)
			{
				Datum		value = SPI_getbinval(tuple, SPI_tuptable->tupdesc, i + 1, &isnull);

				if (isnull)
				{
					values[i] = NULL;
					lengths[i] = 0;
				}
				else
				{
					text	   *unpacked = DatumGetTextPP(value);

					values[i] = VARDATA_ANY(unpacked);
					lengths[i] = VARSIZE_ANY_EXHDR(unpacked);
				}
			}
			switch (connector_export_encode_row(resources.encoder, values, lengths, &row_json,
												&row_json_len, &skip_reason, &status))
			{
				case CONNECTOR_VALUE:
					/* The read stops at the first profile past the limit. */
					if (++run->rows_exportable > max_profiles)
						ereport(ERROR,
								(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
								 errmsg("segment %s has more profiles to export than connector.max_profiles_per_export (%d)",
										run->segment, max_profiles),
								 errdetail("The read stopped there; nothing was sent."),
								 errhint("Narrow the segment, or raise connector.max_profiles_per_export.")));
					spool_row(resources.spool, row_json, row_json_len);
					run->rows_kept++;
					break;
				case CONNECTOR_NO_VALUE:
					run->skipped[skip_reason]++;
					break;
				case CONNECTOR_ERROR:
					raise_core_error(&status);
			}
		}
		if (progress != NULL)
			pg_atomic_write_u64(&progress->rows_read, run->rows_read);
		SPI_freetuptable(SPI_tuptable);
		raise_if_cancelled();
	}
	SPI_cursor_close(portal);
	leave_requester_scope(&requester);

	run->rejected_prehashed = connector_export_rejected_prehashed(resources.encoder);
	if (mirror)
		diff_against_ledger(run, connector_export_encoder_schema(resources.encoder));
	end_step();
}

static char *
skipped_json(const Run *run)
{
	StringInfoData json;
	int			i;
	bool		first = true;

	initStringInfo(&json);
	appendStringInfoChar(&json, '{');
	for (i = 0; i < CONNECTOR_SKIP_REASONS; i++)
	{
		if (run->skipped[i] == 0)
			continue;
		appendStringInfo(&json, "%s\"%s\": " INT64_FORMAT, first ? "" : ", ",
						 connector_skip_reason_name(i), run->skipped[i]);
		first = false;
	}
	if (run->rejected_prehashed > 0)
		appendStringInfo(&json, "%s\"rejected_prehashed_values\": " INT64_FORMAT,
						 first ? "" : ", ", run->rejected_prehashed);
	appendStringInfoChar(&json, '}');
	return json.data;
}

/* Writes the read phase's counts; the run's session id too. */
static void
record_read(const Run *run)
{
	PrivilegedScope scope;
	Oid			argtypes[4] = {INT8OID, INT8OID, TEXTOID, INT8OID};
	Datum		values[4] = {Int64GetDatum(run->run_id), Int64GetDatum(run->rows_read),
	CStringGetTextDatum(skipped_json(run)), Int64GetDatum(run->session_id)};

	begin_step("connector: recording the segment read");
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("UPDATE connector.runs SET rows_read = $2, rows_skipped = $3::pg_catalog.jsonb,"
							  " session_id = $4 WHERE run_id OPERATOR(pg_catalog.=) $1",
							  4, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update connector.runs");
	leave_privileged_scope(&scope);
	end_step();
}

/*
 * A mirror run never empties an audience by accident (a view that returned
 * nothing, a broken join): removing more than the run's share of what the
 * export sent fails before anything is sent.
 */
static void
check_mirror_removal(const Run *run)
{
	if (strcmp(run->mode, "mirror") != 0 || run->rows_to_remove == 0 ||
		run->rows_to_remove <= run->mirror_max_removal * run->ledger_rows)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_MIRROR_REMOVAL_LIMIT),
			 errmsg("the mirror run of segment %s would remove " INT64_FORMAT " of the " INT64_FORMAT " members this export sent, more than connector.mirror_max_removal (%g)",
					run->segment, run->rows_to_remove, run->ledger_rows, run->mirror_max_removal),
			 errdetail("The segment read " INT64_FORMAT " rows; nothing was sent.", run->rows_read),
			 errhint("If the segment really shrank, export it again after SET connector.mirror_max_removal = 1; (it is kept with the run); otherwise fix the view first.")));
}

static void
check_replace_has_rows(const Run *run)
{
	if (run->rows_kept == 0 && strcmp(run->mode, "replace") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA),
				 errmsg("segment %s has no row to export, so a replace would leave the audience as it is", run->segment),
				 errdetail("Nothing was sent."),
				 errhint("Meta cannot replace an audience with nothing; mode => 'mirror' removes the rows this export sent.")));
}

/*
 * Phase 2: the audience id. One named by the run is used only once the Graph
 * API says it belongs to the destination's ad account: the token may reach
 * other accounts, which the destination's grant does not cover. Otherwise the
 * export owner's audience of that name is reused, or created at Meta.
 */
static void
ensure_audience(Run *run, Destination *destination)
{
	PrivilegedScope scope;
	Oid			argtypes[3] = {INT8OID, TEXTOID, REGROLEOID};
	Datum		values[3];
	ConnectorGraphConfig config = graph_config(&resources.credentials);
	ConnectorStatus status;

	config.should_abort = export_should_abort;
	if (run->audience_id != NULL)
	{
		if (connector_check_audience_account(&config, destination->name, run->audience_id,
											 destination->ad_account_id, &status) == CONNECTOR_ERROR)
		{
			raise_if_cancelled();
			raise_core_error(&status);
		}
	}
	else
	{
		values[0] = Int64GetDatum(destination->id);
		values[1] = CStringGetTextDatum(run->audience_name);
		values[2] = ObjectIdGetDatum(run->owner);
		begin_step("connector: looking up the audience");
		enter_privileged_scope(&scope);
		if (SPI_execute_with_args("SELECT audience_id FROM connector.audiences"
								  " WHERE destination_id OPERATOR(pg_catalog.=) $1 AND name OPERATOR(pg_catalog.=) $2"
								  " AND created_by OPERATOR(pg_catalog.=) $3 ORDER BY created_at DESC LIMIT 1",
								  3, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read connector.audiences");
		if (SPI_processed == 1)
			run->audience_id = MemoryContextStrdup(TopMemoryContext, text_column(1));
		leave_privileged_scope(&scope);
		end_step();
	}

	if (run->audience_id == NULL)
	{
		const char *out;
		size_t		out_len;

		if (connector_create_audience(&config, destination->name, destination->ad_account_id,
									  run->audience_name, "exported by connector from a PostgreSQL segment",
									  &out, &out_len, &status) == CONNECTOR_ERROR)
			raise_core_error(&status);
		run->audience_id = MemoryContextStrdup(TopMemoryContext, pnstrdup(out, out_len));
		begin_step("connector: recording the new audience");
		enter_privileged_scope(&scope);
		{
			Oid			types[4] = {INT8OID, TEXTOID, TEXTOID, REGROLEOID};
			Datum		datums[4] = {Int64GetDatum(destination->id), CStringGetTextDatum(run->audience_id),
				CStringGetTextDatum(run->audience_name), ObjectIdGetDatum(run->owner)};

			if (SPI_execute_with_args("INSERT INTO connector.audiences (destination_id, audience_id, name, created_by)"
									  " VALUES ($1, $2, $3, $4)", 4, types, datums, NULL, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not insert into connector.audiences");
		}
		leave_privileged_scope(&scope);
		end_step();
	}

	begin_step("connector: recording the audience");
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("WITH e AS (UPDATE connector.exports SET audience_id = $2"
							  "  WHERE export_id OPERATOR(pg_catalog.=) $1)"
							  " UPDATE connector.runs SET audience_id = $2 WHERE run_id OPERATOR(pg_catalog.=) $3",
							  3, (Oid[]) {INT8OID, TEXTOID, INT8OID},
							  (Datum[]) {Int64GetDatum(run->export_id), CStringGetTextDatum(run->audience_id),
							  Int64GetDatum(run->run_id)}, NULL, false, 0) < 0)
		elog(ERROR, "could not record the audience");
	leave_privileged_scope(&scope);
	end_step();
}

/*
 * Commits the outcomes of finished batches, with the ledger of a mirror run:
 * it changes only for batches Meta confirmed. Raises the first failure.
 */
static void
record_batches(const Run *run, ConnectorUploadOperation operation,
			   const ConnectorBatchResult *results, int count, ExportProgress *progress)
{
	PrivilegedScope scope;
	bool		mirror = strcmp(run->mode, "mirror") == 0;
	bool		removing = operation == CONNECTOR_UPLOAD_REMOVE;
	int64		batches = 0;
	int64		rows = 0;
	int64		retries = 0;
	int64		received = 0;
	int64		invalid = 0;
	const ConnectorBatchResult *failure = NULL;
	int			i;

	begin_step("connector: recording batches");
	enter_privileged_scope(&scope);
	for (i = 0; i < count; i++)
	{
		retries += Max(results[i].attempts - 1, 0);
		if (!results[i].succeeded)
		{
			if (failure == NULL)
				failure = &results[i];
			continue;
		}
		batches++;
		rows += results[i].rows;
		received = Max(received, results[i].num_received);
		invalid += results[i].num_invalid_entries;
		if (mirror)
		{
			/* Batch k holds rows (k-1)*batch_size+1 .. of the spool, in seq order. */
			int64		first = (int64) (results[i].batch_seq - 1) * connector_batch_size;
			Oid			argtypes[3] = {INT8OID, INT8OID, INT8OID};
			Datum		values[3] = {Int64GetDatum(run->export_id), Int64GetDatum(first),
			Int64GetDatum(first + results[i].rows)};

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
	}
	{
		Oid			argtypes[7] = {INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, BOOLOID};
		Datum		values[7] = {Int64GetDatum(run->run_id), Int64GetDatum(batches), Int64GetDatum(rows),
			Int64GetDatum(retries), Int64GetDatum(received), Int64GetDatum(invalid),
		BoolGetDatum(removing)};

		if (SPI_execute_with_args("UPDATE connector.runs SET batches = batches OPERATOR(pg_catalog.+) $2,"
								  " rows_sent = rows_sent OPERATOR(pg_catalog.+) CASE WHEN $7 THEN 0 ELSE $3 END,"
								  " rows_removed = rows_removed OPERATOR(pg_catalog.+) CASE WHEN $7 THEN $3 ELSE 0 END,"
								  " retries = retries OPERATOR(pg_catalog.+) $4,"
								  " num_received = GREATEST(num_received, $5),"
								  " num_invalid_entries = num_invalid_entries OPERATOR(pg_catalog.+) $6"
								  " WHERE run_id OPERATOR(pg_catalog.=) $1",
								  7, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update connector.runs");
	}
	leave_privileged_scope(&scope);
	end_step();
	if (progress != NULL)
	{
		pg_atomic_fetch_add_u64(&progress->batches, batches);
		pg_atomic_fetch_add_u64(&progress->rows_sent, rows);
	}
	if (failure != NULL)
		ereport(ERROR,
				(errcode(MAKE_SQLSTATE(failure->sqlstate[0], failure->sqlstate[1], failure->sqlstate[2],
									   failure->sqlstate[3], failure->sqlstate[4])),
				 errmsg("export of segment %s to audience %s failed: %s",
						run->segment, run->audience_id, failure->message)));
}

/*
 * A replace run interrupted after its batch 1 leaves its session open at
 * Meta, which then refuses any other replace of the audience for 90 minutes.
 * The next replace run closes it first with one final batch (a row of the
 * new segment, which the new session keeps anyway).
 */
static void
close_interrupted_session(Run *run)
{
	Oid			argtypes[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(run->export_id), Int64GetDatum(run->run_id)};
	bool		isnull;
	int64		session_id = 0;
	StringInfoData row;
	ConnectorGraphConfig graph;
	ConnectorStatus status;
	PrivilegedScope scope;

	begin_step("connector: looking for an interrupted replace session");
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("SELECT session_id FROM connector.runs WHERE export_id OPERATOR(pg_catalog.=) $1"
							  " AND run_id OPERATOR(pg_catalog.<) $2 AND mode OPERATOR(pg_catalog.=) 'replace'"
							  " ORDER BY run_id DESC LIMIT 1",
							  2, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.runs");
	if (SPI_processed == 1)
	{
		Datum		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		session_id = isnull ? 0 : DatumGetInt64(value);
	}
	if (session_id != 0 &&
		SPI_execute_with_args("SELECT 1 FROM connector.runs WHERE export_id OPERATOR(pg_catalog.=) $1"
							  " AND session_id OPERATOR(pg_catalog.=) $2"
							  " AND status OPERATOR(pg_catalog.=) ANY ('{failed,cancelled}'::pg_catalog.text[])",
							  2, argtypes, (Datum[]) {Int64GetDatum(run->export_id), Int64GetDatum(session_id)},
							  NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 0)
		session_id = 0;			/* it ended well */
	leave_privileged_scope(&scope);
	end_step();
	if (session_id == 0)
		return;

	initStringInfo(&row);
	if (BufFileSeek(resources.spool, 0, 0, SEEK_SET) != 0 || !unspool_row(resources.spool, &row))
		return;
	graph = graph_config(&resources.credentials);
	graph.should_abort = export_should_abort;
	if (connector_close_replace_session(&graph, resources.encoder, run->audience_id, session_id,
										row.data, row.len, &status) == CONNECTOR_ERROR)
	{
		raise_if_cancelled();
		raise_core_error(&status);
	}
	ereport(LOG,
			(errmsg("connector: closed replace session " INT64_FORMAT " of audience %s, left open by an interrupted run",
					session_id, run->audience_id)));
}

/* Phase 3: spooled rows, in batches, to the audience. */
static void
send_spool(Run *run, ExportProgress *progress, ConnectorUploadOperation operation,
		   BufFile *file, int64 rows, int64 session_id)
{
	ConnectorGraphConfig graph = graph_config(&resources.credentials);
	ConnectorSenderConfig config;
	ConnectorStatus status;
	ConnectorBatchResult results[MAX_RESULTS];
	StringInfoData row;
	bool		input_done = false;

	if (rows == 0)
		return;
	graph.should_abort = export_should_abort;
	config.operation = operation;
	config.audience_id = run->audience_id;
	config.session_id = session_id;
	config.estimated_total = rows;
	config.batch_size = connector_batch_size;
	config.max_in_flight = connector_max_parallel_requests;
	config.max_attempts = connector_max_retries + 1;
	config.base_delay_ms = connector_retry_base_delay_ms;
	resources.sender = connector_export_sender_new(&graph, &config, resources.encoder, &status);
	if (resources.sender == NULL)
		raise_core_error(&status);

	if (BufFileSeek(file, 0, 0, SEEK_SET) != 0)
		elog(ERROR, "could not rewind the export spool file");
	initStringInfo(&row);
	pgstat_report_activity(STATE_RUNNING,
						   psprintf("connector: %s audience %s from segment %s",
									operation == CONNECTOR_UPLOAD_REMOVE ? "removing from" : "sending to",
									run->audience_id, run->segment));
	while (!connector_export_sender_done(resources.sender))
	{
		int			count;

		while (!input_done && connector_export_sender_accepts_rows(resources.sender))
		{
			if (!unspool_row(file, &row))
			{
				input_done = true;
				if (connector_export_sender_finish(resources.sender, &status) == CONNECTOR_ERROR)
					raise_core_error(&status);
				break;
			}
			if (connector_export_sender_add_row(resources.sender, row.data, row.len, &status) == CONNECTOR_ERROR)
				raise_core_error(&status);
		}
		if (connector_export_sender_poll(resources.sender, 100, results, MAX_RESULTS, &count,
										 &status) == CONNECTOR_ERROR)
		{
			raise_if_cancelled();
			raise_core_error(&status);
		}
		if (count > 0)
			record_batches(run, operation, results, count, progress);
		raise_if_cancelled();
	}
	connector_export_sender_free(resources.sender);
	resources.sender = NULL;
}

/* The run's end, and a NOTIFY connector_export for listeners. */
static void
record_outcome(int64 run_id, const char *status, const char *error, const char *sqlstate)
{
	PrivilegedScope scope;
	Oid			argtypes[4] = {INT8OID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4] = {Int64GetDatum(run_id), CStringGetTextDatum(status), (Datum) 0, (Datum) 0};
	char		nulls[4] = "  nn";

	if (error != NULL)
	{
		values[2] = CStringGetTextDatum(error);
		values[3] = CStringGetTextDatum(sqlstate);
		nulls[2] = nulls[3] = ' ';
	}
	begin_step("connector: recording the outcome");
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("UPDATE connector.runs SET status = $2, error = $3, sqlstate = $4,"
							  " finished_at = pg_catalog.now() WHERE run_id OPERATOR(pg_catalog.=) $1",
							  4, argtypes, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update connector.runs");
	if (sqlstate != NULL && strcmp(sqlstate, "28000") == 0 &&
		SPI_execute_with_args("UPDATE connector.destinations d SET status = 'needs_reauth', status_detail = $3"
							  " FROM connector.runs r"
							  " JOIN connector.exports e ON e.export_id OPERATOR(pg_catalog.=) r.export_id"
							  " WHERE r.run_id OPERATOR(pg_catalog.=) $1"
							  " AND d.destination_id OPERATOR(pg_catalog.=) e.destination_id",
							  4, argtypes, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update connector.destinations");
	leave_privileged_scope(&scope);
	Async_Notify("connector_export",
				 psprintf("{\"run_id\": " INT64_FORMAT ", \"status\": \"%s\"}", run_id, status));
	end_step();
}

static void
report_outcome(ExportProgress *progress, const char *status, const char *sqlstate, const char *error)
{
	if (progress == NULL)
		return;
	strlcpy(progress->status, status, sizeof(progress->status));
	strlcpy(progress->sqlstate, sqlstate != NULL ? sqlstate : "00000", sizeof(progress->sqlstate));
	strlcpy(progress->error, error != NULL ? error : "", sizeof(progress->error));
	pg_memory_barrier();
	progress->finished = true;
}

/*
 * A worker can end with a FATAL error in the middle of a run (the segment's
 * code may turn exit_on_error on and then fail). Its run is then recorded as
 * failed with that error before the process exits, so that the launcher
 * never re-queues it as if a crash had interrupted it.
 */
static int64 active_run_id = 0;
static ExportProgress *active_progress = NULL;
static char fatal_message[512];
static char fatal_sqlstate[6];
static emit_log_hook_type previous_emit_log_hook = NULL;

static void
remember_fatal_error(ErrorData *edata)
{
	if (edata->elevel >= FATAL && active_run_id != 0)
	{
		strlcpy(fatal_message, edata->message != NULL ? edata->message : "", sizeof(fatal_message));
		strlcpy(fatal_sqlstate, unpack_sql_state(edata->sqlerrcode), sizeof(fatal_sqlstate));
	}
	if (previous_emit_log_hook)
		previous_emit_log_hook(edata);
}

static void
record_lost_run(int code, Datum arg)
{
	int64		run_id = active_run_id;
	char	   *error;

	if (run_id == 0 || !PostmasterIsAlive())
		return;
	active_run_id = 0;
	AbortOutOfAnyTransaction();
	restore_worker_identity();
	error = psprintf("the export worker ended with a fatal error: %s",
					 fatal_message[0] ? fatal_message : "see the server log");
	record_outcome(run_id, "failed", error, fatal_sqlstate[0] ? fatal_sqlstate : "XX000");
	report_outcome(active_progress, "failed", fatal_sqlstate[0] ? fatal_sqlstate : "XX000", error);
}

static void
watch_for_fatal_errors(int64 run_id, ExportProgress *progress)
{
	static bool registered = false;

	if (!registered)
	{
		previous_emit_log_hook = emit_log_hook;
		emit_log_hook = remember_fatal_error;
		before_shmem_exit(record_lost_run, (Datum) 0);
		registered = true;
	}
	fatal_message[0] = fatal_sqlstate[0] = '\0';
	active_progress = progress;
	active_run_id = run_id;
}

/* Raises an error unless the role is still the one that asked (by OID, never by name). */
static void
require_requester(const Run *run)
{
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(run->requested_by)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the role (OID %u) that requested export run " INT64_FORMAT " was dropped",
						run->requested_by, run->run_id),
				 errdetail("A run is never carried out for another role, even one of the same name."),
				 errhint("Export the segment again as a role that exists.")));
}

void
run_export(int64 run_id, ExportProgress *progress)
{
	MemoryContext context = CurrentMemoryContext;
	Run			run;

	memset(&run, 0, sizeof(run));
	memset(&resources, 0, sizeof(resources));
	if (!start_run(run_id, &run))
	{
		report_outcome(progress, "cancelled", "57014", "the run was no longer queued");
		return;
	}
	watch_for_fatal_errors(run_id, progress);

	PG_TRY();
	{
		Destination *destination;
		Oid			saved_user;
		int			saved_context;

		/* Grants are checked as the role that asked, at the time of the run. */
		GetUserIdAndSecContext(&saved_user, &saved_context);
		begin_step("connector: loading the destination");
		require_requester(&run);
		SetUserIdAndSecContext(run.requested_by, saved_context | SECURITY_LOCAL_USERID_CHANGE);
		{
			/* Both outlive this step's transaction. */
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			destination = load_usable_destination(run.destination_name);
			resources.credentials = open_credentials(destination);
			MemoryContextSwitchTo(old);
		}
		SetUserIdAndSecContext(saved_user, saved_context);
		end_step();
		run.unhashed_keys_allowed = destination->unhashed_keys_allowed;

		if (!pg_strong_random(&run.session_id, sizeof(run.session_id)))
			elog(ERROR, "could not generate a session id");
		/* Positive, and room for the removal session of a mirror run. */
		run.session_id = (run.session_id & INT64CONST(0x3FFFFFFFFFFFFFFF)) | 1;

		read_segment(&run, progress);
		record_read(&run);
		check_replace_has_rows(&run);
		check_mirror_removal(&run);
		ensure_audience(&run, destination);
		if (strcmp(run.mode, "mirror") == 0)
		{
			send_spool(&run, progress, CONNECTOR_UPLOAD_ADD, resources.spool, run.rows_kept, run.session_id);
			send_spool(&run, progress, CONNECTOR_UPLOAD_REMOVE, resources.removals, run.rows_to_remove,
					   run.session_id + 1);
		}
		else if (strcmp(run.mode, "replace") == 0)
		{
			close_interrupted_session(&run);
			send_spool(&run, progress, CONNECTOR_UPLOAD_REPLACE, resources.spool, run.rows_kept,
					   run.session_id);
			record_replaced_ledger(&run);
		}
		else
			send_spool(&run, progress, CONNECTOR_UPLOAD_ADD, resources.spool, run.rows_kept,
					   run.session_id);
		release_resources();
		record_outcome(run_id, "succeeded", NULL, NULL);
		report_outcome(progress, "succeeded", NULL, NULL);
	}
	PG_CATCH();
	{
		ErrorData  *error;
		char	   *sqlstate;
		const char *status;
		bool		timed_out;

		MemoryContextSwitchTo(context);
		error = CopyErrorData();
		FlushErrorState();
		timed_out = requester_statement_timed_out();
		/* A cancel is answered by this outcome: it must not interrupt recording it. */
		QueryCancelPending = false;
		AbortOutOfAnyTransaction();
		restore_worker_identity();
		release_resources();
		sqlstate = pstrdup(unpack_sql_state(error->sqlerrcode));
		/* The requester's statement_timeout fails the run; a cancel cancels it. */
		status = error->sqlerrcode == ERRCODE_QUERY_CANCELED && !timed_out ? "cancelled" : "failed";
		ereport(LOG,
				(errmsg("connector: export run " INT64_FORMAT " %s: %s", run_id, status, error->message)));
		record_outcome(run_id, status, error->message, sqlstate);
		report_outcome(progress, status, sqlstate, error->message);
	}
	PG_END_TRY();
	active_run_id = 0;
}
