/*
 * Phase 1 of an export run: the segment, checked, read in one snapshot as the
 * role that asked for the run (requester_scope.c). An add run normalizes each
 * row into a member and spools it to a temporary file; a mirror or replace
 * run sorts each row's source record and merges the sort with the export's
 * ledger (mirror.c). The segment is never held in memory. fb_export_segment
 * checks a segment with the same functions before it queues a run.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"

#include "core_errors.h"
#include "export_phases.h"
#include "run_progress.h"
#include "requester_scope.h"
#include "segment_read.h"
#include "settings.h"

#define FETCH_ROWS 1000
/* What one fetch of the segment may hold: the read is bounded by bytes, not rows. */
#define READ_BUDGET_BYTES (8 * 1024 * 1024)

char *
segment_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
}

Relation
open_checked_segment(Oid relid, const char *name, LOCKMODE lock)
{
	char		relkind = get_rel_relkind(relid);

	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("segment %s does not exist", name),
				 errhint("Recreate the view, or export another segment.")));
	if (relkind != RELKIND_VIEW && relkind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is not a view: a segment is a view or a materialized view", name),
				 errhint("Wrap it in a view that selects the customers to export: CREATE VIEW %s_segment AS SELECT ... FROM %s WHERE ...;",
						 get_rel_name(relid), name)));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for segment %s", name),
				 errhint("The role that exports a segment must be able to SELECT from it.")));
	return relation_open(relid, lock);
}

/* The segment of a queued run, by the name it was saved under, checked again. */
static Relation
open_segment_again(const char *segment)
{
	List	   *names = textToQualifiedNameList(cstring_to_text(segment));
	Oid			relid = RangeVarGetRelid(makeRangeVarFromNameList(names), AccessShareLock, true);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("segment %s does not exist any more", segment),
				 errhint("Recreate the view, or export another segment.")));
	return open_checked_segment(relid, segment, NoLock);
}

ConnectorExportEncoder *
encoder_for_relation(Relation relation, const char *segment, const char *mapping,
					 const char *key_identifier, bool day_first)
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
	encoder = connector_export_encoder_new(segment, names, count, mapping, key_identifier,
										   day_first, &status);
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

void
check_segment_for_export(Oid relid, const char *name, const char *mapping, const char *key_identifier,
						 const Destination *destination, char **resolved_mapping)
{
	Relation	relation = open_checked_segment(relid, name, AccessShareLock);
	ConnectorExportEncoder *encoder = encoder_for_relation(relation, name, mapping, key_identifier,
														   connector_date_order == DATE_ORDER_DMY);

	require_unhashed_keys_allowed(encoder, name, destination->name, destination->unhashed_keys_allowed);
	*resolved_mapping = pstrdup(connector_export_encoder_resolved_mapping(encoder));
	connector_export_encoder_free(encoder);
	relation_close(relation, AccessShareLock);
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

/*
 * The mapped values of a fetched row (NULL pointer: SQL NULL); false when one
 * was too long to be fetched (the query's last column).
 */
bool
unpack_row(HeapTuple tuple, TupleDesc desc, int mapped, Datum *datums, bool *nulls,
		   const char **values, size_t *lengths)
{
	int			i;

	/* Every column at once: fetching them one by one walks the tuple each time. */
	heap_deform_tuple(tuple, desc, datums, nulls);
	if (DatumGetBool(datums[mapped]))
		return false;
	for (i = 0; i < mapped; i++)
	{
		if (nulls[i])
		{
			values[i] = NULL;
			lengths[i] = 0;
		}
		else
		{
			text	   *unpacked = DatumGetTextPP(datums[i]);

			values[i] = VARDATA_ANY(unpacked);
			lengths[i] = VARSIZE_ANY_EXHDR(unpacked);
		}
	}
	return true;
}

void
spool_row(BufFile *file, const char *row, size_t length)
{
	uint32		header = (uint32) length;

	/* Values are capped (CONNECTOR_MAX_VALUE_BYTES), so no row comes near this. */
	if (length > PG_UINT32_MAX)
		elog(ERROR, "export row of %zu bytes does not fit the spool", length);

	BufFileWrite(file, &header, sizeof(header));
	BufFileWrite(file, (void *) row, length);
}

bool
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
 * Counts one more profile to export; the read stops at the first one past
 * connector.max_profiles_per_export (the worker's setting, not the role's).
 */
void
count_exportable_row(Run *run)
{
	if (++run->rows_exportable > connector_max_profiles_per_export)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("segment %s has more profiles to export than connector.max_profiles_per_export (%d)",
						run->segment, connector_max_profiles_per_export),
				 errdetail("The read stopped there; nothing was sent."),
				 errhint("Narrow the segment, or raise connector.max_profiles_per_export.")));
}

/*
 * Counts what encoding one row gave (a member, a skip, or an error raised);
 * true when it made a member to send.
 */
