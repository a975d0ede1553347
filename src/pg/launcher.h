/*
 * The background launcher (with shared_preload_libraries): starts queued
 * export runs of connector.database in dynamic workers.
 */
#ifndef CONNECTOR_LAUNCHER_H
#define CONNECTOR_LAUNCHER_H

/* Called from _PG_init while shared_preload_libraries is processed. */
extern void register_launcher(void);

/*
 * Raises an error unless queued runs of this database will be picked up: the
 * launcher must be preloaded and serve this database.
 */
extern void require_launcher_for_this_database(void);

/* A run was queued in this transaction: wake the launcher when it commits. */
extern void wake_launcher_at_commit(void);

/* An export worker ended: its slot is free for the next queued run. */
extern void wake_launcher(void);

/*
 * True once a day (and at the first sweep after the server starts): the
 * caller prunes the run history then.
 */
extern bool claim_daily_history_pruning(void);

#endif							/* CONNECTOR_LAUNCHER_H */
