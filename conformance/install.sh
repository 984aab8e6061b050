#!/usr/bin/env bash
# Idempotent install of Autobahn|Testsuite 25.10.1 (the `wstest` fuzzingserver).
#
# wstest is a Python 2.7 program: on Python 3 it installs but crashes. Python 2.7 has no
# `venv` module, so a throwaway Python 3 venv provides virtualenv<20.22 (the last release
# able to create 2.7 environments), which then creates the 2.7 environment. The 25.10.1
# sdist declares no requirements, so every dependency is pinned here by hand.
#
# Environment:
#   AUTOBAHN_VENV  where to install (default: $HOME/.cache/trio_mws/autobahn-venv)
#   AUTOBAHN_PY2   Python 2.7 interpreter (default: pyenv's 2.7.18,
#                  ${PYENV_ROOT:-$HOME/.pyenv}/versions/2.7.18/bin/python)
#   AUTOBAHN_PY3   Python 3 used for the bootstrap venv (default: python3)
#
# Exit status: 0 when wstest 25.10.1 is installed (or already was), non-zero otherwise.
set -euo pipefail

VERSION=25.10.1
VENV=${AUTOBAHN_VENV:-$HOME/.cache/trio_mws/autobahn-venv}
PY2=${AUTOBAHN_PY2:-${PYENV_ROOT:-$HOME/.pyenv}/versions/2.7.18/bin/python}
PY3=${AUTOBAHN_PY3:-python3}

installed_version() {
  # prints e.g. "Autobahn 0.10.9" then "AutobahnTestSuite 25.10.1"
  "$VENV/bin/wstest" --autobahnversion 2>/dev/null | awk '$1 == "AutobahnTestSuite" { print $2 }' || true
}

if [ "$(installed_version)" = "$VERSION" ]; then
  echo "autobahntestsuite $VERSION already installed in $VENV"
  exit 0
fi

if ! command -v "$PY2" >/dev/null 2>&1 \
  || ! "$PY2" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' >/dev/null 2>&1; then
  cat >&2 <<MSG
ERROR: Autobahn|Testsuite needs a Python 2.7 interpreter; '$PY2' is missing or is not
Python 2.7. Install one (e.g. \`pyenv install 2.7.18\`) or set AUTOBAHN_PY2 to a python2.7.
The conformance run cannot proceed without it.
MSG
  exit 1
fi
command -v "$PY3" >/dev/null 2>&1 || { echo "ERROR: no Python 3 at '$PY3' (set AUTOBAHN_PY3)" >&2; exit 1; }

echo "installing autobahntestsuite $VERSION into $VENV (Python 2.7: $PY2)"
BOOT="$VENV.boot"
rm -rf "$VENV" "$BOOT"
mkdir -p "$(dirname "$VENV")"
trap 'rm -rf "$BOOT"' EXIT
"$PY3" -m venv "$BOOT"
"$BOOT/bin/pip" install -q --disable-pip-version-check 'virtualenv<20.22'
"$BOOT/bin/virtualenv" -q -p "$PY2" "$VENV"

# Upstream's requirements.txt plus what pip resolved on Python 2.7, all pinned.
"$VENV/bin/pip" install -q --disable-pip-version-check --no-python-version-warning \
  "autobahntestsuite==$VERSION" 'autobahn[accelerate,twisted]==0.10.9' \
  Twisted==19.10.0 txaio==2.1.0 zope.interface==4.6.0 incremental==16.10.1 \
  pyOpenSSL==19.1.0 cryptography==3.3.2 service-identity==18.1.0 klein==17.10.0 \
  Werkzeug==1.0.1 Jinja2==2.11.3 MarkupSafe==1.1.1 unittest2==1.1.0 six==1.16.0 \
  setuptools==44.0.0 attrs==21.4.0 Automat==22.10.0 constantly==15.1.0 \
  hyperlink==21.0.0 idna==2.10 PyHamcrest==1.10.1 cffi==1.15.1 pycparser==2.21 \
  enum34==1.1.10 ipaddress==1.0.23 pyasn1==0.5.1 pyasn1-modules==0.3.0 \
  linecache2==1.0.0 traceback2==1.4.0 typing==3.10.0.0 ujson==2.0.3 wsaccel==0.6.6

GOT=$(installed_version)
if [ "$GOT" != "$VERSION" ]; then
  echo "ERROR: wstest in $VENV reports version '${GOT:-<none>}', expected $VERSION" >&2
  exit 1
fi
echo "autobahntestsuite $VERSION installed in $VENV"
