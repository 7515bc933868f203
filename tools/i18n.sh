#!/bin/sh
# The one script for the message catalogues (issue 16), run from anywhere:
#   tools/i18n.sh extract   source strings -> appeals/translations/messages.pot
#   tools/i18n.sh update    extract, then merge the .pot into every language's messages.po
#   tools/i18n.sh compile   every messages.po -> messages.mo (committed: a fresh install serves them)
#   tools/i18n.sh init LANG start a new language
# tests/i18n/test_catalogues.py fails when the .pot, a .po or a .mo is behind the source.
set -eu
cd "$(dirname "$0")/.."
PYBABEL="${PYBABEL:-$(command -v .venv/bin/pybabel || command -v pybabel)}"
DIR=appeals/translations
POT="$DIR/messages.pot"

extract() {
    "$PYBABEL" extract -F babel.cfg -k lazy_gettext -k _l -k N_ --no-location --sort-output \
        --project appeals --version 1 --msgid-bugs-address appeals@localhost \
        --copyright-holder "Dataset appeals" -o "$POT" .
}

case "${1:-}" in
    extract) extract ;;
    update) extract; "$PYBABEL" update -i "$POT" -d "$DIR" --no-fuzzy-matching --ignore-obsolete ;;
    compile) "$PYBABEL" compile -d "$DIR" --statistics ;;
    init) "$PYBABEL" init -i "$POT" -d "$DIR" -l "$2" ;;
    *) echo "usage: $0 extract|update|compile|init LANG" >&2; exit 2 ;;
esac
