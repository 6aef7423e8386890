#!/bin/sh
# One-shot, in temporalio/admin-tools: creates Temporal's two databases on Postgres and brings
# their schemas to the version this server image needs, with Temporal's own temporal-sql-tool
# (what temporalio/auto-setup does, without running a server in the same container).
# Idempotent: an existing database is kept, and update-schema only applies missing versions.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${POSTGRES_PWD:?}"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12
export SQL_PASSWORD="$POSTGRES_PWD"
# Postgres may still be coming up (its healthcheck passes only once it listens on TCP, but it can
# restart): each database's setup is retried for up to 2 minutes rather than failing this one-shot service,
# after which nothing that depends on it would start.
retry() {
  n=0
  until "$@"; do
    n=$((n + 1))
    [ "$n" -lt 60 ] || { echo "giving up after 60 attempts: $*" >&2; return 1; }
    sleep 2
  done
}
tool() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" -u "$POSTGRES_USER" "$@"; }
# create-database fails when the database exists (kept); setup-schema -v 0.0 and update-schema are idempotent.
setup_database() {
  tool --db "$1" create-database || true
  tool --db "$1" setup-schema -v 0.0 && tool --db "$1" update-schema -d "$SCHEMA_DIR/$2/versioned"
}
for pair in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
  retry setup_database "${pair%%:*}" "${pair#*:}"
done
echo "temporal schema ready"
