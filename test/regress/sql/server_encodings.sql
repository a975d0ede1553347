-- In a database whose encoding is not UTF-8, values are converted to UTF-8
-- before hashing, so the digests are Meta's.
CREATE DATABASE connector_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c connector_latin1
SET client_encoding = 'UTF8';
CREATE EXTENSION connector;
SELECT fb_normalize('FN', 'VALÉRY') AS normalized,
       fb_hash('FN', 'Valéry') = '08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c'
           AS matches_meta;
\c contrib_regression
DROP DATABASE connector_latin1;
