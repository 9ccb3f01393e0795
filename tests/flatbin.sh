#!/bin/sh
# Assembles one real-mode source (gcc -m32, GNU as) and links it as a flat
# binary at TEXT, entry _start: the test-only NBPs (tests/pxeshim/build.sh,
# tests/bench/build.sh). Usage: tests/flatbin.sh SRC.S OUT TEXT
set -eu
src=$1
out=$2
text=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -m32 -c -o "$tmp/nbp.o" "$src"
ld -m elf_i386 -nostdlib --build-id=none -Ttext="$text" -e _start --oformat binary -o "$out" "$tmp/nbp.o"
