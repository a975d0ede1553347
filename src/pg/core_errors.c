/*
 * The C end of the shim's error funnel: a shim call has returned with a
 * ConnectorStatus, no C++ frame is live, and the error can be raised safely.
 */
#include "postgres.h"

#include "core_errors.h"

void
raise_core_error(const ConnectorStatus *status)
{
	const char *s = status->sqlstate;

	ereport(ERROR,
			(errcode(MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4])),
			 errmsg("%s", status->message),
			 status->detail[0] != '\0' ? errdetail("%s", status->detail) : 0,
			 status->hint[0] != '\0' ? errhint("%s", status->hint) : 0));
	pg_unreachable();
}
