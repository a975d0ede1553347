/*
 * Phases 2 and 3 of an export run: the audience (checked to be in the
 * destination's ad account, or the owner's audience of that name, or created),
 * then the spooled rows in batches, several requests in flight, each outcome
 * committed as it comes. A run first closes the replace session an earlier
 * run left open on its audience; a replace run that stops closes its own.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "core_errors.h"
#include "export_phases.h"
#include "run_progress.h"
#include "privileged.h"
#include "run_records.h"
#include "settings.h"

#define MAX_RESULTS 64

/* Rows the sending phase confirmed so far, for its live progress. */
static int64 rows_confirmed = 0;

/*
 * Phase 2: the audience id. One named by the run is used only once the Graph
 * API says it belongs to the destination's ad account: the token may reach
 * other accounts, which the destination's grant does not cover. Otherwise the
 * export owner's audience of that name is reused, or created at Meta.
 */
void
ensure_audience(Run *run, Destination *destination)
{
	PrivilegedScope scope;
	Oid			argtypes[3] = {INT8OID, TEXTOID, REGROLEOID};
	Datum		values[3];
	ConnectorGraphConfig config = graph_config(&run_resources.credentials);
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
			run->audience_id = MemoryContextStrdup(TopMemoryContext,
												   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
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

	record_audience(run);
}

/* Commits the outcomes of finished batches. Raises the first failure. */
static void
record_batches(const Run *run, ConnectorUploadOperation operation,
			   const ConnectorBatchResult *results, int count, ExportProgress *progress)
{
	PrivilegedScope scope;
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
	}
	record_batch_counts(run->run_id, removing, batches, rows, retries, received, invalid);
	rows_confirmed += rows;
	progress_advance(rows_confirmed, psprintf("audience %s", run->audience_id));
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
						run->segment, run->audience_id, failure->message),
				 failure->error_code == 2650 && failure->error_subcode == 1870145
				 ? errhint("Meta is still applying another change or replace of audience %s, made outside"
						   " this export (a replace that connector left open is closed by the next run first)."
						   " Run the export again once fb_list_audiences shows operation_status_code 200 for it;"
						   " a replace session ends by itself 90 minutes after it started.", run->audience_id)
				 : 0));
}

/*
 * Sends one member of the run's spools as the final batch of a replace
 * session (any batch_seq but 1 continues a session): Meta then ends it and the
 * audience holds what the session received. False when the run has no member
 * to send.
 */
static bool
send_closing_batch(Run *run, int64 session_id)
{
	StringInfoData member;
	ConnectorGraphConfig graph;
	ConnectorStatus status;
	BufFile    *spools[2] = {run_resources.spool, run_resources.removals};
	BufFile    *spool = NULL;
	int			i;

	initStringInfo(&member);
	for (i = 0; i < 2 && spool == NULL; i++)
		if (spools[i] != NULL && BufFileSeek(spools[i], 0, 0, SEEK_SET) == 0 && unspool_row(spools[i], &member))
			spool = spools[i];
	if (spool == NULL)
		return false;
	graph = graph_config(&run_resources.credentials);
	graph.should_abort = export_should_abort;
	if (connector_close_replace_session(&graph, run_resources.encoder, run->audience_id, session_id,
										member.data, member.len, &status) == CONNECTOR_ERROR)
	{
		raise_if_cancelled();
		raise_core_error(&status);
	}
	return true;
}

/*
 * A replace run that failed, was cancelled or interrupted after its batch 1
 * leaves its session open at Meta, which then refuses every other change of
 * the audience (2650/1870145) for 90 minutes. The next run on the audience,
 * of any mode, closes it first with one member of its own (which a replace
 * keeps, an add adds anyway, and a mirror's removals take away again).
 */
void
begin_sending_phase(const Run *run)
{
	rows_confirmed = 0;
	progress_phase(PHASE_SENDING, run->rows_kept + run->rows_to_remove);
}

void
close_open_replace_session(Run *run)
{
	if (run->open_session_id == 0 || !send_closing_batch(run, run->open_session_id))
		return;
	record_incomplete_replace(run->open_session_run, true);
	ereport(LOG,
			(errmsg("connector: closed replace session " INT64_FORMAT " of audience %s, left open by run " INT64_FORMAT,
					run->open_session_id, run->audience_id, run->open_session_run)));
}

