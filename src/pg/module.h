/*
 * What the module exports to PostgreSQL, and nothing else: it is built with
 * -fvisibility=hidden. PostgreSQL 16 gives PGDLLEXPORT default visibility
 * itself; 15 leaves it empty on this platform, so the module does.
 */
#ifndef CONNECTOR_MODULE_H
#define CONNECTOR_MODULE_H

#include "fmgr.h"

#undef PGDLLEXPORT
#define PGDLLEXPORT __attribute__((visibility("default")))

/* An SQL-callable function of the module (PG_FUNCTION_INFO_V1, exported). */
#define CONNECTOR_SQL_FUNCTION(name) \
	extern PGDLLEXPORT Datum name(PG_FUNCTION_ARGS); \
	PG_FUNCTION_INFO_V1(name)

#endif							/* CONNECTOR_MODULE_H */
