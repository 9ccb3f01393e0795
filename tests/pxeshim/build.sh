#!/bin/sh
# Builds the quirk-injecting PXE stack (tests only; never shipped):
#   pxeshim.0   a flat real-mode NBP, linked at offset 0 (it runs as 07C0:0
#               and then from the top of base memory as SEG:0)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../target/dist/pxeshim.0}
"$here/../flatbin.sh" "$here/pxeshim.S" "$out" 0
# The shim reserves SHIM_KIB (8 KiB) of base memory for its image, buffers included.
size=$(stat -c %s "$out")
if [ "$size" -gt 8192 ]; then
    echo "tests/pxeshim: pxeshim.0 is $size bytes, more than the 8 KiB it reserves (SHIM_KIB)" >&2
    exit 1
fi
