#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the console's browser test (driven by playwright-core, which never
# downloads a browser of its own), with a CJK font so the Chinese console renders. Installs with apt-get only when
# /usr/bin/chromium is missing; exits non-zero when it cannot, so the test fails rather than skips.
set -euo pipefail
say() { printf 'chromium: %s\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if [ ! -x /usr/bin/chromium ]; then
  say "apt-get update"
  $SUDO apt-get update -qq
  say "installing chromium and a CJK font"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
fi
[ -x /usr/bin/chromium ] || { say "/usr/bin/chromium is still missing"; exit 1; }
