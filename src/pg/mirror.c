/*
 * Mirror and replace runs: the segment's rows, as source records (the digest
 * of their values, then the values), are sorted by digest and merged with the
 * export's ledger, which is sorted the same way. A row found in the ledger
 * under the same digest did not change: its member is taken from the ledger,
 * neither normalized nor hashed nor sent again. A new row is normalized and
 * sent. A ledger entry no row matches any more is removed, unless another
 * row still makes the same member. Memory is the sorts' budget
 * (maintenance_work_mem), whatever the segment's size; the rest goes to
 * temporary files.
 *
 * The ledger is rewritten only once a run has sent everything: a run that
 * fails leaves the ledger of the last successful one, so the next run sends
 * again what the failed run could not confirm and removes again what it
 * removed, both of which Meta takes as no change. A replace leaves the ledger
 * equal to the audience it made.
 *
 * The ledger belongs to the extension owner: it is read and written in the
 * privileged scope (owner, search_path pinned, every operator qualified),
 * after the requester's scope has ended.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "export_phases.h"
#include "run_progress.h"
#include "privileged.h"
#include "run_records.h"
#include "settings.h"

#define DIGEST_BYTES CONNECTOR_SOURCE_DIGEST_BYTES

/* A mirror run that would remove more than connector.mirror_max_removal allows. */
#define ERRCODE_MIRROR_REMOVAL_LIMIT MAKE_SQLSTATE('U', 'C', '0', '0', '1')

/* A sort of bytea values in byte order, within maintenance_work_mem. */
static Tuplesortstate *
begin_bytes_sort(void)
{
	TypeCacheEntry *bytea_type = lookup_type_cache(BYTEAOID, TYPECACHE_LT_OPR);

	return tuplesort_begin_datum(BYTEAOID, bytea_type->lt_opr, InvalidOid, false,
								 maintenance_work_mem, NULL, TUPLESORT_NONE);
}

static void
put_bytes(Tuplesortstate *sort, StringInfo buffer, const char *data, size_t length)
{
	resetStringInfo(buffer);
	appendStringInfoSpaces(buffer, VARHDRSZ);
	appendBinaryStringInfo(buffer, data, (int) length);
	SET_VARSIZE(buffer->data, buffer->len);
	tuplesort_putdatum(sort, PointerGetDatum(buffer->data), false);
}

/* The next value of a performed sort, allocated in the current context; NULL at the end. */
static bytea *
next_bytes(Tuplesortstate *sort)
{
	Datum		value;
	bool		isnull;

	if (!tuplesort_getdatum(sort, true, &value, &isnull, NULL))
		return NULL;
	return DatumGetByteaPP(value);
}

Tuplesortstate *
begin_source_sort(void)
{
	return begin_bytes_sort();
}

void
sort_source_record(Tuplesortstate *sort, StringInfo buffer, const char *record, size_t length)
{
	put_bytes(sort, buffer, record, length);
}

/* A ledger entry: the digest of the source values, and the member. */
static void
spool_entry(BufFile *file, StringInfo buffer, const char *digest, const char *member, size_t length)
{
	resetStringInfo(buffer);
	appendBinaryStringInfo(buffer, digest, DIGEST_BYTES);
	appendBinaryStringInfo(buffer, member, (int) length);
	spool_row(file, buffer->data, buffer->len);
}

/* A payload identity: equal members are one member of the audience. */
static uint64
member_hash(const char *member, size_t length)
{
	return hash_bytes_extended((const unsigned char *) member, (int) length, 0);
}

/* A member that is gone from the segment, by the hash of its bytes. */
typedef struct GoneMember
{
	uint64		hash;
	bool		still_made;		/* by a row of the segment: not to be removed */
} GoneMember;

static int
compare_gone(const void *a, const void *b)
{
	uint64		x = ((const GoneMember *) a)->hash;
	uint64		y = ((const GoneMember *) b)->hash;

	return x < y ? -1 : x > y ? 1 : 0;
}

