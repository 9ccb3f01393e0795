#!/bin/sh
# Builds floor.0, the bench's do-nothing NBP (tests/bench/floor.S; never
# shipped): a flat real-mode image linked at 0x7C00.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
"$here/../flatbin.sh" "$here/floor.S" "${1:-$here/../../target/dist/floor.0}" 0x7c00
