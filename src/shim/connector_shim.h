/*
 * The boundary between PostgreSQL's C and the C++ core. Every function here is
 * noexcept: a C++ exception never crosses into C. A function that fails fills
 * a ConnectorStatus and returns; the C caller raises the PostgreSQL error after
 * the call has returned, when no C++ frame is live any more.
 */
#ifndef CONNECTOR_SHIM_H
#define CONNECTOR_SHIM_H

#include <stddef.h>

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

/* Test hook: 0 none, 1 the core throws std::bad_alloc, 2 it throws std::logic_error. */
void		connector_inject_fault(int fault) CONNECTOR_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif							/* CONNECTOR_SHIM_H */
