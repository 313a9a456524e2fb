#!/usr/bin/env bash
# npm test: the local services, Debian's Chromium, then every suite. On Node 24 LTS even where the
# machine has another Node (scripts/use-node.sh fetches it once), so `npm ci && npm test` passes on a
# fresh machine as the README says; vitest's arguments pass through (`npm test -- test/unit`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/use-node.sh
bash scripts/services.sh start
bash scripts/browser.sh >/dev/null
exec npx vitest run "$@"
