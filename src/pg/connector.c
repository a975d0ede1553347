/*
 * Module entry point: the library's magic block and its settings.
 */
#include "postgres.h"

#include "fmgr.h"

#include "settings.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	define_settings();
}
