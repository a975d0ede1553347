/*
 * What the phases of one export run share: the run as it was queued and what
 * each phase found, the resources released however the run ends, and the
 * steps (one short transaction each) the phases are made of. run_export in
 * export_run.c calls the phases in order; each phase has its own file:
 * segment_read.c, mirror.c, export_send.c, and run_records.c for every
 * statement on connector.runs and connector.exports.
 */
#ifndef CONNECTOR_EXPORT_PHASES_H
#define CONNECTOR_EXPORT_PHASES_H

#include "lib/stringinfo.h"
#include "storage/buffile.h"
#include "utils/portal.h"
#include "utils/tuplesort.h"

#include "connector_shim.h"
#include "destinations.h"
#include "export_run.h"

typedef enum ExportMode
{
	EXPORT_ADD,					/* POST /users */
	EXPORT_REPLACE,				/* one usersreplace session */
	EXPORT_MIRROR,				/* what is new since the ledger, and what is gone */
} ExportMode;

/* The mode's name as SQL stores it, and back; parse_export_mode raises on an unknown one. */
extern const char *export_mode_name(ExportMode mode);
extern ExportMode parse_export_mode(const char *name);

typedef enum RunStatus
{
	RUN_QUEUED,
	RUN_RUNNING,
	RUN_SUCCEEDED,
	RUN_FAILED,
	RUN_CANCELLED,
	RUN_INTERRUPTED,			/* stopped by a shutdown: queued again as a new run */
} RunStatus;

extern const char *run_status_name(RunStatus status);

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
	ExportMode	mode;
	double		mirror_max_removal; /* the caller's setting, pinned in the run */
	bool		day_first;		/* the caller's connector.date_order is DMY, pinned too */
	int64		session_id;
	bool		unhashed_keys_allowed;	/* by the destination's admin */
	/* a replace session an earlier run left open on the audience (0: none) */
	int64		open_session_id;
	int64		open_session_run;
	bool		replace_started;	/* this replace run may have opened its session */
	/* what the read found */
	int64		rows_read;
	int64		rows_exportable;	/* rows with a key identifier: the segment's size */
	int64		rows_kept;		/* to add, or to replace with */
	int64		rows_unchanged; /* mirror: in the ledger as they are, not sent again */
	int64		rows_to_remove; /* mirror */
	int64		ledger_rows;	/* mirror: members this export had sent before */
	int64		skipped[CONNECTOR_SKIP_REASONS];
	int64		rejected_prehashed;
} Run;

/* What must be released however the run ends. */
typedef struct RunResources
{
	ConnectorExportEncoder *encoder;
	ConnectorExportSender *sender;
	BufFile    *spool;			/* members to add (or replace with) */
	BufFile    *removals;		/* mirror: members to remove */
	BufFile    *next_ledger;	/* mirror, replace: the ledger once everything is sent */
	DestinationCredentials credentials;
} RunResources;

extern RunResources run_resources;

/* A step: its own transaction, with SPI connected and a snapshot pushed. */
extern void begin_step(const char *activity);
extern void end_step(void);

/* Polled by the core while requests are in flight. */
extern bool export_should_abort(void);

/* Raises the cancel of the run; exits at once when the postmaster is gone. */
extern void raise_if_cancelled(void);

/* segment_read.c: phase 1, the segment read as the requester and spooled. */
extern void read_segment(Run *run, ExportProgress *progress);
extern void count_exportable_row(Run *run);
extern bool count_encoded_row(Run *run, ConnectorResult result, int skip_reason, ConnectorStatus *status);
extern void spool_row(BufFile *file, const char *row, size_t length);
extern bool unspool_row(BufFile *file, StringInfo row);

/*
 * mirror.c: what a mirror run adds and removes, from the segment's source
 * records sorted and merged with the ledger.
 */
extern Tuplesortstate *begin_source_sort(void);
extern void sort_source_record(Tuplesortstate *sort, StringInfo buffer, const char *record, size_t length);
extern void diff_against_ledger(Run *run, Tuplesortstate *records);
extern void check_mirror_removal(const Run *run);

/* ledger.c: the export's ledger, read entry by entry, and rewritten after a run. */
/* The export's ledger, read chunk by chunk, entry by entry. */
typedef struct LedgerReader
{
	Portal		portal;			/* NULL when there is no ledger to read */
	MemoryContext chunk_context;
	const char *chunk;
	size_t		chunk_length;
	size_t		at;
	const char *digest;			/* the current entry */
	const char *member;
	size_t		member_length;
	int64		entries;
} LedgerReader;

/* A reader with nothing to read, until read_ledger; in the privileged scope. */
extern void open_ledger(LedgerReader *reader);
extern void read_ledger(LedgerReader *reader, int64 export_id);
/* Moves to the next entry; false at the end of the ledger. */
extern bool next_ledger_entry(LedgerReader *reader);
extern void close_ledger(LedgerReader *reader);
extern void record_ledger(const Run *run);

/* export_send.c: phases 2 and 3, the audience and the batches. */
extern void ensure_audience(Run *run, Destination *destination);
extern void begin_sending_phase(const Run *run);
extern void close_open_replace_session(Run *run);
extern void read_audience_status(const Run *run);
extern bool close_own_replace_session(Run *run);
extern void send_spool(Run *run, ExportProgress *progress, ConnectorUploadOperation operation,
					   BufFile *file, int64 rows, int64 session_id);

#endif							/* CONNECTOR_EXPORT_PHASES_H */
