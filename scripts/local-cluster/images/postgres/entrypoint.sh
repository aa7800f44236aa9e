#!/bin/sh
# Initialises PGDATA on first start (a superuser POSTGRES_USER with POSTGRES_PASSWORD, a database
# POSTGRES_DB, password logins from anywhere) and then runs postgres with the container's arguments.
# This PostgreSQL stands in for TimescaleDB, so `timescaledb` is taken out of shared_preload_libraries
# (the chart preloads it), saying so; everything else is passed on unchanged. Settings of the
# timescaledb.* prefix stay: PostgreSQL accepts them as placeholders.
set -eu
if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
if [ "$1" != postgres ]; then exec "$@"; fi
shift
for arg; do
  shift
  case "$arg" in
    shared_preload_libraries=*timescaledb*)
      kept=$(printf '%s\n' "${arg#*=}" | tr ',' '\n' | sed 's/^ *//; s/ *$//' | grep -vx timescaledb | paste -sd, -)
      echo "postgres: PostgreSQL $(postgres --version | sed 's/.* //') stands in for TimescaleDB: not preloading timescaledb (shared_preload_libraries=$kept)"
      arg="shared_preload_libraries=$kept"
      ;;
  esac
  set -- "$@" "$arg"
done
: "${PGDATA:=/var/lib/postgresql/data}"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
mkdir -p "$PGDATA"
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres: POSTGRES_PASSWORD is empty: set it (the database accepts password logins only)" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --pgdata="$PGDATA" --username="$user" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE \"$db\";" | postgres --single -j -D "$PGDATA" postgres >/dev/null
  fi
  echo "postgres: initialised $PGDATA (user $user, database $db)"
fi
exec postgres -c listen_addresses='*' "$@"
