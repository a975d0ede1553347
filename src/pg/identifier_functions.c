/*
 * SQL functions that normalize and hash identifiers: fb_normalize, fb_hash and
 * their PHONE and EMAIL variants. All are IMMUTABLE STRICT PARALLEL SAFE: the
 * core's rules depend on neither the database's locale nor its collation.
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "module.h"
#include "utils/builtins.h"

#include "connector_shim.h"
#include "core_errors.h"

CONNECTOR_SQL_FUNCTION(fb_normalize);
CONNECTOR_SQL_FUNCTION(fb_hash);
CONNECTOR_SQL_FUNCTION(fb_normalize_phone);
CONNECTOR_SQL_FUNCTION(fb_hash_phone);
CONNECTOR_SQL_FUNCTION(fb_hash_email);
CONNECTOR_SQL_FUNCTION(fb_normalize_dob);

/* The key of the previous call, kept in fn_extra: the key is nearly always constant. */
typedef struct KeyCache
{
	int			key_id;
	int			name_len;
	char		name[32];
} KeyCache;

typedef ConnectorResult (*KeyedCall) (int key_id, const char *value, size_t value_len,
									  const char **out, size_t *out_len,
									  ConnectorStatus *status);
typedef ConnectorResult (*PhoneCall) (const char *value, size_t value_len,
									  const char *country, size_t country_len,
									  const char **out, size_t *out_len,
									  ConnectorStatus *status);

static int
key_id_of(FunctionCallInfo fcinfo, text *key)
{
	KeyCache   *cache = (KeyCache *) fcinfo->flinfo->fn_extra;
	const char *name = VARDATA_ANY(key);
	int			name_len = VARSIZE_ANY_EXHDR(key);
	ConnectorStatus status;
	int			key_id;

	if (cache != NULL && cache->name_len == name_len &&
		memcmp(cache->name, name, name_len) == 0)
		return cache->key_id;

	if (connector_find_key(name, name_len, &key_id, &status) == CONNECTOR_ERROR)
		raise_core_error(&status);

	/* Valid key names are short, so every one fits the cache. */
	if (cache == NULL)
		cache = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(KeyCache));
	cache->key_id = key_id;
	cache->name_len = name_len;
	memcpy(cache->name, name, Min(name_len, (int) sizeof(cache->name)));
	fcinfo->flinfo->fn_extra = cache;
	return key_id;
}

/* The core works on UTF-8; other server encodings are converted both ways. */
static bool
server_is_utf8(void)
{
	int			encoding = GetDatabaseEncoding();

	return encoding == PG_UTF8 || encoding == PG_SQL_ASCII;
}

static const char *
utf8_of(text *value, size_t *len)
{
	const char *data = VARDATA_ANY(value);
	int			data_len = VARSIZE_ANY_EXHDR(value);
	char	   *converted;

	if (server_is_utf8())
	{
		*len = data_len;
		return data;
	}
	converted = pg_server_to_any(data, data_len, PG_UTF8);
	*len = strlen(converted);
	return converted;
}

/*
 * The result as text. Hashes are ASCII; a normalized value goes back to the
 * server encoding.
 */
static Datum
result_text(const char *out, size_t out_len, bool may_be_non_ascii)
{
	if (may_be_non_ascii && !server_is_utf8())
	{
		char	   *copy = pnstrdup(out, out_len);

		return PointerGetDatum(cstring_to_text(pg_any_to_server(copy, out_len, PG_UTF8)));
	}
	return PointerGetDatum(cstring_to_text_with_len(out, out_len));
}

/* Returns the call's value as text, or NULL, or raises the error it reported. */
static Datum
finish_call(FunctionCallInfo fcinfo, ConnectorResult result, const char *out, size_t out_len,
			const ConnectorStatus *status, bool may_be_non_ascii)
{
	if (result == CONNECTOR_ERROR)
		raise_core_error(status);
	if (result == CONNECTOR_NO_VALUE)
		PG_RETURN_NULL();
	return result_text(out, out_len, may_be_non_ascii);
}

static Datum
call_keyed(FunctionCallInfo fcinfo, KeyedCall call, int key_id, int value_arg)
{
	size_t		value_len;
	const char *value = utf8_of(PG_GETARG_TEXT_PP(value_arg), &value_len);
	const char *out = NULL;
	size_t		out_len = 0;
	ConnectorStatus status;
	ConnectorResult result = call(key_id, value, value_len, &out, &out_len, &status);

	/* EXTERN_ID and MADID come back as text, not as a hash. */
	return finish_call(fcinfo, result, out, out_len, &status, true);
}

/*
 * Not STRICT: a NULL default country is no default country, as in an export
 * of a row whose COUNTRY is NULL; a NULL value is NULL.
 */
static Datum
call_phone(FunctionCallInfo fcinfo, PhoneCall call)
{
	size_t		value_len;
	const char *value;
	size_t		country_len = 0;
	const char *country = "";
	const char *out = NULL;
	size_t		out_len = 0;
	ConnectorStatus status;
	ConnectorResult result;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	value = utf8_of(PG_GETARG_TEXT_PP(0), &value_len);
	if (!PG_ARGISNULL(1))
		country = utf8_of(PG_GETARG_TEXT_PP(1), &country_len);
	result = call(value, value_len, country, country_len, &out, &out_len, &status);
	return finish_call(fcinfo, result, out, out_len, &status, false);
}

Datum
fb_normalize(PG_FUNCTION_ARGS)
{
	return call_keyed(fcinfo, connector_normalize, key_id_of(fcinfo, PG_GETARG_TEXT_PP(0)), 1);
}

Datum
fb_hash(PG_FUNCTION_ARGS)
{
	return call_keyed(fcinfo, connector_hash, key_id_of(fcinfo, PG_GETARG_TEXT_PP(0)), 1);
}

Datum
fb_normalize_phone(PG_FUNCTION_ARGS)
{
	return call_phone(fcinfo, connector_normalize_phone);
}

Datum
fb_hash_phone(PG_FUNCTION_ARGS)
{
	return call_phone(fcinfo, connector_hash_phone);
}

/*
 * fb_hash_email(value): fb_hash('EMAIL', value) without the key argument.
 */
Datum
fb_hash_email(PG_FUNCTION_ARGS)
{
	static int	email_key_id = -1;
	ConnectorStatus status;

	if (email_key_id < 0 &&
		connector_find_key("EMAIL", 5, &email_key_id, &status) == CONNECTOR_ERROR)
		raise_core_error(&status);
	return call_keyed(fcinfo, connector_hash, email_key_id, 0);
}

/*
 * fb_normalize_dob(value, date_order): DOB with the order given, never the
 * session's connector.date_order: the function is IMMUTABLE.
 */
Datum
fb_normalize_dob(PG_FUNCTION_ARGS)
{
	size_t		value_len;
	const char *value = utf8_of(PG_GETARG_TEXT_PP(0), &value_len);
	size_t		order_len;
	const char *order = utf8_of(PG_GETARG_TEXT_PP(1), &order_len);
	const char *out = NULL;
	size_t		out_len = 0;
	ConnectorStatus status;
	ConnectorResult result = connector_normalize_dob(value, value_len, order, order_len,
													 &out, &out_len, &status);

	return finish_call(fcinfo, result, out, out_len, &status, false);
}
