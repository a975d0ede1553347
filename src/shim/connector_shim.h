/*
 * The boundary between PostgreSQL's C and the C++ core. Every function here is
 * noexcept: a C++ exception never crosses into C. A function that fails fills
 * a ConnectorStatus and returns; the C caller raises the PostgreSQL error after
 * the call has returned, when no C++ frame is live any more.
 */
#ifndef CONNECTOR_SHIM_H
#define CONNECTOR_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define CONNECTOR_NOEXCEPT noexcept
extern "C" {
#else
#define CONNECTOR_NOEXCEPT
#endif

typedef struct ConnectorStatus
{
	int			code;			/* 0 when the call succeeded */
	char		sqlstate[6];	/* five characters and a terminator */
	char		message[512];
	char		detail[512];	/* empty when there is none */
	char		hint[512];		/* empty when there is none */
} ConnectorStatus;

/* What a normalizing call found: a value, no valid value (SQL NULL), or an error. */
typedef enum ConnectorResult
{
	CONNECTOR_VALUE = 0,
	CONNECTOR_NO_VALUE = 1,
	CONNECTOR_ERROR = 2
} ConnectorResult;

/* Finds an identifier key by name, in any letter case; *key_id is opaque to C. */
ConnectorResult connector_find_key(const char *name, size_t name_len,
								   int *key_id, ConnectorStatus *status) CONNECTOR_NOEXCEPT;

/*
 * Normalize or hash one value. On CONNECTOR_VALUE, *out points to the result,
 * valid until the next call in this process; it is not NUL-terminated.
 */
ConnectorResult connector_normalize(int key_id, const char *value, size_t value_len,
									const char **out, size_t *out_len,
									ConnectorStatus *status) CONNECTOR_NOEXCEPT;
ConnectorResult connector_hash(int key_id, const char *value, size_t value_len,
							   const char **out, size_t *out_len,
							   ConnectorStatus *status) CONNECTOR_NOEXCEPT;
ConnectorResult connector_normalize_phone(const char *value, size_t value_len,
										  const char *country, size_t country_len,
										  const char **out, size_t *out_len,
										  ConnectorStatus *status) CONNECTOR_NOEXCEPT;
ConnectorResult connector_hash_phone(const char *value, size_t value_len,
									 const char *country, size_t country_len,
									 const char **out, size_t *out_len,
									 ConnectorStatus *status) CONNECTOR_NOEXCEPT;

/*
 * Secrets at rest (AES-256-GCM). The key lives in key_path; sealing creates
 * the file (mode 0600) when it does not exist yet, opening never does.
 * `context` binds a sealed value to where it is stored. The opened plaintext
 * stays in the shim until connector_forget_secret() wipes it.
 */
ConnectorResult connector_seal_secret(const char *key_path, const char *plaintext,
									  size_t plaintext_len, const char *context,
									  const char **out, size_t *out_len,
									  ConnectorStatus *status) CONNECTOR_NOEXCEPT;
ConnectorResult connector_open_secret(const char *key_path, const char *sealed,
									  size_t sealed_len, const char *context,
									  const char *description, const char **out,
									  size_t *out_len, ConnectorStatus *status) CONNECTOR_NOEXCEPT;
void		connector_forget_secret(void) CONNECTOR_NOEXCEPT;

/* Everything a Graph API call needs; the strings belong to the caller. */
typedef struct ConnectorGraphConfig
{
	const char *base_url;
	const char *api_version;
	const char *ca_file;		/* "" for the system's trusted CAs */
	long		connect_timeout_ms;
	long		request_timeout_ms;
	const char *access_token;
	const char *app_secret;		/* "" when none is set */
	bool		(*should_abort) (void);	/* polled during transfers */
} ConnectorGraphConfig;

/* The token works, has ads_management, the account is active and its terms accepted. */
ConnectorResult connector_verify_account(const ConnectorGraphConfig *config,
										 const char *destination, const char *ad_account_id,
										 ConnectorStatus *status) CONNECTOR_NOEXCEPT;

typedef struct ConnectorAudience
{
	const char *id;
	const char *name;
	const char *subtype;
	const char *description;
	int64_t		approximate_count_lower_bound;	/* -1 when unknown */
	int64_t		approximate_count_upper_bound;
	int			operation_status_code;
	const char *operation_status;
	int			delivery_status_code;
	const char *delivery_status;
} ConnectorAudience;

typedef struct ConnectorAudienceList ConnectorAudienceList;

/* NULL on error. The strings of each audience live as long as the list. */
ConnectorAudienceList *connector_list_audiences(const ConnectorGraphConfig *config,
												const char *destination,
												const char *ad_account_id,
												ConnectorStatus *status) CONNECTOR_NOEXCEPT;
size_t		connector_audience_count(const ConnectorAudienceList *list) CONNECTOR_NOEXCEPT;
ConnectorAudience connector_audience_at(const ConnectorAudienceList *list,
										size_t index) CONNECTOR_NOEXCEPT;
void		connector_free_audience_list(ConnectorAudienceList *list) CONNECTOR_NOEXCEPT;

ConnectorResult connector_create_audience(const ConnectorGraphConfig *config,
										  const char *destination, const char *ad_account_id,
										  const char *name, const char *description,
										  const char **audience_id, size_t *audience_id_len,
										  ConnectorStatus *status) CONNECTOR_NOEXCEPT;
ConnectorResult connector_delete_audience(const ConnectorGraphConfig *config,
										  const char *destination, const char *audience_id,
										  ConnectorStatus *status) CONNECTOR_NOEXCEPT;

/* Test hook: 0 none, 1 the core throws std::bad_alloc, 2 it throws std::logic_error. */
void		connector_inject_fault(int fault) CONNECTOR_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif							/* CONNECTOR_SHIM_H */
