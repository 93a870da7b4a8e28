#!/usr/bin/env bash
# System packages some tests need (a real PostgreSQL, a real headless Chromium): installed by the
# test command itself so a fresh machine needs nothing by hand. Skipped when already present.
set -euo pipefail
need=()
# Each line: a command that must exist, then the Debian package that provides it.
while read -r cmd pkg; do
  [ -z "${cmd:-}" ] && continue
  command -v "$cmd" >/dev/null 2>&1 || [ -x "$cmd" ] || need+=("$pkg")
done <<'LIST'
chromium chromium
LIST
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
