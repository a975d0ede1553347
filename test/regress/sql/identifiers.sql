-- The SQL surface of normalization and hashing: Meta's examples, every key,
-- NULL handling, and the markings the functions carry.
CREATE EXTENSION connector;

-- Meta's published examples (docs/graph-api.md section 8).
SELECT key, input, fb_normalize(key, input) AS normalized, fb_hash(key, input) AS hashed
FROM (VALUES ('EMAIL', 'mary@example.com'),
             ('EMAIL', 'John_Smith@gmail.com'),
             ('PHONE', '15559876543'),
             ('PHONE', '+1 (650) 555-1212'),
             ('FN', 'Mary'),
             ('FN', '정'),
             ('FN', 'Valéry'),
             ('DOB', '2/16/1997'),
             ('COUNTRY', 'United States'),
             ('CT', 'New York'),
             ('ST', 'Arizona'),
             ('ZIP', '94035-1234'),
             ('ZIP', 'M1 1AE'),
             ('GEN', 'Female')) AS examples(key, input);

-- Every key, with a value it accepts and one it does not.
SELECT key, good, fb_normalize(key, good) AS normalized, fb_hash(key, good) IS NOT NULL AS hashed,
       bad, fb_normalize(key, bad) IS NULL AS bad_is_null, fb_hash(key, bad) IS NULL AS bad_hash_is_null
FROM (VALUES ('EMAIL', ' Mary.Smith+ads@Example.COM ', 'mary.example.com'),
             ('PHONE', '+44 (20) 7946-0958', '+0000000000'),
             ('GEN', 'Woman', 'unknown'),
             ('DOB', '16.02.1997', '1997-02-30'),
             ('DOBY', '1997', '1899'),
             ('DOBM', '2', '13'),
             ('DOBD', '16', '32'),
             ('FN', 'Na''than-Boile', '!!!'),
             ('LN', 'O''Brien Smith', ' '),
             ('FI', 'Élodie', '.'),
             ('CT', 'São Paulo', '75018'),
             ('ST', 'British Columbia', '--'),
             ('ZIP', '94035-1234', '9'),
             ('COUNTRY', 'USA', 'Atlantis'),
             ('MADID', 'AB12CD-E345', ''),
             ('EXTERN_ID', 'crm-000123', '   ')) AS keys(key, good, bad);

-- MADID and EXTERN_ID are sent unhashed; every other key is 64 lowercase hex.
SELECT fb_hash('madid', ' AB12CD-E345 ') AS madid, fb_hash('Extern_Id', 'CRM-7') AS extern_id,
       fb_hash('email', 'mary@example.com') ~ '^[0-9a-f]{64}$' AS email_is_hex;
-- Unhashed identifiers longer than 256 characters are not identifiers (Meta would refuse the batch).
SELECT length(fb_normalize('EXTERN_ID', repeat('é', 256))) AS extern_id_256,
       fb_normalize('EXTERN_ID', repeat('é', 257)) IS NULL AS extern_id_257_is_null,
       fb_normalize('MADID', repeat('a', 257)) IS NULL AS madid_257_is_null;

-- Keys are case-insensitive.
SELECT count(DISTINCT fb_hash(key, 'Mary')) AS distinct_hashes
FROM unnest(ARRAY['FN', 'fn', 'Fn', 'fN']) AS key;

-- A NULL value gives NULL; an invalid value gives NULL, never the SHA-256 of
-- the empty string.
SELECT fb_hash(NULL, 'mary@example.com') IS NULL AS null_key,
       fb_hash('EMAIL', NULL) IS NULL AS null_value,
       fb_hash('EMAIL', '') IS NULL AS empty_value,
       fb_hash_phone(NULL, 'GB') IS NULL AS null_phone;
-- A NULL default country is no default country: what an export sends for a
-- row whose COUNTRY is NULL, which is fb_normalize('PHONE', value).
SELECT value, fb_normalize_phone(value, NULL) AS null_country,
       fb_normalize_phone(value, '') AS empty_country,
       fb_normalize('PHONE', value) AS phone_key,
       fb_hash_phone(value, NULL) IS NOT DISTINCT FROM fb_hash('PHONE', value) AS same_hash
