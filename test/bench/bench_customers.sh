# Sourced by the benchmarks: the synthetic customers of a throwaway cluster.
#   bench_customers ROWS KEYS   table customers (every key a segment maps by
#                               name) and view segment of its 8 or 5 key columns
#                               (8: EMAIL, PHONE, FN, LN, CT, ST, ZIP, COUNTRY;
#                               5: EMAIL, PHONE, FN, LN, ZIP)
bench_customers() {
  local rows=$1 keys=$2 columns
  case $keys in
    8) columns="email, phone, first_name, last_name, city, state, zip, country" ;;
    5) columns="email, phone, first_name, last_name, zip" ;;
    *) echo "KEYS is 8 or 5" >&2; return 2 ;;
  esac
  psql -q -v ON_ERROR_STOP=1 <<SQL
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
FROM generate_series(1, $rows) AS i;
VACUUM ANALYZE customers;
CREATE VIEW segment AS SELECT $columns FROM customers;
SQL
}