static GoneMember *
find_gone(GoneMember *slice, int64 count, uint64 hash)
{
	GoneMember	key = {hash, false};

	return bsearch(&key, slice, count, sizeof(GoneMember), compare_gone);
}

/*
 * The members to remove: those gone, less those another row of the segment
 * still makes (two rows written differently, one person). The gone members
 * are taken in slices that fit maintenance_work_mem, each sorted by hash and
 * checked against every member of the next ledger: one slice, one pass, in
 * any run that does not remove millions.
 */
static int64
spool_removals(BufFile *next_ledger, BufFile *gone, int64 gone_count)
{
	int64		capacity = Max(1024, (int64) maintenance_work_mem * 1024 / (int64) sizeof(GoneMember));
	GoneMember *slice = MemoryContextAllocHuge(CurrentMemoryContext,
											   sizeof(GoneMember) * Min(capacity, gone_count));
	StringInfoData row;
	int64		done = 0;
	int64		removals = 0;
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	run_resources.removals = BufFileCreateTemp(true);
	MemoryContextSwitchTo(old);
	initStringInfo(&row);
	if (BufFileSeek(gone, 0, 0, SEEK_SET) != 0)
		elog(ERROR, "could not rewind the mirror spool file");
	while (done < gone_count)
	{
		int64		count = Min(capacity, gone_count - done);
		int			file;
		off_t		offset;
		int64		i;

		BufFileTell(gone, &file, &offset);
		for (i = 0; i < count; i++)
		{
			if (!unspool_row(gone, &row))
				elog(ERROR, "the mirror spool file ended early");
			slice[i].hash = member_hash(row.data, row.len);
			slice[i].still_made = false;
		}
		qsort(slice, count, sizeof(GoneMember), compare_gone);

		if (BufFileSeek(next_ledger, 0, 0, SEEK_SET) != 0)
			elog(ERROR, "could not rewind the ledger spool file");
		while (unspool_row(next_ledger, &row))
		{
			GoneMember *found = find_gone(slice, count,
										  member_hash(row.data + DIGEST_BYTES, row.len - DIGEST_BYTES));

			if (found != NULL)
				found->still_made = true;
		}

		/* The slice again, in spool order: what no row makes any more is removed. */
		if (BufFileSeek(gone, file, offset, SEEK_SET) != 0)
			elog(ERROR, "could not seek in the mirror spool file");
		for (i = 0; i < count; i++)
		{
			GoneMember *found;

			(void) unspool_row(gone, &row);
			found = find_gone(slice, count, member_hash(row.data, row.len));
			/* Equal hashes are neighbours; any of them may have been marked. */
			while (found > slice && (found - 1)->hash == found->hash)
				found--;
			for (; !found->still_made && found + 1 < slice + count && (found + 1)->hash == found->hash; found++)
				;
			if (!found->still_made)
			{
				spool_row(run_resources.removals, row.data, row.len);
				removals++;
			}
		}
		done += count;
		raise_if_cancelled();
	}
	pfree(slice);
	return removals;
}

/*
 * The sorted source records merged with the export's ledger (a replace run
 * merges with none): the members to send go to the run's spool, the next
 * ledger to its own spool, and, for a mirror run, the members to remove to
 * the removals spool. Runs in the read's transaction, after the requester's
 * scope ended.
 */
