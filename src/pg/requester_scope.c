/*
 * The segment is read with the identity of the role that asked for the run,
 * the way REFRESH MATERIALIZED VIEW runs a view's query: that role as session
 * and current user, with its own settings (ALTER ROLE ... SET, and for this
 * database ALTER ROLE ... IN DATABASE ... SET: statement_timeout, work_mem,
 * temp_file_limit ...), in a security-restricted operation inside a GUC nest
 * level of its own. Whatever the view's code changes (search_path,
 * exit_on_error, any setting) is rolled back when the scope ends, before the
 * worker runs anything with the extension owner's rights again.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_db_role_setting.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"

#include "requester_scope.h"

/* The worker's own identity, taken when it connected. */
static Oid	worker_user = InvalidOid;
static bool worker_is_superuser = false;

/* A scope's statement timeout is armed: an error raised now may be its own. */
static bool statement_timeout_armed = false;

void
remember_worker_identity(void)
{
	worker_user = GetSessionUserId();
	worker_is_superuser = GetSessionUserIsSuperuser();
}

void
restore_worker_identity(void)
{
	if (OidIsValid(worker_user) && GetSessionUserId() != worker_user)
		SetSessionAuthorization(worker_user, worker_is_superuser);
}

/*
 * One pg_db_role_setting entry's settings, as a login of the role would apply
 * them, but at session level inside the scope's nest level so that they are
 * rolled back with it. A setting that cannot be applied (role, inside a
 * security-restricted operation) is a WARNING, as at login.
 */
static void
apply_settings_of(Relation settings, Snapshot snapshot, Oid database, Oid role)
{
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tuple;

	ScanKeyInit(&keys[0], Anum_pg_db_role_setting_setdatabase, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(database));
	ScanKeyInit(&keys[1], Anum_pg_db_role_setting_setrole, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(role));
	scan = systable_beginscan(settings, DbRoleSettingDatidRolidIndexId, true, snapshot, 2, keys);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		config = heap_getattr(tuple, Anum_pg_db_role_setting_setconfig,
										  RelationGetDescr(settings), &isnull);
		Datum	   *items;
		int			count;
		int			i;

		if (isnull)
			continue;
		deconstruct_array(DatumGetArrayTypeP(config), TEXTOID, -1, false, TYPALIGN_INT,
						  &items, NULL, &count);
		for (i = 0; i < count; i++)
		{
			char	   *name;
			char	   *value;

			ParseLongOption(TextDatumGetCString(items[i]), &name, &value);
			if (value != NULL)
				(void) set_config_option(name, value, PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SET,
										 true, WARNING, false);
		}
	}
	systable_endscan(scan);
}

static void
apply_role_settings(Oid role)
{
	Relation	settings = table_open(DbRoleSettingRelationId, AccessShareLock);
	Snapshot	snapshot = RegisterSnapshot(GetCatalogSnapshot(DbRoleSettingRelationId));

	/* The more specific entry is applied last, so it wins. */
	apply_settings_of(settings, snapshot, InvalidOid, role);
	apply_settings_of(settings, snapshot, MyDatabaseId, role);
	UnregisterSnapshot(snapshot);
	table_close(settings, AccessShareLock);
}

void
enter_requester_scope(RequesterScope *scope, Oid requester)
{
	GetUserIdAndSecContext(&scope->worker_user, &scope->worker_security_context);
	SetSessionAuthorization(requester, superuser_arg(requester));
	SetUserIdAndSecContext(requester, scope->worker_security_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	scope->guc_nest_level = NewGUCNestLevel();
	apply_role_settings(requester);
	/* Dates reach the normalizers in one form, whatever the role prefers. */
	(void) set_config_option("datestyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/* A worker has no statement of its own to time: the read is the statement. */
	statement_timeout_armed = StatementTimeout > 0;
	if (statement_timeout_armed)
		enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
}

void
leave_requester_scope(RequesterScope *scope)
{
	if (statement_timeout_armed)
		disable_timeout(STATEMENT_TIMEOUT, false);
	statement_timeout_armed = false;
	AtEOXact_GUC(false, scope->guc_nest_level);
	SetUserIdAndSecContext(scope->worker_user, scope->worker_security_context);
	restore_worker_identity();
}

bool
requester_statement_timed_out(void)
{
	bool		timed_out = statement_timeout_armed &&
		GetCurrentTimestamp() >= get_timeout_finish_time(STATEMENT_TIMEOUT);

	if (statement_timeout_armed)
		disable_timeout(STATEMENT_TIMEOUT, false);
	statement_timeout_armed = false;
	return timed_out;
}
