/*
 * fb_preview_export's read (fb_preview_export itself is in
 * export_functions.c): the segment read as an export reads it, as the caller,
 * in the caller's transaction, and nothing sent.
 */
#include "postgres.h"

#include "access/relation.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "core_errors.h"
#include "run_records.h"
#include "segment_read.h"
#include "settings.h"

/* Returns the report (JSON). */
char *
preview_segment(Oid relid, const char *mapping, const char *key_identifier, int sample_rows)
{
	char	   *name = get_rel_relkind(relid) != '\0' ? segment_name(relid) : psprintf("with OID %u", relid);
	Relation	relation = open_checked_segment(relid, name, AccessShareLock);
	ConnectorExportEncoder *encoder = encoder_for_relation(relation, name, mapping, key_identifier,
														   connector_date_order == DATE_ORDER_DMY);
	int			mapped = connector_export_encoder_column_count(encoder);
	const char **values = palloc(sizeof(char *) * mapped);
	size_t	   *lengths = palloc(sizeof(size_t) * mapped);
	Datum	   *datums = palloc(sizeof(Datum) * (mapped + 1));
	bool	   *nulls = palloc(sizeof(bool) * (mapped + 1));
	ConnectorStatus status;
	ConnectorExportPreview *preview = NULL;
	ConnectorPreviewSettings settings;
	TimestampTz started = GetCurrentTimestamp();
	char	   *report = NULL;
	Portal		portal;

	PG_TRY();
	{
		const char *query = segment_query(name, relation, encoder);

		preview = connector_export_preview_new(encoder, sample_rows, &status);
		if (preview == NULL)
			raise_core_error(&status);
		SPI_connect();
		portal = SPI_cursor_open_with_args(NULL, query, 0, NULL, NULL, NULL, true, 0);
		for (;;)
		{
			uint64		row;

			SPI_cursor_fetch(portal, true, rows_per_fetch(mapped));
			if (SPI_processed == 0)
				break;
			for (row = 0; row < SPI_processed; row++)
			{
				ConnectorResult result = CONNECTOR_NO_VALUE;
				const char *out;
				size_t		out_len;
				int			skip_reason = CONNECTOR_SKIP_VALUE_TOO_LONG;
				bool		fetched = unpack_row(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, mapped,
												 datums, nulls, values, lengths);

				if (fetched)
				{
					result = connector_export_encode_row(encoder, values, lengths, &out, &out_len,
														 &skip_reason, &status);
					if (result == CONNECTOR_ERROR)
						raise_core_error(&status);
				}
				if (connector_export_preview_add(preview, fetched ? encoder : NULL, result, skip_reason,
												 &status) == CONNECTOR_ERROR)
					raise_core_error(&status);
			}
			SPI_freetuptable(SPI_tuptable);
			CHECK_FOR_INTERRUPTS();
		}
		SPI_cursor_close(portal);
		SPI_finish();

		memset(&settings, 0, sizeof(settings));
		settings.segment = name;
		settings.batch_size = connector_batch_size;
		settings.max_parallel_requests = connector_max_parallel_requests;
		settings.max_profiles = connector_max_profiles_per_export;
		settings.read_seconds = (double) (GetCurrentTimestamp() - started) / USECS_PER_SEC;
		settings.seconds_per_batch = recent_seconds_per_batch();
		settings.estimate_basis = settings.seconds_per_batch > 0
			? psprintf("the successful runs of the last 30 days: %.2f s per batch", settings.seconds_per_batch)
			: "no recent run: 1 s per request, connector.max_parallel_requests at once";
		if (settings.seconds_per_batch <= 0)
			settings.seconds_per_batch = 1.0 / Max(connector_max_parallel_requests, 1);
		report = (char *) connector_export_preview_report(preview, &settings, &status);
		if (report == NULL)
			raise_core_error(&status);
		report = pstrdup(report);
	}
	PG_FINALLY();
	{
		if (preview != NULL)
			connector_export_preview_free(preview);
		connector_export_encoder_free(encoder);
	}
	PG_END_TRY();
	relation_close(relation, AccessShareLock);
	return report;
}
