#!/usr/bin/env bash
# Waits for the images scripts/setup.sh builds in the background, if it is building them, and fails
# with the build's log if that failed. npm test runs it before the local-mode tests, which judge who
# used the machine's CPUs and must have them to themselves; scripts/local-cluster/up.sh waits too.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
wait_for_background_images
