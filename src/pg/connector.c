/*
 * Module entry point: the library's magic block and its settings.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "connector_shim.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Developer setting: makes the core throw, to test the error funnel. */
static int	debug_inject_fault = 0;

static const struct config_enum_entry fault_options[] = {
	{"none", 0, false},
	{"out_of_memory", 1, false},
	{"internal_error", 2, false},
	{NULL, 0, false}
};

static void
assign_debug_inject_fault(int newval, void *extra)
{
	connector_inject_fault(newval);
}

void
_PG_init(void)
{
	DefineCustomEnumVariable("connector.debug_inject_fault",
							 "Makes the C++ core throw on its next calls (for tests).",
							 "none, out_of_memory (std::bad_alloc) or internal_error.",
							 &debug_inject_fault,
							 0,
							 fault_options,
							 PGC_SUSET,
							 GUC_NOT_IN_SAMPLE,
							 NULL,
							 assign_debug_inject_fault,
							 NULL);

	MarkGUCPrefixReserved("connector");
}
