#!/usr/bin/env bash
# Installs, from Debian's archive, everything connector needs to build, test and
# run its demo. Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang libclang-rt-dev  # C/C++, libFuzzer (PGXS pulls clang-14 for bitcode)
  postgresql-15 postgresql-server-dev-15 postgresql-15-cron        # server, headers, pg_cron
  libssl-dev                                                        # SHA-256, AES-GCM, TLS
  libcurl4-openssl-dev                                              # Graph API client
  nlohmann-json3-dev                                                # payload JSON
  libutf8proc-dev                                                   # NFC, lowercase, categories
  libphonenumber-dev                                                # national -> international phone numbers
  libicu-dev                                                        # country names in every language (CLDR)
  libgtest-dev libbenchmark-dev                                     # unit tests, micro-benchmarks
  python3 openssl curl                                              # Graph API simulator, test CA
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
