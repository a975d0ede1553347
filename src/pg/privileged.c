/*
 * The caller's identity is checked first, as itself; only then does the code
 * switch to the extension owner to touch connector.* tables. search_path is
 * pinned to pg_catalog so that no object of the caller's can be resolved while
 * running as the owner (the same protection SECURITY DEFINER ... SET
 * search_path gives a SQL function).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/rel.h"

#include "privileged.h"

Oid
extension_owner(void)
{
	Oid			extension_oid = get_extension_oid("connector", false);
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			owner;

	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extension_oid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "extension \"connector\" has no catalog entry");
	owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return owner;
}

void
enter_privileged_scope(PrivilegedScope *scope)
{
	Oid			owner = extension_owner();

	GetUserIdAndSecContext(&scope->caller, &scope->caller_security_context);
	SetUserIdAndSecContext(owner, scope->caller_security_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	scope->guc_nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
leave_privileged_scope(PrivilegedScope *scope)
{
	AtEOXact_GUC(true, scope->guc_nest_level);
	SetUserIdAndSecContext(scope->caller, scope->caller_security_context);
}

Oid
connector_role(const char *name)
{
	return get_role_oid(name, true);
}

bool
is_destination_admin(Oid role)
{
	Oid			admin = connector_role("connector_admin");

	return superuser_arg(role) || (OidIsValid(admin) && has_privs_of_role(role, admin));
}

void
require_destination_admin(const char *action)
{
	if (is_destination_admin(GetUserId()))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s", action),
			 errhint("Destinations are managed by members of connector_admin: GRANT connector_admin TO %s;",
					 quote_identifier(GetUserNameFromId(GetUserId(), false)))));
}
