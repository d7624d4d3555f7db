#!/usr/bin/env bash
# Start this machine's PostgreSQL for the test suite (installing it when missing) and
# print a SQLAlchemy URL for a superuser role the tests may use to create databases.
set -euo pipefail

log() { echo "postgres-for-tests: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  log "installing PostgreSQL from the system packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi

version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version main"; then
  as_root pg_createcluster "$version" main >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
  as_root pg_ctlcluster "$version" main start >&2
fi

for _ in $(seq 1 50); do
  as_root runuser -u postgres -- psql -p "$port" -qAtc "select 1" >/dev/null 2>&1 && break
  sleep 0.2
done
as_root runuser -u postgres -- psql -p "$port" -qAt >/dev/null <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'inboxlog_test') THEN
    CREATE ROLE inboxlog_test LOGIN SUPERUSER PASSWORD 'inboxlog_test';
  END IF;
END $$;
SQL
echo "postgresql+asyncpg://inboxlog_test:inboxlog_test@127.0.0.1:${port}/postgres"
