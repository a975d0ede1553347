-- The benchmarks' synthetic customers (psql variable rows), with every key a
-- segment of 5 or 8 keys maps by name.
CREATE TABLE customers AS
SELECT i AS id,
       format('customer.%s@example-mail.com', i) AS email,
       format('+1 %s 555 %s', 200 + i % 700, lpad((i % 10000)::text, 4, '0')) AS phone,
       (ARRAY['Mary', 'Jörg', 'Valéry', 'Nathan', 'Ann'])[i % 5 + 1] AS first_name,
       (ARRAY['Smith', 'Müller', 'Dupont', 'Brien', 'Lee'])[i % 5 + 1] AS last_name,
       (ARRAY['Menlo Park', 'Berlin', 'Paris', 'London', 'Seoul'])[i % 5 + 1] AS city,
       (ARRAY['California', 'Berlin', 'Ile-de-France', 'England', 'Seoul'])[i % 5 + 1] AS state,
       lpad((i % 99999)::text, 5, '0') AS zip,
       (ARRAY['US', 'DE', 'FR', 'GB', 'KR'])[i % 5 + 1] AS country
FROM generate_series(1, :rows) AS i;
VACUUM ANALYZE customers;
