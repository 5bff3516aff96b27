#!/usr/bin/env bash
# What the test suite needs from the system beside the Python packages, installed when it can
# be (Debian's apt-get, as root or with password-less sudo); otherwise ONE line saying which
# tests will skip and why. `make test` runs it first; it never fails the build.
#
#   chromium   tests/test_server_page.py drives the `slimvec serve` page in headless Chromium
#   root       the Debian-index tests (tests/test_datasets.py "real apt path",
#              tests/test_rag_example.py) fetch Translation-en with `apt-get update` into a
#              private lists directory, which needs root
set -u

have_chromium() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }

if [ "$(id -u)" = 0 ]; then
    as_root=(env)
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n env)
else
    as_root=()
fi

skips=()
if ! have_chromium; then
    if ! command -v apt-get >/dev/null 2>&1; then
        skips+=("tests/test_server_page.py (Chromium is not installed and this is not a Debian system: install Chromium)")
    elif [ ${#as_root[@]} -eq 0 ]; then
        skips+=("tests/test_server_page.py (Chromium is not installed, and apt-get install chromium needs root or password-less sudo)")
    else
        echo "system-deps: installing Debian's chromium for tests/test_server_page.py" >&2
        "${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1
        "${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1
        have_chromium || skips+=("tests/test_server_page.py (apt-get install chromium failed)")
    fi
fi
if [ "$(id -u)" != 0 ]; then
    skips+=("the Debian-index tests of tests/test_datasets.py, and tests/test_rag_example.py unless apt's lists hold Translation-en (apt-get update into a private directory needs root)")
fi

if [ ${#skips[@]} -gt 0 ]; then
    line="system-deps: will skip"
    sep=" "
    for s in "${skips[@]}"; do line+="$sep$s"; sep="; "; done
    echo "$line" >&2
fi
exit 0
