#!/usr/bin/env bash
# System packages some tests need (a real PostgreSQL, a real headless Chromium): installed by the
# test command itself so a fresh machine needs nothing by hand. Skipped when already present.
set -euo pipefail
need=()
# Each line: a command that must exist, then the Debian package that provides it.
# A pattern is expanded first: Debian puts each PostgreSQL major version in its own folder.
while read -r cmd pkg; do
  [ -z "${cmd:-}" ] && continue
  found=no
  for c in $cmd; do command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] && found=yes; done
  [ $found = yes ] || need+=("$pkg")
done <<'LIST'
chromium chromium
/usr/lib/postgresql/*/bin/initdb postgresql
LIST
if [ ${#need[@]} -gt 0 ] && ! command -v apt-get >/dev/null 2>&1; then
  echo "tests need ${need[*]} (Debian package names) and this system has no apt-get: install them" >&2
  exit 1
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
