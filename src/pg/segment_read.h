/*
 * Checking a segment (a view the requester may read, whose columns fit the
 * mapping) for fb_export_segment and for the run that reads it.
 */
#ifndef CONNECTOR_SEGMENT_READ_H
#define CONNECTOR_SEGMENT_READ_H

#include "storage/lockdefs.h"
#include "access/htup.h"
#include "access/tupdesc.h"
#include "utils/relcache.h"

#include "connector_shim.h"
#include "destinations.h"

/* The qualified, quoted name of a relation: what an export saves as its segment. */
extern char *segment_name(Oid relid);

/* Opens the relation, or raises an error unless it is a view or materialized view the current user may read. */
extern Relation open_checked_segment(Oid relid, const char *name, LOCKMODE lock);

/* An encoder for a segment's columns; raises the mapping's error if it does not fit. */
extern ConnectorExportEncoder *encoder_for_relation(Relation relation, const char *segment,
													const char *mapping, const char *key_identifier,
													bool day_first);

/* Raises 42501 when the encoder sends unhashed keys that the destination does not allow. */
extern void require_unhashed_keys_allowed(const ConnectorExportEncoder *encoder, const char *segment,
										  const char *destination, bool allowed);

/*
 * fb_export_segment's checks of the segment (`name`, its qualified name) and
 * the mapping; *resolved_mapping: which column feeds which key (JSON).
 */
extern void check_segment_for_export(Oid relid, const char *name, const char *mapping,
									 const char *key_identifier, const Destination *destination,
									 char **resolved_mapping);

/*
 * The query that reads a segment's mapped columns as text (and whether one
 * was too long to fetch), the rows per fetch, and a fetched row's values:
 * shared by the export's read and the preview's.
 */
extern char *segment_query(const char *segment, Relation relation, const ConnectorExportEncoder *encoder);
extern int	rows_per_fetch(int mapped);
extern bool unpack_row(HeapTuple tuple, TupleDesc desc, int mapped, Datum *datums, bool *nulls,
					   const char **values, size_t *lengths);

/*
 * preview.c, for fb_preview_export: reads the segment as an export would, as the caller,
 * and returns the report (JSON); nothing is sent.
 */
extern char *preview_segment(Oid relid, const char *mapping, const char *key_identifier, int sample_rows);

#endif							/* CONNECTOR_SEGMENT_READ_H */
