/*
 * Export runs in background workers. fb_export_segment(..., wait => true)
 * starts a dynamic worker for its run and waits for it, relaying progress as
 * NOTICEs: batches commit in the worker's own transactions, no transaction
 * of the caller's stays open across HTTP, and no shared_preload_libraries is
 * needed (a dynamic worker only needs a free max_worker_processes slot).
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

#include "export_request.h"
#include "launcher.h"
#include "privileged.h"
#include "requester_scope.h"
#include "settings.h"

PGDLLEXPORT void connector_export_worker_main(Datum main_arg);

/* What a worker started for a waiting caller finds in its DSM segment. */
typedef struct WaitedRun
{
	ExportProgress progress;
	pg_atomic_uint64 run_id;	/* 0 until the run is saved */
	ExportRequest request;		/* last: its mapping has a flexible length */
} WaitedRun;

/* bgw_extra of an export worker. */
typedef struct WorkerExtra
{
	Oid			database;
	Oid			user;			/* connects as the extension's owner */
	int64		run_id;			/* 0: the run is in the DSM segment's request */
} WorkerExtra;

static void
handle_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	export_cancel_requested = true;
	/* Also cancels the segment's own query, wherever it waits or loops. */
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

static void
apply_settings(const char *settings)
{
	char	   *copy = pstrdup(settings);
	char	   *line;
	char	   *next;

	for (line = copy; line != NULL && *line != '\0'; line = next)
	{
		char	   *tab = strchr(line, '\t');

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (tab == NULL)
			continue;
		*tab = '\0';
		SetConfigOption(line, tab + 1, PGC_SUSET, PGC_S_SESSION);
	}
}

/* The role's name for a message, or its OID once it was dropped. */
static char *
role_name_or_oid(Oid role)
{
	char	   *name = GetUserNameFromId(role, true);

	return name != NULL ? name : psprintf("with OID %u", role);
}

/*
 * An audience named by id must not be one that another role's export manages
 * (or that connector created for another role): an exporter acts only
 * through its own exports.
 */
