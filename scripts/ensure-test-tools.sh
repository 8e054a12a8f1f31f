#!/bin/sh
# The operator surface's tests drive Debian's chromium through playwright-core (a browser is never
# downloaded) and run the CLI inside tmux. Installs the distribution's packages for whichever of
# the two is missing; does nothing when both are there.
set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "ensure-test-tools: missing$missing and this user cannot install packages (apt-get install$missing as root)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-test-tools: missing$missing and there is no apt-get; install the distribution's packages" >&2
  exit 1
fi
echo "ensure-test-tools: installing$missing from Debian" >&2
$SUDO apt-get update -q >&2
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing >&2
[ -x /usr/bin/chromium ] || { echo "ensure-test-tools: /usr/bin/chromium is still missing" >&2; exit 1; }
command -v tmux >/dev/null 2>&1 || { echo "ensure-test-tools: tmux is still missing" >&2; exit 1; }
