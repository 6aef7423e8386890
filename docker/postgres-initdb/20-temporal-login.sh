#!/bin/sh
# Production profile only (docker-compose.production.yml): creates the login `temporal`, which the
# Temporal server and its schema tool use for the databases `temporal` and `temporal_visibility`.
# It may create databases (the schema tool creates both) and nothing else. Skipped when the secret
# is not mounted, as in the development file, whose Temporal dev server keeps its own SQLite file.
set -eu
secret=/run/secrets/temporal_db_password
[ -f "$secret" ] || exit 0
password="$(cat "$secret")"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v password="$password" <<'SQL'
set password_encryption = 'scram-sha-256';
select format('create role temporal login createdb password %L', :'password')
  where not exists (select from pg_roles where rolname = 'temporal') \gexec
select format('alter role temporal login createdb password %L', :'password') \gexec
SQL
