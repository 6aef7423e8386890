#!/bin/sh
# Runs once, when the Postgres volume is first initialised (docker-entrypoint-initdb.d): creates the
# service login vm_tenant_app with its scram-sha-256 password from the Compose secret. The migrate
# service (owner login) then grants it what it needs. The password goes through a psql variable
# (:'password' quotes it), never through the command line or a log.
set -eu
password="$(cat /run/secrets/vm_tenant_app_db_password)"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v password="$password" <<'SQL'
set password_encryption = 'scram-sha-256';
select format('create role vm_tenant_app login password %L', :'password')
  where not exists (select from pg_roles where rolname = 'vm_tenant_app') \gexec
select format('alter role vm_tenant_app login password %L', :'password') \gexec
SQL
