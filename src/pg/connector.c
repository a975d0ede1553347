/*
 * Module entry point: the library's magic block and its settings.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "module.h"

#include "launcher.h"
#include "settings.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

void
_PG_init(void)
{
	define_settings();
	if (process_shared_preload_libraries_in_progress)
		register_launcher();
}
