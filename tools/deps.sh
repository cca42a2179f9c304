#!/bin/sh
# deps.sh - install the Debian packages apr-tools needs, when missing (as root).
# Build: gcc, make, pkg-config, zlib1g-dev, libssl-dev, libjsmn-dev, check,
#        libpcre2-dev and libutf8proc-dev (tokenizer regexes and normalizers).
# Tests: groff-base or mandoc (man page rendering), clang (fuzz), xxd-free.
set -u
need=""
have_hdr() { [ -f "/usr/include/$1" ] || [ -f "/usr/include/x86_64-linux-gnu/$1" ]; }
command -v cc >/dev/null 2>&1 || need="$need gcc"
command -v make >/dev/null 2>&1 || need="$need make"
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
have_hdr zlib.h || need="$need zlib1g-dev"
have_hdr openssl/evp.h || need="$need libssl-dev"
have_hdr jsmn.h || need="$need libjsmn-dev"
have_hdr check.h || need="$need check"
have_hdr pcre2.h || need="$need libpcre2-dev"
have_hdr utf8proc.h || need="$need libutf8proc-dev"
command -v mandoc >/dev/null 2>&1 || need="$need mandoc"
[ -x /usr/bin/time ] || need="$need time"
for p in ${APR_DEPS_EXTRA:-}; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
[ -z "$need" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing Debian packages:$need (run as root, or: apt-get install$need)" >&2
    exit 1
fi
echo "deps: installing$need" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends $need >/dev/null || {
    echo "deps: apt-get install$need failed" >&2
    exit 1
}
