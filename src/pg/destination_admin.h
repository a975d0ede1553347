/*
 * What the functions that manage destinations share (destination_functions.c,
 * destination_secrets.c, destination_verify.c).
 */
#ifndef CONNECTOR_DESTINATION_ADMIN_H
#define CONNECTOR_DESTINATION_ADMIN_H

#include "fmgr.h"

/*
 * Runs body(fcinfo); any error it raises is re-raised without statement and
 * context: these calls may carry a token as a literal, which the server log
 * would otherwise print next to the error.
 */
extern Datum without_statement_in_errors(PGFunction body, FunctionCallInfo fcinfo);

/* The secret from the argument or the file (never both), checked; NULL when neither is given. */
extern char *secret_from(const char *literal, const char *path, const char *what, const char *destination);

/* Seals a secret of a destination, in the privileged scope with SPI connected. */
extern bytea *seal(const char *plaintext, int64 destination_id, const char *field);

/* Checks the credentials against the Graph API; raises what it finds. */
extern void verify_credentials(const char *destination, const char *ad_account_id,
							   const char *access_token, const char *app_secret);

#endif							/* CONNECTOR_DESTINATION_ADMIN_H */
