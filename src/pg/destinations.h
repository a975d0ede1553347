/*
 * Destinations as the rest of the extension uses them: loaded, with their
 * secrets decrypted only for the call that needs them.
 */
#ifndef CONNECTOR_DESTINATIONS_H
#define CONNECTOR_DESTINATIONS_H

#include "connector_shim.h"

typedef struct Destination
{
	int64		id;
	char	   *name;
	char	   *ad_account_id;	/* digits, without act_ */
	bytea	   *sealed_access_token;
	bytea	   *sealed_app_secret;	/* NULL when none is set */
	char	   *status;
	bool		unhashed_keys_allowed;	/* EXTERN_ID and MADID may be sent */
} Destination;

/*
 * Loads a destination the current user may use (an admin any, an exporter
 * those granted to it), or raises an error naming the fix.
 */
extern Destination *load_usable_destination(const char *name);

/* Decrypted credentials, to be wiped with forget_credentials when done. */
typedef struct DestinationCredentials
{
	char	   *access_token;
	char	   *app_secret;		/* NULL when none is set */
} DestinationCredentials;

extern DestinationCredentials open_credentials(const Destination *destination);

/*
 * What a sealed secret is bound to ("destination/42/access_token"): sealing
 * and opening must always agree, so both use this.
 */
extern char *secret_context(int64 destination_id, const char *field);

/* One secret each; open_app_secret is NULL when none is set. */
extern char *open_access_token(const Destination *destination);
extern char *open_app_secret(const Destination *destination);
extern void forget_credentials(DestinationCredentials *credentials);

/* Settings of a Graph API call with these credentials. */
extern ConnectorGraphConfig graph_config(const DestinationCredentials *credentials);

/* After a Graph API call failed: reacts to a pending cancel, then raises. */
extern void raise_graph_error(const ConnectorStatus *status) pg_attribute_noreturn();

#endif							/* CONNECTOR_DESTINATIONS_H */
