#!/bin/sh
# One-shot, in temporalio/admin-tools: waits until the server is healthy (up to 5 minutes), then
# creates the namespace vm-tenant runs in and the TenantId search attribute its workflows set.
# Idempotent (an existing one is kept). Everything that needs Temporal starts after this succeeds.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}"
tries=0
until temporal operator cluster health >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 150 ] || { echo "temporal at $TEMPORAL_ADDRESS not healthy after 5 minutes" >&2; exit 1; }
  sleep 2
done
temporal operator namespace describe --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1 ||
  temporal operator namespace create --namespace "$TEMPORAL_NAMESPACE" --retention "${TEMPORAL_NAMESPACE_RETENTION:-30d}"
temporal operator search-attribute create --namespace "$TEMPORAL_NAMESPACE" --name TenantId --type Keyword ||
  temporal operator search-attribute list --namespace "$TEMPORAL_NAMESPACE" | grep -qw TenantId
echo "namespace $TEMPORAL_NAMESPACE ready"
