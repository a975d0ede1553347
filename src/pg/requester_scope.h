/*
 * Reading a segment as the role that asked for the export: its session
 * identity and settings, in a security-restricted operation whose every
 * setting change is rolled back at the end.
 */
#ifndef CONNECTOR_REQUESTER_SCOPE_H
#define CONNECTOR_REQUESTER_SCOPE_H

typedef struct RequesterScope
{
	Oid			worker_user;
	int			worker_security_context;
	int			guc_nest_level;
} RequesterScope;

/* Called once by an export worker after it connected. */
extern void remember_worker_identity(void);

/* Inside a transaction, with no security restriction in force. */
extern void enter_requester_scope(RequesterScope *scope, Oid requester);
extern void leave_requester_scope(RequesterScope *scope);

/*
 * After an error, once the transaction is aborted: the worker's own session
 * identity again (an abort restores the current user, not the session user).
 */
extern void restore_worker_identity(void);

/*
 * After an error raised inside a scope: whether it was the requester's
 * statement_timeout that stopped the read. Disarms the timeout.
 */
extern bool requester_statement_timed_out(void);

#endif							/* CONNECTOR_REQUESTER_SCOPE_H */
