-- connector 0.1.0: Meta-normalized identifier hashing in SQL.

\echo Use "CREATE EXTENSION connector" to load this file. \quit

-- Normalization and hashing do not depend on the database's locale, collation
-- or the clock of the call (apart from DOB years after the current one, which
-- are not birth years yet), so every function is IMMUTABLE and can be used in
-- indexes, generated columns and parallel query.

CREATE FUNCTION fb_normalize(key text, value text) RETURNS text
    AS 'MODULE_PATHNAME', 'fb_normalize'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION fb_normalize(text, text) IS
    'Normalizes an identifier as Meta requires before hashing; NULL when the value is not a valid '
    'one. Keys (any case): EMAIL, PHONE, GEN, DOB, DOBY, DOBM, DOBD, FN, LN, FI, CT, ST, ZIP, '
    'COUNTRY, MADID, EXTERN_ID.';

CREATE FUNCTION fb_hash(key text, value text) RETURNS text
    AS 'MODULE_PATHNAME', 'fb_hash'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION fb_hash(text, text) IS
    'Lowercase hex SHA-256 of fb_normalize(key, value), as a Custom Audience payload cell; MADID '
    'and EXTERN_ID are returned normalized but unhashed, as Meta wants them; NULL when the value '
    'is not valid.';

CREATE FUNCTION fb_normalize_phone(value text, default_country text) RETURNS text
    AS 'MODULE_PATHNAME', 'fb_normalize_phone'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION fb_normalize_phone(text, text) IS
    'Normalizes a phone number to digits with the country calling code; a national number gets '
    'the calling code of default_country (ISO code or English name) and loses its trunk prefix. '
    'An unknown default_country is ignored. NULL when the number is not possible.';

CREATE FUNCTION fb_hash_phone(value text, default_country text) RETURNS text
    AS 'MODULE_PATHNAME', 'fb_hash_phone'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION fb_hash_phone(text, text) IS
    'Lowercase hex SHA-256 of fb_normalize_phone(value, default_country); NULL when the number is '
    'not possible.';

CREATE FUNCTION fb_hash_email(value text) RETURNS text
    AS 'MODULE_PATHNAME', 'fb_hash_email'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION fb_hash_email(text) IS
    'Lowercase hex SHA-256 of the normalized e-mail address; the same as fb_hash(''EMAIL'', value).';
