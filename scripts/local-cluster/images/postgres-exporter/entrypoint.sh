#!/bin/sh
# Debian's postgres_exporter (0.11) in place of the chart's (0.17): a `--[no-]collector.NAME` flag
# for a collector this version does not have is dropped, saying so, instead of failing the start
# (kingpin refuses unknown flags); every other argument is passed on unchanged.
set -eu
exporter=/usr/bin/prometheus-postgres-exporter
known=$("$exporter" --help 2>&1 || true)
for arg; do
  shift
  case "$arg" in
    --collector.*|--no-collector.*)
      name=${arg#--}; name=${name#no-}; name=${name%%=*}
      if ! printf '%s\n' "$known" | grep -qF -- "-$name"; then
        echo "postgres-exporter: $($exporter --version 2>&1 | head -n1): no ${name#collector.} collector in this version: ignoring $arg" >&2
        continue
      fi
      ;;
  esac
  set -- "$@" "$arg"
done
exec "$exporter" "$@"
