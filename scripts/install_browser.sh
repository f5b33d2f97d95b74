#!/usr/bin/env bash
# Installs the headless browser the UI tests drive: Debian's `chromium` and `chromium-driver`
# (/usr/bin/chromium, /usr/bin/chromedriver). Called by `make test`; a no-op when both are there.
# Elsewhere, point OGIRI_CHROMIUM and OGIRI_CHROMEDRIVER at a matching browser and driver.
set -euo pipefail
chromium=${OGIRI_CHROMIUM:-/usr/bin/chromium}
driver=${OGIRI_CHROMEDRIVER:-/usr/bin/chromedriver}
if [ -x "$chromium" ] && [ -x "$driver" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "UI tests need Chromium and ChromeDriver: install them, then set OGIRI_CHROMIUM and OGIRI_CHROMEDRIVER" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "UI tests need Debian's chromium and chromium-driver: run 'sudo apt-get install -y chromium chromium-driver'" >&2
  exit 1
fi
echo "installing Debian's chromium and chromium-driver for the UI tests…"
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null; then
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null
fi
"$chromium" --version
