/*
 * Reading the arguments of SQL functions that take NULL as "not given".
 */
#ifndef CONNECTOR_SQL_ARGS_H
#define CONNECTOR_SQL_ARGS_H

#include "fmgr.h"
#include "utils/builtins.h"

/* The text argument as a C string, or NULL when it is SQL NULL. */
static inline char *
text_arg(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

#endif							/* CONNECTOR_SQL_ARGS_H */
