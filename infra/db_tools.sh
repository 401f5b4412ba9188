#!/usr/bin/env bash
# The database tools some tests need beyond the embedded Postgres: Debian's pgbouncer (the
# pooler lane) and PostgreSQL 15 (linked with OpenSSL: the TLS tests). Installs what is
# missing where it can (root with apt-get), quickly does nothing when both are there, and
# otherwise says what is missing. Never fails: the tests that need a tool skip without it,
# and fail under CI=true.
set -uo pipefail

missing=()
PATH="$PATH:/usr/sbin" command -v pgbouncer >/dev/null || missing+=(pgbouncer)
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "db-tools: installing ${missing[*]} (apt-get)"
    apt_install() {
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
            --no-install-recommends "${missing[@]}" >/dev/null
    }
    apt_install || { apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null && apt_install; } \
        || echo "db-tools: could not install ${missing[*]}"
else
    echo "db-tools: ${missing[*]} missing and not installable here (needs root and apt-get):" \
         "the tests that need them will skip"
fi
exit 0