void
diff_against_ledger(Run *run, Tuplesortstate *records)
{
	PrivilegedScope scope;
	LedgerReader ledger;
	StringInfoData buffer;
	MemoryContext rows_context = AllocSetContextCreate(CurrentMemoryContext, "connector merged rows",
													   ALLOCSET_DEFAULT_SIZES);
	const char *format = connector_export_encoder_member_format(run_resources.encoder);
	BufFile    *gone;
	int64		gone_count = 0;
	char		previous[DIGEST_BYTES];
	bool		have_previous = false;
	bool		have_entry;
	bytea	   *record = NULL;
	int64		steps = 0;

	pgstat_report_activity(STATE_RUNNING, psprintf("connector: diffing segment %s against its ledger", run->segment));
	progress_phase(PHASE_DIFFING, 0);
	tuplesort_performsort(records);
	initStringInfo(&buffer);
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		run_resources.next_ledger = BufFileCreateTemp(true);
		MemoryContextSwitchTo(old);
	}
	gone = BufFileCreateTemp(false);

	enter_privileged_scope(&scope);
	open_ledger(&ledger);
	if (run->mode == EXPORT_MIRROR)
	{
		/* A ledger written in another member format cannot be merged: it is replaced. */
		if (ledger_format_changed(run->export_id, format))
			ereport(WARNING,
					(errmsg("the columns exported from segment %s changed since its last mirror run", run->segment),
					 errdetail("Rows sent with the old columns stay in the audience."),
					 errhint("Run it once with mode => 'replace' to make the audience exactly the segment.")));
		else
			read_ledger(&ledger, run->export_id);
	}
	have_entry = next_ledger_entry(&ledger);

	for (;;)
	{
		int			order;

		if (record == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(rows_context);

			MemoryContextReset(rows_context);
			/* The same values twice are one row: the others are counted, not sent. */
			while ((record = next_bytes(records)) != NULL && have_previous &&
				   memcmp(VARDATA_ANY(record), previous, DIGEST_BYTES) == 0)
				run->skipped[CONNECTOR_SKIP_DUPLICATE]++;
			MemoryContextSwitchTo(old);
			if (record != NULL)
			{
				memcpy(previous, VARDATA_ANY(record), DIGEST_BYTES);
				have_previous = true;
			}
		}
		if (record == NULL && !have_entry)
			break;
		order = record == NULL ? 1 : !have_entry ? -1 : memcmp(VARDATA_ANY(record), ledger.digest, DIGEST_BYTES);
		if (order == 0)
		{
			/* Unchanged: the member the ledger holds is the one these values make. */
			spool_entry(run_resources.next_ledger, &buffer, ledger.digest, ledger.member, ledger.member_length);
			run->rows_unchanged++;
			count_exportable_row(run);
			record = NULL;
			have_entry = next_ledger_entry(&ledger);
		}
		else if (order < 0)
		{
			ConnectorStatus status;
			ConnectorResult result;
			const char *member;
			size_t		member_length;
			int			skip_reason;

			result = connector_export_encode_record(run_resources.encoder, VARDATA_ANY(record),
													VARSIZE_ANY_EXHDR(record), &member, &member_length,
													&skip_reason, &status);
			if (count_encoded_row(run, result, skip_reason, &status))
			{
				if (member_length > PG_UINT16_MAX)
					elog(ERROR, "a member of %zu bytes does not fit the ledger", member_length);
				spool_row(run_resources.spool, member, member_length);
				spool_entry(run_resources.next_ledger, &buffer, VARDATA_ANY(record), member, member_length);
			}
			record = NULL;
		}
		else
		{
			/*
			 * Gone from the segment, or changed: what the ledger holds goes;
			 * a tombstone (a person fb_forget removed) holds nothing.
			 */
			if (ledger.member_length > 0)
			{
				spool_row(gone, ledger.member, ledger.member_length);
				gone_count++;
			}
			have_entry = next_ledger_entry(&ledger);
		}
		if (++steps % 10000 == 0)
		{
			progress_advance(steps, run->segment);
			raise_if_cancelled();
		}
	}
	run->ledger_rows = ledger.entries;
	close_ledger(&ledger);
	leave_privileged_scope(&scope);
	tuplesort_end(records);
	MemoryContextDelete(rows_context);

	if (gone_count > 0)
		run->rows_to_remove = spool_removals(run_resources.next_ledger, gone, gone_count);
	BufFileClose(gone);
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
