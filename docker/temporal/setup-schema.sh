#!/bin/sh
# One-shot, in temporalio/admin-tools: creates Temporal's two databases on Postgres and brings
# their schemas to the version this server image needs, with Temporal's own temporal-sql-tool
# (what temporalio/auto-setup does, without running a server in the same container).
# Idempotent: an existing database is kept, and update-schema only applies missing versions.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${POSTGRES_PWD:?}"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12
export SQL_PASSWORD="$POSTGRES_PWD"
for pair in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
  db="${pair%%:*}"
  schema="${pair#*:}"
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" -u "$POSTGRES_USER" --db "$db" create-database || true
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" -u "$POSTGRES_USER" --db "$db" setup-schema -v 0.0
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" -u "$POSTGRES_USER" --db "$db" update-schema -d "$SCHEMA_DIR/$schema/versioned"
done
echo "temporal schema ready"
