/*
 * Live progress of the runs going now, in shared memory (with
 * shared_preload_libraries): a run's phase, its rows done and to do in that
 * phase, and when the phase began. fb_export_runs reads it through
 * connector.run_progress(), the worker's pg_stat_activity entry says the same
 * in words. Without preloading, runs simply have no live progress.
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "module.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "privileged.h"
#include "run_progress.h"

typedef struct ProgressSlot
{
	pg_atomic_uint64 run_id;	/* 0: free */
	pg_atomic_uint32 requested_by;
	pg_atomic_uint32 phase;
	pg_atomic_uint64 rows_done;
	pg_atomic_uint64 rows_total;	/* 0: not known */
	pg_atomic_uint64 phase_started; /* TimestampTz */
} ProgressSlot;

static const char *const phase_names[] = {"reading", "diffing", "sending", "finishing"};

static ProgressSlot *slots = NULL;
static int	slot_count = 0;
static ProgressSlot *mine = NULL;
static TimestampTz reported_at = 0;

CONNECTOR_SQL_FUNCTION(fb_run_progress);

Size
run_progress_shmem_size(void)
{
	return mul_size(sizeof(ProgressSlot), max_worker_processes);
}

void
run_progress_shmem_init(void)
{
	bool		found;
	int			i;

	slots = ShmemInitStruct("connector run progress", run_progress_shmem_size(), &found);
	slot_count = max_worker_processes;
	if (!found)
		for (i = 0; i < slot_count; i++)
		{
			pg_atomic_init_u64(&slots[i].run_id, 0);
			pg_atomic_init_u32(&slots[i].requested_by, InvalidOid);
			pg_atomic_init_u32(&slots[i].phase, 0);
			pg_atomic_init_u64(&slots[i].rows_done, 0);
			pg_atomic_init_u64(&slots[i].rows_total, 0);
			pg_atomic_init_u64(&slots[i].phase_started, 0);
		}
}

static void
release_slot(int code, Datum arg)
{
	progress_end();
}

void
progress_begin(int64 run_id, Oid requested_by)
{
	static bool registered = false;
	int			i;

	if (slots == NULL)
		return;
	if (!registered)
	{
		before_shmem_exit(release_slot, (Datum) 0);
		registered = true;
	}
	for (i = 0; i < slot_count && mine == NULL; i++)
	{
		uint64		free_slot = 0;

		if (pg_atomic_compare_exchange_u64(&slots[i].run_id, &free_slot, (uint64) run_id))
			mine = &slots[i];
	}
	if (mine != NULL)
		pg_atomic_write_u32(&mine->requested_by, requested_by);
}

void
progress_phase(RunPhase phase, int64 rows_total)
{
	if (mine == NULL)
		return;
	pg_atomic_write_u64(&mine->rows_done, 0);
	pg_atomic_write_u64(&mine->rows_total, (uint64) Max(rows_total, 0));
	pg_atomic_write_u64(&mine->phase_started, (uint64) GetCurrentTimestamp());
	pg_atomic_write_u32(&mine->phase, (uint32) phase);
	reported_at = 0;
}

void
progress_advance(int64 rows_done, const char *what)
{
	TimestampTz now;
	double		seconds;
	double		rate;
	int64		total;
	RunPhase	phase;

	if (mine == NULL)
		return;
	pg_atomic_write_u64(&mine->rows_done, (uint64) rows_done);
	/* The words in pg_stat_activity, at most once a second. */
	now = GetCurrentTimestamp();
	if (!TimestampDifferenceExceeds(reported_at, now, 1000))
		return;
	reported_at = now;
	phase = (RunPhase) pg_atomic_read_u32(&mine->phase);
	seconds = (double) (now - (TimestampTz) pg_atomic_read_u64(&mine->phase_started)) / USECS_PER_SEC;
	rate = seconds > 0 ? rows_done / seconds : 0;
	total = (int64) pg_atomic_read_u64(&mine->rows_total);
	if (total > 0 && rate > 0)
		pgstat_report_activity(STATE_RUNNING,
							   psprintf("connector: %s %s: " INT64_FORMAT " of " INT64_FORMAT " rows, %.0f rows/s, about %.0f s left",
										phase_names[phase], what, rows_done, total, rate, (total - rows_done) / rate));
	else
		pgstat_report_activity(STATE_RUNNING,
							   psprintf("connector: %s %s: " INT64_FORMAT " rows, %.0f rows/s",
										phase_names[phase], what, rows_done, rate));
}

void
progress_end(void)
{
	if (mine == NULL)
		return;
	pg_atomic_write_u64(&mine->rows_done, 0);
	pg_atomic_write_u64(&mine->rows_total, 0);
	pg_atomic_write_u64(&mine->run_id, 0);
	mine = NULL;
}

/*
 * connector.run_progress(): the runs going now that the caller may see (its
 * own and its roles', every run for an admin).
 */
Datum
fb_run_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			caller = GetUserId();
	bool		admin = is_destination_admin(caller);
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; slots != NULL && i < slot_count; i++)
	{
		int64		run_id = (int64) pg_atomic_read_u64(&slots[i].run_id);
		Oid			requested_by = pg_atomic_read_u32(&slots[i].requested_by);
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		int64		total;

		if (run_id == 0 || pg_atomic_read_u64(&slots[i].phase_started) == 0)
			continue;
		if (!admin && !has_privs_of_role(caller, requested_by))
			continue;
		total = (int64) pg_atomic_read_u64(&slots[i].rows_total);
		values[0] = Int64GetDatum(run_id);
		values[1] = CStringGetTextDatum(phase_names[pg_atomic_read_u32(&slots[i].phase)]);
		values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&slots[i].rows_done));
		values[3] = Int64GetDatum(total);
		nulls[3] = total == 0;
		values[4] = TimestampTzGetDatum((TimestampTz) pg_atomic_read_u64(&slots[i].phase_started));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
