#!/usr/bin/env bash
# Install the Debian packages the test suite needs (PostgreSQL, MariaDB,
# OpenSSH, libaio; Chromium for the console's browser tests; Node.js and npm to
# build the console when they are missing).
#
# Idempotent and fast on repeat runs: every package is checked with `dpkg -s`
# first, and `apt-get update` / `apt-get install` only run when something is
# actually missing.  Installing requires root; when nothing is missing the
# script succeeds for any user.
#
# Package post-install scripts are NOT allowed to start services (a temporary
# /usr/sbin/policy-rc.d is put in place if none exists): the databases are
# started by scripts/test-services.sh, bound to 127.0.0.1 only.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# Required packages.
required=(
    postgresql
    mariadb-server
    mariadb-client
    openssh-server
    openssh-client
    chromium
)
# Optional: seekdb (pylibseekdb) ships its own libaio.so.1, so a missing
# system libaio is not an error.  Debian 13+ renamed the package.
optional_candidates=(libaio1 libaio1t64)

log() { printf 'install-system-deps: %s\n' "$*" >&2; }

is_installed() {
    # dpkg -s succeeds for packages in "deinstall" state too; check the status.
    dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx 'installed'
}

has_candidate() {
    # True when apt knows an installable version of the package.
    local cand
    cand=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')
    [[ -n "$cand" && "$cand" != "(none)" ]]
}

missing=()
for pkg in "${required[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done
# The console's build: any Node.js already on the PATH will do (NodeSource's bundles npm;
# it must be 20.19+ for Vite), otherwise Debian's nodejs and npm.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

optional_needed=1
for pkg in "${optional_candidates[@]}"; do
    if is_installed "$pkg"; then
        optional_needed=0
        break
    fi
done

if [[ ${#missing[@]} -eq 0 && $optional_needed -eq 0 ]]; then
    log "all packages already installed"
    exit 0
fi

if [[ ${#missing[@]} -eq 0 ]]; then
    # Only the optional libaio is absent.  Go on only if apt's current lists
    # know a libaio package; otherwise don't hit the network on every run.
    optional_found=0
    for pkg in "${optional_candidates[@]}"; do
        if has_candidate "$pkg"; then optional_found=1; break; fi
    done
    if [[ $optional_found -eq 0 ]]; then
        log "all required packages installed (no system libaio; seekdb bundles its own)"
        exit 0
    fi
fi

if [[ $(id -u) -ne 0 ]]; then
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "system libaio not installed (optional; needs root); continuing"
        exit 0
    fi
    log "ERROR: missing packages (${missing[*]}) and not running as root; re-run as root: sudo $0"
    exit 1
fi

# Keep package post-install scripts from starting services.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    created_policy=1
fi
cleanup() {
    if [[ $created_policy -eq 1 ]]; then rm -f "$policy"; fi
}
trap cleanup EXIT

log "apt-get update"
apt-get update -qq >/dev/null

# Resolve the optional libaio package name now that the lists are fresh.
if [[ $optional_needed -eq 1 ]]; then
    for pkg in "${optional_candidates[@]}"; do
        if has_candidate "$pkg"; then
            missing+=("$pkg")
            break
        fi
    done
fi

if [[ ${#missing[@]} -eq 0 ]]; then
    log "nothing installable is missing"
    exit 0
fi

log "installing: ${missing[*]}"
# -qq keeps progress noise out; errors still reach stderr.  dpkg output is
# verbose, so it goes to a log that is shown only on failure.
apt_log=$(mktemp)
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    rm -f "$apt_log"
    log "ERROR: apt-get install failed"
    exit 1
fi
rm -f "$apt_log"
log "done"