/*
 * A replace run that stops before its last batch closes its own session at
 * once (a shutdown leaves that to the next run). Best effort: true when it
 * was closed; otherwise the next run on the audience closes it.
 */
bool
close_own_replace_session(Run *run)
{
	MemoryContext context = CurrentMemoryContext;
	bool		closed = false;

	if (run->mode != EXPORT_REPLACE || !run->replace_started)
		return false;
	if (run_resources.sender != NULL)
	{
		connector_export_sender_free(run_resources.sender);
		run_resources.sender = NULL;
	}
	export_cancel_requested = false;
	QueryCancelPending = false;
	PG_TRY();
	{
		closed = send_closing_batch(run, run->session_id);
		if (closed)
			record_incomplete_replace(run->run_id, true);
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(context);
		error = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		ereport(LOG,
				(errmsg("connector: could not close replace session " INT64_FORMAT " of audience %s: %s",
						run->session_id, run->audience_id, error->message),
				 errdetail("The next run on the audience closes it first.")));
		closed = false;
	}
	PG_END_TRY();
	return closed;
}

/*
 * After the run sent everything: the audience as Meta reports it (size
 * bounds, operation and delivery status), recorded with the run. Best
 * effort: a failure to read it is logged and never fails the run.
 */
void
read_audience_status(const Run *run)
{
	ConnectorGraphConfig graph = graph_config(&run_resources.credentials);
	ConnectorStatus status;
	ConnectorAudienceList *list;

	graph.should_abort = export_should_abort;
	list = connector_read_audience(&graph, run->destination_name, run->audience_id, &status);
	if (list == NULL)
	{
		raise_if_cancelled();
		ereport(LOG,
				(errmsg("connector: could not read audience %s after export run " INT64_FORMAT ": %s",
						run->audience_id, run->run_id, status.message)));
		return;
	}
	PG_TRY();
	{
		ConnectorAudience audience = connector_audience_at(list, 0);

		record_audience_status(run->run_id, &audience);
	}
	PG_FINALLY();
	{
		connector_free_audience_list(list);
	}
	PG_END_TRY();
}

/* Phase 3: spooled members, in batches, to the audience. */
void
send_spool(Run *run, ExportProgress *progress, ConnectorUploadOperation operation,
		   BufFile *file, int64 rows, int64 session_id)
{
	ConnectorGraphConfig graph = graph_config(&run_resources.credentials);
	ConnectorSenderConfig config;
	ConnectorStatus status;
	ConnectorBatchResult results[MAX_RESULTS];
	StringInfoData member;
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
	run_resources.sender = connector_export_sender_new(&graph, &config, run_resources.encoder, &status);
	if (run_resources.sender == NULL)
		raise_core_error(&status);

	if (BufFileSeek(file, 0, 0, SEEK_SET) != 0)
		elog(ERROR, "could not rewind the export spool file");
	initStringInfo(&member);
	pgstat_report_activity(STATE_RUNNING,
						   psprintf("connector: %s audience %s from segment %s",
									operation == CONNECTOR_UPLOAD_REMOVE ? "removing from" : "sending to",
									run->audience_id, run->segment));
	while (!connector_export_sender_done(run_resources.sender))
	{
		int			count;

		while (!input_done && connector_export_sender_accepts_rows(run_resources.sender))
		{
			if (!unspool_row(file, &member))
			{
				input_done = true;
				if (connector_export_sender_finish(run_resources.sender, &status) == CONNECTOR_ERROR)
					raise_core_error(&status);
				break;
			}
			if (connector_export_sender_add_member(run_resources.sender, member.data, member.len,
												   &status) == CONNECTOR_ERROR)
				raise_core_error(&status);
		}
		if (connector_export_sender_poll(run_resources.sender, 100, results, MAX_RESULTS, &count,
										 &status) == CONNECTOR_ERROR)
		{
			raise_if_cancelled();
			raise_core_error(&status);
		}
		if (count > 0)
			record_batches(run, operation, results, count, progress);
		raise_if_cancelled();
	}
	connector_export_sender_free(run_resources.sender);
	run_resources.sender = NULL;
}
