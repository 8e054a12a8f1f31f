#!/bin/sh
# The status page's browser test drives Debian's chromium through playwright-core; a browser is
# never downloaded. Installs the distribution's package when /usr/bin/chromium is missing.
set -eu
CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "ensure-chromium: $CHROMIUM is missing and this user cannot install it (apt-get install chromium as root)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: $CHROMIUM is missing and there is no apt-get; install the distribution's chromium" >&2
  exit 1
fi
echo "ensure-chromium: installing Debian's chromium" >&2
$SUDO apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium >&2
[ -x "$CHROMIUM" ] || { echo "ensure-chromium: apt-get finished but $CHROMIUM is still missing" >&2; exit 1; }
