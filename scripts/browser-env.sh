#!/usr/bin/env bash
# Make a headless Chromium and its WebDriver available for the browser tests and print where
# they are, one KEY=path a line:
#   CHROMIUM=/usr/bin/chromium
#   CHROMEDRIVER=/usr/bin/chromedriver
# Installs Debian's `chromium` and `chromium-driver` with apt-get when missing (root, or sudo
# without a password). Idempotent and safe to run from several processes at once.
# TASKLOOM_CHROMIUM / TASKLOOM_CHROMEDRIVER point at other binaries (a machine without apt).
set -euo pipefail

find_chromium() {
  if [ -n "${TASKLOOM_CHROMIUM:-}" ]; then echo "$TASKLOOM_CHROMIUM"; return; fi
  command -v chromium || command -v chromium-browser || command -v google-chrome || true
}
find_driver() {
  if [ -n "${TASKLOOM_CHROMEDRIVER:-}" ]; then echo "$TASKLOOM_CHROMEDRIVER"; return; fi
  command -v chromedriver || true
}

CHROMIUM=$(find_chromium)
DRIVER=$(find_driver)
if [ -z "$CHROMIUM" ] || [ -z "$DRIVER" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "no chromium/chromedriver found and no apt-get to install them;" \
      "set TASKLOOM_CHROMIUM and TASKLOOM_CHROMEDRIVER" >&2
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo -n"; fi
  echo "installing chromium and chromium-driver with apt-get..." >&2
  (
    # Two test processes starting at once must not race for apt's lock.
    flock -w 900 9
    export DEBIAN_FRONTEND=noninteractive
    if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
      $SUDO apt-get update -qq >&2
      $SUDO apt-get install -y -qq chromium chromium-driver >&2
    fi
  ) 9>"${TMPDIR:-/tmp}/taskloom-browser-env.lock"
  CHROMIUM=$(find_chromium)
  DRIVER=$(find_driver)
fi

if [ ! -x "$CHROMIUM" ] || [ ! -x "$DRIVER" ]; then
  echo "chromium ($CHROMIUM) or chromedriver ($DRIVER) is not executable" >&2
  exit 1
fi
# It must start headless here (as root it needs --no-sandbox).
if ! timeout 60 "$CHROMIUM" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
  --dump-dom about:blank >/dev/null 2>&1; then
  echo "$CHROMIUM does not start headless on this machine" >&2
  exit 1
fi
echo "CHROMIUM=$CHROMIUM"
echo "CHROMEDRIVER=$DRIVER"
