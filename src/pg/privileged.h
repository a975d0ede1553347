/*
 * Reading and writing connector's internal tables on behalf of a caller who
 * has no privilege on them: as the extension's owner, with search_path pinned.
 */
#ifndef CONNECTOR_PRIVILEGED_H
#define CONNECTOR_PRIVILEGED_H

typedef struct PrivilegedScope
{
	Oid			caller;
	int			caller_security_context;
	int			guc_nest_level;
} PrivilegedScope;

/* Switches to the extension owner; every SPI query inside is fully qualified. */
extern void enter_privileged_scope(PrivilegedScope *scope);
extern void leave_privileged_scope(PrivilegedScope *scope);

/* The extension's owner: the role internal tables belong to. */
extern Oid	extension_owner(void);

/* The role connector_admin or connector_exporter, or InvalidOid if it is missing. */
extern Oid	connector_role(const char *name);

/* Superuser, or has the privileges of connector_admin. */
extern bool is_destination_admin(Oid role);

/* Raises an error unless the current user may manage destinations. */
extern void require_destination_admin(const char *action);

#endif							/* CONNECTOR_PRIVILEGED_H */
