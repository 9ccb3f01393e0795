#!/usr/bin/env bash
# Build the kernel variants the chainloader tests use, into target/dist/:
#   kernel.elf        ELF64 (the default build; copied by scripts/build)
#   kernel32.elf      the same image as ELF32 (objcopy -O elf32-i386): the
#                     shape of most C kernels' images, Nautilus included
#   kernel-aout.bin   flat binary that boots through the Multiboot2 address
#                     and entry-address tags ("a.out kludge"): built with
#                     `--features aout`, then `objcopy -O binary`
#   kernel-aout.elf   that build as ELF (the address tag takes precedence)
# Called by scripts/build after the workspace build.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/dist
objcopy -O elf32-i386 target/release/kernel target/dist/kernel32.elf
# A separate target dir so the aout build does not replace the default one.
cargo build --release -p kernel --features aout --target-dir target/kernel-aout
objcopy -O binary target/kernel-aout/release/kernel target/dist/kernel-aout.bin
cp target/kernel-aout/release/kernel target/dist/kernel-aout.elf
echo "built target/dist/kernel32.elf, target/dist/kernel-aout.bin ($(stat -c %s target/dist/kernel-aout.bin) bytes)"