static void
require_audience_not_of_another(const ExportRequest *request, int64 destination_id, bool admin)
{
	uint64		i;

	if (request->audience_id[0] == '\0' || admin)
		return;
	if (SPI_execute_with_args("SELECT owner::pg_catalog.oid FROM connector.exports"
							  " WHERE destination_id OPERATOR(pg_catalog.=) $1 AND audience_id OPERATOR(pg_catalog.=) $2"
							  " UNION ALL SELECT created_by::pg_catalog.oid FROM connector.audiences"
							  " WHERE destination_id OPERATOR(pg_catalog.=) $1 AND audience_id OPERATOR(pg_catalog.=) $2",
							  2, (Oid[]) {INT8OID, TEXTOID},
							  (Datum[]) {Int64GetDatum(destination_id), CStringGetTextDatum(request->audience_id)},
							  NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector.exports");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

		if (!has_privs_of_role(request->requested_by, owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("audience %s of destination \"%s\" belongs to an export of role %s",
							request->audience_id, request->destination, role_name_or_oid(owner)),
					 errhint("Leave audience_id out to have an audience of your own created, or ask a member of connector_admin.")));
	}
}

/*
 * Saves the configuration and queues a run, as the role that asked. The
 * export of a segment to an audience name belongs to the role that created
 * it: another exporter gets a clear refusal, never a change to it; an admin
 * may change any. The run pins the configuration it will execute.
 */
int64
save_export_request(const ExportRequest *request)
{
	PrivilegedScope scope;
	Oid			requester = request->requested_by;
	bool		admin = is_destination_admin(requester);
	/*
	 * $1-$3 the export's key, $4-$7 its configuration, $8 the requester, $9
	 * an existing export, $10 the caller's connector.mirror_max_removal
	 */
	Oid			types[10] = {TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, REGROLEOID, INT8OID,
	FLOAT4OID};
	Datum		values[10];
	char		nulls[10];
	bool		isnull;
	int64		export_id = 0;
	Datum		saved_audience = (Datum) 0;
	bool		saved_audience_null = true;
	int64		run_id;

	SPI_connect();
	enter_privileged_scope(&scope);
	if (SPI_execute_with_args("SELECT destination_id FROM connector.destinations WHERE name OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(request->destination)},
							  NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("destination \"%s\" does not exist", request->destination)));
	values[1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	require_audience_not_of_another(request, DatumGetInt64(values[1]), admin);

	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(request->segment);
	values[2] = CStringGetTextDatum(request->audience_name);
	values[3] = request->mapping_length > 0 ? CStringGetTextDatum(request->mapping) : (Datum) 0;
	nulls[3] = request->mapping_length > 0 ? ' ' : 'n';
	values[4] = CStringGetTextDatum(request->key_identifier);
	nulls[4] = request->key_identifier[0] ? ' ' : 'n';
	values[5] = CStringGetTextDatum(request->mode);
	values[6] = CStringGetTextDatum(request->audience_id);
	nulls[6] = request->audience_id[0] ? ' ' : 'n';
	values[7] = ObjectIdGetDatum(requester);
	values[8] = (Datum) 0;
	values[9] = Float4GetDatum((float4) connector_mirror_max_removal);
	while (export_id == 0)
	{
		if (SPI_execute_with_args("SELECT export_id, owner::pg_catalog.oid FROM connector.exports"
								  " WHERE segment OPERATOR(pg_catalog.=) $1 AND destination_id OPERATOR(pg_catalog.=) $2"
								  " AND audience_name OPERATOR(pg_catalog.=) $3 FOR UPDATE",
								  3, types, values, nulls, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read connector.exports");
		if (SPI_processed == 1)
		{
			Oid			owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

			if (!admin && !has_privs_of_role(requester, owner))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("the export of segment %s to audience \"%s\" of destination \"%s\" belongs to role %s",
								request->segment, request->audience_name, request->destination,
								role_name_or_oid(owner)),
						 errhint("Export it under an audience name of your own (audience_name => '...'); only its owner or a member of connector_admin may change this export.")));
			values[8] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (SPI_execute_with_args("UPDATE connector.exports SET audience_id = COALESCE($7, audience_id),"
									  " mapping = $4::pg_catalog.jsonb, key_identifier = $5, mode = $6,"
									  " updated_at = pg_catalog.now()"
									  " WHERE export_id OPERATOR(pg_catalog.=) $9 RETURNING export_id, audience_id",
									  9, types, values, nulls, false, 0) != SPI_OK_UPDATE_RETURNING)
				elog(ERROR, "could not update connector.exports");
		}
		else if (SPI_execute_with_args("INSERT INTO connector.exports (segment, destination_id, audience_name,"
									   " mapping, key_identifier, mode, audience_id, owner)"
									   " VALUES ($1, $2, $3, $4::pg_catalog.jsonb, $5, $6, $7, $8)"
									   " ON CONFLICT DO NOTHING RETURNING export_id, audience_id",
									   8, types, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not insert into connector.exports");
		/* Nothing inserted: another session created it meanwhile; look again. */
		if (SPI_processed == 1)
		{
			export_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			saved_audience = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &saved_audience_null);
		}
	}

	/* The run pins what it will execute: mode, mapping, key identifier, audience. */
	values[6] = saved_audience;
	nulls[6] = saved_audience_null ? 'n' : ' ';
	values[8] = Int64GetDatum(export_id);
	if (SPI_execute_with_args("INSERT INTO connector.runs (export_id, requested_by, mode, mapping,"
							  " key_identifier, audience_id, mirror_max_removal)"
							  " VALUES ($9, $8, $6, $4::pg_catalog.jsonb, $5, $7, $10) RETURNING run_id",
							  10, types, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not insert into connector.runs");
	run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	leave_privileged_scope(&scope);
	SPI_finish();
	return run_id;
}

/*
 * Saves the waiting caller's request; a refusal (another role's export, an
 * unknown destination) is handed to the caller as its error. 0 then.
 */
static int64
save_waited_request(WaitedRun *waited)
{
	MemoryContext context = CurrentMemoryContext;
	int64		run_id = 0;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		run_id = save_export_request(&waited->request);
		PopActiveSnapshot();
		CommitTransactionCommand();
		pg_atomic_write_u64(&waited->run_id, (uint64) run_id);
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(context);
		error = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		strlcpy(waited->progress.status, "refused", sizeof(waited->progress.status));
		strlcpy(waited->progress.sqlstate, unpack_sql_state(error->sqlerrcode), sizeof(waited->progress.sqlstate));
		strlcpy(waited->progress.error, error->message, sizeof(waited->progress.error));
		strlcpy(waited->progress.hint, error->hint != NULL ? error->hint : "", sizeof(waited->progress.hint));
		pg_memory_barrier();
		waited->progress.finished = true;
		run_id = 0;
	}
	PG_END_TRY();
	return run_id;
}

void
connector_export_worker_main(Datum main_arg)
{
	WorkerExtra extra;
	dsm_segment *segment = NULL;
	WaitedRun  *waited = NULL;
	int64		run_id;

	memcpy(&extra, MyBgworkerEntry->bgw_extra, sizeof(extra));
	pqsignal(SIGTERM, handle_sigterm);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(extra.database, extra.user, 0);
	/* Dates reach the normalizers in one form, whatever the server's default. */
	SetConfigOption("datestyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION);
	/* It runs as the extension owner: nothing of anyone else's may be resolved. */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("application_name", "connector export", PGC_USERSET, PGC_S_SESSION);
	pgstat_report_appname("connector export");
	remember_worker_identity();

	run_id = extra.run_id;
	if (run_id == 0)
	{
		segment = dsm_attach(DatumGetUInt32(main_arg));
		if (segment == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("connector: the waiting session of this export is gone")));
		waited = dsm_segment_address(segment);
		apply_settings(waited->request.settings);

		run_id = save_waited_request(waited);
		if (run_id == 0)
		{
			dsm_detach(segment);
			return;
		}
	}
	run_export(run_id, waited != NULL ? &waited->progress : NULL);
	if (segment != NULL)
		dsm_detach(segment);
	wake_launcher();
}

static void
describe_worker(BackgroundWorker *worker, int64 run_id)
{
	WorkerExtra extra;

	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker->bgw_library_name, "connector", BGW_MAXLEN);
	strlcpy(worker->bgw_function_name, "connector_export_worker_main", BGW_MAXLEN);
	strlcpy(worker->bgw_type, "connector export", BGW_MAXLEN);
	extra.database = MyDatabaseId;
	extra.user = extension_owner();
	extra.run_id = run_id;
	memcpy(worker->bgw_extra, &extra, sizeof(extra));
}

void
start_export_worker(int64 run_id)
{
	BackgroundWorker worker;

	describe_worker(&worker, run_id);
	snprintf(worker.bgw_name, BGW_MAXLEN, "connector export run " INT64_FORMAT, run_id);
	if (!RegisterDynamicBackgroundWorker(&worker, NULL))
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("no background worker slot for export run " INT64_FORMAT ": it stays queued", run_id),
				 errhint("Raise max_worker_processes.")));
}

static void
start_worker(dsm_segment *segment, BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	describe_worker(&worker, 0);
	snprintf(worker.bgw_name, BGW_MAXLEN, "connector export for PID %d", MyProcPid);
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(segment));
	worker.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&worker, handle))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a background worker for the export"),
				 errhint("Raise max_worker_processes, or wait for other background workers to finish.")));
}

