#!/usr/bin/env bash
# Checks the release configuration with goreleaser itself, as a release
# needs it: `goreleaser check` (strict load, defaults, deprecations), then,
# with --snapshot, a full local snapshot build of every platform.
# Run it before tagging a release. Building goreleaser v2.16.0 from source
# takes about half an hour on a fresh 2-core machine, which is why .ci/run
# runs only internal/tools/releasecheck (goreleaser's own strict loader).
#
#   scripts/release-check.sh              # goreleaser check
#   scripts/release-check.sh --snapshot   # and goreleaser release --snapshot --clean
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(go env GOPATH)/bin:$PATH"

want=v2.16.0
if ! command -v goreleaser >/dev/null || ! goreleaser --version 2>/dev/null | grep -q "$want"; then
  echo "scripts/release-check.sh: building goreleaser $want (about 30 minutes the first time)" >&2
  timeout 60m go install "github.com/goreleaser/goreleaser/v2@$want"
fi
goreleaser check
if [ "${1-}" = "--snapshot" ]; then
  goreleaser release --snapshot --clean
fi
