/*
 * Live progress of the runs going now (run_progress.c), for fb_export_runs
 * and pg_stat_activity. Every call is a no-op without shared memory.
 */
#ifndef CONNECTOR_RUN_PROGRESS_H
#define CONNECTOR_RUN_PROGRESS_H

typedef enum RunPhase
{
	PHASE_READING,
	PHASE_DIFFING,
	PHASE_SENDING,
	PHASE_FINISHING,
} RunPhase;

/* The launcher's shared memory holds the slots. */
extern Size run_progress_shmem_size(void);
extern void run_progress_shmem_init(void);

/* This process runs the run now; its slot is freed at progress_end or exit. */
extern void progress_begin(int64 run_id, Oid requested_by);
/* A phase starts, with the rows it has to do (0: not known). */
extern void progress_phase(RunPhase phase, int64 rows_total);
/* Rows done in the phase; `what` completes pg_stat_activity's words ("segment s"). */
extern void progress_advance(int64 rows_done, const char *what);
extern void progress_end(void);

#endif							/* CONNECTOR_RUN_PROGRESS_H */
