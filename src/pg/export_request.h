/*
 * What fb_export_segment was asked: saved as the export's configuration with
 * a queued run, by the caller (wait => false) or by the worker that runs it
 * at once (wait => true).
 */
#ifndef CONNECTOR_EXPORT_REQUEST_H
#define CONNECTOR_EXPORT_REQUEST_H

#include "export_run.h"

typedef struct ExportRequest
{
	Oid			requested_by;
	char		segment[2 * NAMEDATALEN * 2 + 8];	/* qualified and quoted */
	char		destination[NAMEDATALEN];
	char		audience_id[64];	/* "" when not given */
	char		audience_name[256];
	char		key_identifier[32]; /* "" when not given */
	char		mode[16];
	char		settings[4096];	/* "name\tvalue\n" lines of the caller's connector.* settings */
	char		resolved_mapping[4096];	/* which column feeds which key (JSON); "" when too long */
	int			mapping_length;		/* 0 when not given */
	char		mapping[FLEXIBLE_ARRAY_MEMBER];
} ExportRequest;

/*
 * A saved export, as fb_export_segment (for the arguments left out) and
 * fb_run_export start from.
 */
typedef struct SavedExport
{
	int64		export_id;
	char	   *segment;
	char	   *destination;
	char	   *audience_id;	/* NULL until known */
	char	   *audience_name;
	char	   *mapping;		/* NULL: every key matched by name */
	char	   *key_identifier; /* NULL: any */
	char	   *mode;
} SavedExport;

#endif							/* CONNECTOR_EXPORT_REQUEST_H */
