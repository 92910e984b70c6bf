#!/usr/bin/env sh
# Refresh the translation catalogues from the code and templates, then compile them.
# Needs GNU gettext (apt install gettext). The compiled .mo files are kept in git, so a
# fresh install (Windows included) runs without these tools.
#   scripts/messages.sh        then translate the new or fuzzy entries in locale/fr/LC_MESSAGES/*.po
#                              and run it again (tests/test_i18n.py fails on any left out)
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
IGNORE="--ignore=.venv --ignore=staticfiles --ignore=tests --ignore=bench --ignore=artifacts --ignore=.local"
# shellcheck disable=SC2086
"$PYTHON" manage.py makemessages -l fr -l en --no-obsolete $IGNORE
# shellcheck disable=SC2086
"$PYTHON" manage.py makemessages -d djangojs -l fr -l en --no-obsolete $IGNORE
"$PYTHON" manage.py compilemessages --ignore=.venv
