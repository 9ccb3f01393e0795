#!/bin/sh
# Builds the quirk-injecting PXE stack (tests only; never shipped):
#   pxeshim.0   a flat real-mode NBP, linked at offset 0 (it runs as 07C0:0
#               and then from the top of base memory as SEG:0)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../target/dist/pxeshim.0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -m32 -c -o "$tmp/pxeshim.o" "$here/pxeshim.S"
ld -m elf_i386 -nostdlib --build-id=none -Ttext=0 -e _start --oformat binary -o "$out" "$tmp/pxeshim.o"
# The shim reserves SHIM_KIB (8 KiB) of base memory for its image, buffers included.
size=$(stat -c %s "$out")
if [ "$size" -gt 8192 ]; then
    echo "tests/pxeshim: pxeshim.0 is $size bytes, more than the 8 KiB it reserves (SHIM_KIB)" >&2
    exit 1
fi
