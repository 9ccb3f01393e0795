#!/bin/sh
# Builds floor.0, the bench's do-nothing NBP (tests/bench/floor.S; never
# shipped): a flat real-mode image linked at 0x7C00.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../target/dist/floor.0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -m32 -c -o "$tmp/floor.o" "$here/floor.S"
ld -m elf_i386 -nostdlib --build-id=none -Ttext=0x7c00 -e _start --oformat binary -o "$out" "$tmp/floor.o"
