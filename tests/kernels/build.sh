#!/bin/sh
# Builds the Multiboot2 test kernels and modules into target/dist/testkernels/.
#   elf32.elf      ELF32 at 1 MiB            elf64.elf   the same as ELF64
#   aout.bin       address tag at 2 MiB      reloc.bin   relocatable (16-128 MiB, 2 MiB aligned, high)
#   reloc-elf.elf  relocatable ELF32 (same window), linked at 2 MiB
#   elf32.elf.gz   gzip-compressed ELF32     unknown-tag.elf / smbios-req.elf  must be refused
#   efi64-req.elf  requires tag 12 (GRUB accepts that and leaves it out)
#   fb.elf         optional framebuffer tag 1024x768x32 (GRUB sets a VBE mode)
#   fb-auto.elf    optional framebuffer tag 0x0x0 (GRUB sets the display's preferred mode)
#   cycle.elf      segments that swap places (exercises the out-of-the-way copy)
#   mod1.txt       a text module             mod2.bin.gz a gzip-compressed module
#   mbcode.bin     mbtest's code alone (-DGENERATED, linked at 0): tests/harness/mbgen.rs
#                  composes header-variant kernels around it
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../target/dist/testkernels}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

kernel() { # name base defines...
    name=$1; base=$2; shift 2
    gcc -m32 -c "$@" -o "$tmp/$name.o" "$here/mbtest.S"
    ld -m elf_i386 -nostdlib --build-id=none -z noexecstack --no-warn-rwx-segments --defsym=BASE="$base" -T "$here/link.ld" -o "$tmp/$name.elf" "$tmp/$name.o"
}

kernel elf32 0x100000
cp "$tmp/elf32.elf" "$out/elf32.elf"
objcopy -I elf32-i386 -O elf64-x86-64 "$tmp/elf32.elf" "$out/elf64.elf"
kernel aout 0x200000 -DAOUT
objcopy -O binary "$tmp/aout.elf" "$out/aout.bin"
kernel reloc 0x200000 -DAOUT -DRELOC
objcopy -O binary "$tmp/reloc.elf" "$out/reloc.bin"
kernel reloc-elf 0x200000 -DRELOC
cp "$tmp/reloc-elf.elf" "$out/reloc-elf.elf"
kernel unknown-tag 0x100000 -DUNKNOWN_TAG
cp "$tmp/unknown-tag.elf" "$out/unknown-tag.elf"
kernel efi64-req 0x100000 -DEFI64_REQ
cp "$tmp/efi64-req.elf" "$out/efi64-req.elf"
kernel smbios-req 0x100000 -DSMBIOS_REQ
cp "$tmp/smbios-req.elf" "$out/smbios-req.elf"
kernel fb 0x100000 -DFRAMEBUFFER
cp "$tmp/fb.elf" "$out/fb.elf"
kernel fb-auto 0x100000 -DFRAMEBUFFER_AUTO
cp "$tmp/fb-auto.elf" "$out/fb-auto.elf"
gzip -9 -n -c "$out/elf32.elf" > "$out/elf32.elf.gz"
kernel mbcode 0 -DGENERATED
objcopy -O binary "$tmp/mbcode.elf" "$out/mbcode.bin"

# cycle.elf: two segments that swap places within the file as staged at
# 16 MiB (where the chainloader stages the kernel): each one's destination
# covers the other's downloaded bytes, so no copy order works and one of them
# must first be moved out of the way. The code (in the second segment)
# checks that the first segment, holding the Multiboot2 header, arrived.
python3 - "$out/cycle.elf" <<'PY'
import struct, sys
S = 0x1000000
a_dest, b_dest = S + 0x2000, S + 0x1000
img = bytearray(0x3000)
img[0:7] = b'\x7fELF\x01\x01\x01'
struct.pack_into('<HHIIIIIHHHHHH', img, 16, 2, 3, 1, b_dest, 52, 0, 0, 52, 32, 2, 0, 0, 0)
struct.pack_into('<8I', img, 52, 1, 0x1000, a_dest, a_dest, 0x1000, 0x1000, 7, 0x1000)
struct.pack_into('<8I', img, 84, 1, 0x2000, b_dest, b_dest, 0x1000, 0x1000, 7, 0x1000)
struct.pack_into('<4I', img, 0x1000, 0xE85250D6, 0, 24, (-(0xE85250D6 + 24)) & 0xffffffff)
struct.pack_into('<HHI', img, 0x1010, 0, 0, 8)
# cmp dword [a_dest], magic; jne fail; exit 0x10 / fail: exit 0x11
code = bytes([0x81, 0x3D]) + struct.pack('<II', a_dest, 0xE85250D6) + bytes(
    [0x75, 0x06, 0xB0, 0x10, 0xE6, 0xF4, 0xEB, 0xFE, 0xB0, 0x11, 0xE6, 0xF4, 0xEB, 0xFE])
img[0x2000:0x2000 + len(code)] = code
open(sys.argv[1], 'wb').write(img)
PY

printf 'module one: plain text\n' > "$out/mod1.txt"
# 100 KiB of a fixed pattern, gzip-compressed.
i=0; : > "$tmp/mod2.bin"
while [ $i -lt 1600 ]; do printf 'mod2 line %05d 0123456789abcdefghijklmnopqrstuvwxyz\n' $i >> "$tmp/mod2.bin"; i=$((i+1)); done
gzip -9 -n -c "$tmp/mod2.bin" > "$out/mod2.bin.gz"
ls -l "$out"