FROM (VALUES ('+1 650 555 1212'), ('16505551212'), ('020 7946 0958'), ('n/a')) AS phones(value);
SELECT count(*) AS empty_string_hashes
FROM unnest(ARRAY['EMAIL', 'PHONE', 'GEN', 'DOB', 'DOBY', 'DOBM', 'DOBD', 'FN', 'LN', 'FI', 'CT',
                  'ST', 'ZIP', 'COUNTRY', 'MADID', 'EXTERN_ID']) AS key,
     unnest(ARRAY['', ' ', '-', '.', '0', '@', '😀']) AS value
WHERE fb_hash(key, value) = encode(sha256(''), 'hex');

-- Phone numbers with a default country.
SELECT value, country, fb_normalize_phone(value, country) AS normalized
FROM (VALUES ('020 7946 0958', 'GB'),
             ('020 7946 0958', 'United Kingdom'),
             ('(650)555-1212', 'US'),
             ('06 12 34 56 78', 'fr'),
             ('+44 20 7946 0958', 'US'),
             ('+44 (0)7700 900123', 'GB'),
             ('+49 (0)30 1234567', NULL),
             ('(650) 555-1212 ext 12', 'US'),
             ('+1 650 555 1212 x5', NULL),
             ('+1 650 555 1212', 'Atlantis'),
             ('604 123 456', 'Atlantis'),
             ('604 123 456', 'ES'),
             ('442079460958', 'US'),
             ('123', 'Germany'),
             ('12', 'US')) AS phones(value, country);
-- Dates of birth in a given order: 04/01/1950 is 1 April month first (as
-- fb_normalize('DOB', ...)) and 4 January day first; where only one number
-- can be the month, both orders read it so.
SELECT value, fb_normalize('DOB', value) AS dob, fb_normalize_dob(value, 'MDY') AS mdy,
       fb_normalize_dob(value, 'DMY') AS dmy
FROM (VALUES ('04/01/1950'), ('4-1-1950'), ('16/02/1997'), ('2/16/1997'), ('16.02.1997'),
             ('1997-02-16'), ('13/13/1997')) AS dates(value);

-- Countries written in their own language and script (CLDR's names, as ICU
-- has them), for COUNTRY and for a phone's default country.
SELECT name, fb_normalize('COUNTRY', name) AS country,
       fb_normalize_phone('030 1234567', name) AS berlin_number
FROM (VALUES ('Deutschland'), ('España'), ('Brasil'), ('Nederland'), ('Österreich'),
             ('Schweiz'), ('Italia'), ('日本'), ('Россия'), ('ÖSTERREICH'), ('Kongo')) AS c(name);

SELECT fb_hash_phone('(650)555-1212', 'US') = fb_hash('PHONE', '+1 (650) 555-1212') AS same_hash,
       fb_hash_email(' Mary@Example.com ') = fb_hash('EMAIL', 'mary@example.com') AS email_same;

-- Lowercasing does not depend on the collation: lower() under "C" leaves É alone.
SELECT lower('VALÉRY' COLLATE "C") AS builtin_lower_c,
       fb_normalize('FN', 'VALÉRY' COLLATE "C") AS fn_c,
       fb_normalize('FN', 'VALÉRY' COLLATE "default") AS fn_default;

-- Decomposed input hashes like its NFC form (Meta's Valéry digest).
SELECT fb_hash('FN', U&'Vale\0301ry') = '08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c'
       AS nfd_matches_meta;

-- Every hashing function is IMMUTABLE, PARALLEL SAFE and documented; STRICT but
-- for the phone functions, whose default country may be NULL.
SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS arguments,
       p.provolatile, p.proisstrict, p.proparallel,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS has_comment
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'connector'
WHERE p.proname ~ '^fb_(hash|normalize)'
ORDER BY 1, 2;

-- Usable in an expression index, which requires IMMUTABLE.
CREATE TABLE people (email text);
CREATE INDEX people_email_hash ON people (fb_hash('EMAIL', email));
INSERT INTO people VALUES ('Mary@Example.com'), ('not an address');
SET enable_seqscan = off;
SELECT count(*) FROM people
WHERE fb_hash('EMAIL', email) = 'f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79';
RESET enable_seqscan;
DROP TABLE people;