bool
count_encoded_row(Run *run, ConnectorResult result, int skip_reason, ConnectorStatus *status)
{
	switch (result)
	{
		case CONNECTOR_VALUE:
			count_exportable_row(run);
			run->rows_kept++;
			return true;
		case CONNECTOR_NO_VALUE:
			run->skipped[skip_reason]++;
			return false;
		case CONNECTOR_ERROR:
			raise_core_error(status);
	}
	return false;
}

/*
 * The query that reads a segment: each mapped column as text, NULL when it is
 * longer than CONNECTOR_MAX_VALUE_BYTES (measured without detoasting it, so a
 * huge value is never fetched), and a last column saying whether any was.
 * Outside a UTF-8 database values arrive converted to UTF-8, as fb_hash()
 * converts them, so that an export sends exactly what fb_hash() returns.
 */
char *
segment_query(const char *segment, Relation relation, const ConnectorExportEncoder *encoder)
{
	int			mapped = connector_export_encoder_column_count(encoder);
	StringInfoData query;
	StringInfoData too_long;
	bool		utf8 = GetDatabaseEncoding() == PG_UTF8;
	int			i;

	initStringInfo(&query);
	initStringInfo(&too_long);
	appendStringInfoString(&query, "SELECT ");
	for (i = 0; i < mapped; i++)
	{
		const char *column = quote_identifier(live_column_name(relation, connector_export_encoder_column(encoder, i)));
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
int
rows_per_fetch(int mapped)
{
	int			value_bytes = CONNECTOR_MAX_VALUE_BYTES *
		(GetDatabaseEncoding() == PG_UTF8 ? 1 : pg_encoding_max_length(PG_UTF8));
	int			row_bytes = mapped * (value_bytes + VARHDRSZ) + 64;	/* + the tuple's own */

	return Max(1, Min(FETCH_ROWS, READ_BUDGET_BYTES / row_bytes));
}

/*
 * Phase 1: the segment, in one snapshot, read as the requesting role in its
 * own scope (see requester_scope.c); rows are spooled as members, or sorted
 * as source records and then diffed. Nothing with the owner's rights runs
 * until that scope has ended.
 */
void
read_segment(Run *run, ExportProgress *progress)
{
	RequesterScope requester;
	Relation	relation;
	char	   *query;
	int			fetch_rows;
	Portal		portal;
	int			mapped;
	const char **values;
	size_t	   *lengths;
	Datum	   *datums;
	bool	   *nulls;
	Tuplesortstate *records = NULL;
	StringInfoData record;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	XactIsoLevel = XACT_REPEATABLE_READ;
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, psprintf("connector: reading segment %s", run->segment));

	/*
	 * Mirror and replace runs merge the rows with the ledger, in digest
	 * order; the sort's memory is the worker's maintenance_work_mem, not the
	 * role's.
	 */
	if (run->mode != EXPORT_ADD)
		records = begin_source_sort();
	initStringInfo(&record);
	enter_requester_scope(&requester, run->requested_by);
	relation = open_segment_again(run->segment);
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		run_resources.encoder = encoder_for_relation(relation, run->segment, run->mapping,
												 run->key_identifier, run->day_first);
		run_resources.spool = BufFileCreateTemp(true);
		MemoryContextSwitchTo(old);
	}
	require_unhashed_keys_allowed(run_resources.encoder, run->segment, run->destination_name,
								  run->unhashed_keys_allowed);
	mapped = connector_export_encoder_column_count(run_resources.encoder);
	query = segment_query(run->segment, relation, run_resources.encoder);
	relation_close(relation, NoLock);
	fetch_rows = rows_per_fetch(mapped);

	values = palloc(sizeof(char *) * mapped);
	datums = palloc(sizeof(Datum) * (mapped + 1));
	nulls = palloc(sizeof(bool) * (mapped + 1));
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
			ConnectorResult result;
			const char *out;
			size_t		out_len;
			int			skip_reason;

			run->rows_read++;
			if (!unpack_row(tuple, SPI_tuptable->tupdesc, mapped, datums, nulls, values, lengths))
			{
				run->skipped[CONNECTOR_SKIP_VALUE_TOO_LONG]++;
				continue;
			}
			if (records != NULL)
			{
				if (connector_export_source_record(run_resources.encoder, values, lengths, &out, &out_len,
												   &status) == CONNECTOR_ERROR)
					raise_core_error(&status);
				sort_source_record(records, &record, out, out_len);
				continue;
			}
			result = connector_export_encode_row(run_resources.encoder, values, lengths, &out, &out_len,
												 &skip_reason, &status);
			if (count_encoded_row(run, result, skip_reason, &status))
				spool_row(run_resources.spool, out, out_len);
		}
		if (progress != NULL)
			pg_atomic_write_u64(&progress->rows_read, run->rows_read);
		progress_advance(run->rows_read, run->segment);
		SPI_freetuptable(SPI_tuptable);
		raise_if_cancelled();
	}
	SPI_cursor_close(portal);
	leave_requester_scope(&requester);

	if (records != NULL)
		diff_against_ledger(run, records);
	run->rejected_prehashed = connector_export_rejected_prehashed(run_resources.encoder);
	end_step();
}