int64
run_request_and_wait(const ExportRequest *request)
{
	Size		size = offsetof(WaitedRun, request) + offsetof(ExportRequest, mapping) + request->mapping_length + 1;
	dsm_segment *segment = dsm_create(size, 0);
	WaitedRun  *waited = dsm_segment_address(segment);
	BackgroundWorkerHandle *handle;
	uint64		reported_batches = 0;
	int64		run_id;

	memset(waited, 0, size);
	pg_atomic_init_u64(&waited->progress.rows_read, 0);
	pg_atomic_init_u64(&waited->progress.rows_sent, 0);
	pg_atomic_init_u64(&waited->progress.batches, 0);
	pg_atomic_init_u64(&waited->run_id, 0);
	memcpy(&waited->request, request, offsetof(ExportRequest, mapping) + request->mapping_length + 1);
	start_worker(segment, &handle);

	PG_TRY();
	{
		for (;;)
		{
			pid_t		pid;
			BgwHandleStatus state = GetBackgroundWorkerPid(handle, &pid);
			uint64		batches = pg_atomic_read_u64(&waited->progress.batches);

			if (batches != reported_batches)
			{
				ereport(NOTICE,
						(errmsg("export run " UINT64_FORMAT ": %llu rows read, %llu sent in %llu batches",
								pg_atomic_read_u64(&waited->run_id),
								(unsigned long long) pg_atomic_read_u64(&waited->progress.rows_read),
								(unsigned long long) pg_atomic_read_u64(&waited->progress.rows_sent),
								(unsigned long long) batches)));
				reported_batches = batches;
			}
			if (state == BGWH_STOPPED || state == BGWH_POSTMASTER_DIED)
				break;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000,
							 PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		/* Cancelled while waiting: the run stops too, and says so. */
		TerminateBackgroundWorker(handle);
		PG_RE_THROW();
	}
	PG_END_TRY();

	pg_memory_barrier();
	run_id = (int64) pg_atomic_read_u64(&waited->run_id);
	if (!waited->progress.finished)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("the export worker stopped before finishing run " INT64_FORMAT, run_id),
				 errhint("See the server log, and fb_export_runs.")));
	if (run_id == 0)
	{
		const char *s = waited->progress.sqlstate;

		ereport(ERROR,
				(errcode(MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4])),
				 errmsg("%s", waited->progress.error),
				 waited->progress.hint[0] ? errhint("%s", waited->progress.hint) : 0));
	}
	if (strcmp(waited->progress.status, "succeeded") != 0)
	{
		const char *s = waited->progress.sqlstate;

		bool		token_refused = strcmp(s, "28000") == 0;

		ereport(ERROR,
				(errcode(MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4])),
				 errmsg("export run " INT64_FORMAT " %s: %s", run_id, waited->progress.status,
						waited->progress.error),
				 token_refused
				 ? errhint("The access token of destination \"%s\" was refused; it is marked needs_reauth. "
						   "A member of connector_admin sets a new one with fb_alter_destination('%s', access_token => ...).",
						   request->destination, request->destination)
				 : errhint("SELECT * FROM fb_export_runs WHERE run_id = " INT64_FORMAT ";", run_id)));
	}
	ereport(NOTICE,
			(errmsg("export run " INT64_FORMAT " succeeded: %llu rows read, %llu sent in %llu batches",
					run_id,
					(unsigned long long) pg_atomic_read_u64(&waited->progress.rows_read),
					(unsigned long long) pg_atomic_read_u64(&waited->progress.rows_sent),
					(unsigned long long) pg_atomic_read_u64(&waited->progress.batches))));
	dsm_detach(segment);
	return run_id;
}
