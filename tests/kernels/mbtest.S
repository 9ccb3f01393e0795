/* mbtest: a tiny Multiboot2 test kernel. It prints on COM1 what the loader
 * handed it (registers, CPU state, every boot information tag, a checksum of
 * each module's bytes, whether its bss was zeroed) and exits through QEMU's
 * isa-debug-exit device (port 0xf4; value 0x10 = done, 0x11 = bad magic).
 *
 * The code is position-independent (everything is addressed from %ebp, the
 * address the image was actually loaded at) so that the same source serves
 * as an ELF kernel, an address-tag (a.out kludge) kernel and a relocatable
 * kernel. Variants: -DAOUT (address + entry address tags), -DRELOC
 * (relocatable tag), -DUNKNOWN_TAG (a non-optional tag type 42), -DEFI64_REQ
 * / -DSMBIOS_REQ (a required information request for tag 12 / 13),
 * -DFRAMEBUFFER (an optional 1024x768x32 framebuffer tag), -DFRAMEBUFFER_AUTO
 * (an optional framebuffer tag with no preference, 0x0x0, as Xen has),
 * -DGENERATED (no header and no bss: a code blob that tests/harness/mbgen.rs
 * wraps in a header and an ELF or flat container it composes, with a range
 * table it fills in).
 *
 * Besides the tags it prints the entry registers (captured before anything
 * else runs, on the loader's stack), CR0/CR4/EFER/EFLAGS, each segment
 * register with the access rights and limit of its descriptor, and in the
 * generated form an FNV-1a hash of each range of its table (the loaded
 * bytes and the zeroed bss), so a test can compare the whole handoff.
 */
    .code32
    .section .text
    .globl _start_image, entry
_start_image:
    jmp entry
#ifdef GENERATED
    /* A decoy entry point (code + 2) for variants whose entry tag must win
     * over the ELF e_entry: a loader that jumps here exits 0x12 at once. */
wrong_entry:
    mov $0x12, %al
    out %al, $0xf4
    hlt
#endif

#ifdef GENERATED
    /* The range table, at offset 8 of the blob (mbgen.rs finds it by its
     * magic and fills it in): the address the blob was linked at, the top
     * of the stack the kernel uses, and up to 12 ranges (link addresses) to
     * hash. Everything is moved by (load address - link address). */
    .balign 8
range_table:
    .long 0x4754424d        /* "MBTG" */
    .long 0                 /* link address of _start_image */
    .long 0                 /* stack top (link address) */
    .long 0                 /* number of ranges */
    .fill 24, 4, 0          /* 12 x (start, length) */
#else
    .balign 8
mb_header:
    .long 0xE85250D6
    .long 0
    .long mb_header_end - mb_header
    .long -(0xE85250D6 + (mb_header_end - mb_header))
#ifdef AOUT
    .balign 8
    .short 2, 0
    .long 24
    .long mb_header
    .long _start_image
    .long _edata
    .long _end
    .balign 8
    .short 3, 0
    .long 12
    .long entry
#endif
#ifdef RELOC
    .balign 8
    .short 10, 0
    .long 24
    .long 0x1000000         /* min_addr */
    .long 0x8000000         /* max_addr */
    .long 0x200000          /* align */
    .long 2                 /* preference: high */
#endif
#ifdef UNKNOWN_TAG
    .balign 8
    .short 42, 0
    .long 8
#endif
#ifdef FRAMEBUFFER
    .balign 8
    .short 5, 1             /* framebuffer, optional: 1024x768x32 */
    .long 20
    .long 1024, 768, 32
#endif
#ifdef FRAMEBUFFER_AUTO
    .balign 8
    .short 5, 1             /* framebuffer, optional, no preference (as Xen) */
    .long 20
    .long 0, 0, 0
#endif
    .balign 8
    .short 1, 0             /* information request, required */
#ifdef EFI64_REQ
    .long 8 + 4 * 6
    .long 1, 3, 4, 6, 21, 12
#elif defined(SMBIOS_REQ)
    .long 8 + 4 * 6
    .long 1, 3, 4, 6, 21, 13
#else
    .long 8 + 4 * 5
    .long 1, 3, 4, 6, 21
#endif
    .balign 8
    .short 4, 0             /* console flags: EGA text supported */
    .long 12
    .long 2
    .balign 8
    .short 6, 1             /* module alignment (optional) */
    .long 8
    .balign 8
    .short 0, 0
    .long 8
mb_header_end:
#endif

/* Prints the string that follows the macro in the code stream. */
.macro PUTS s
    call 78f
    .asciz "\s"
78: pop %ecx
    call puts
.endm

/* HEX and DECIMAL print `src`, loaded into %eax by `load` (mov, or
 * movzbl/movzwl for a narrower field), in hex or in decimal (a field known
 * to be small). Not DEC: gas matches macro names without case, and that
 * would take the place of the dec instruction. */
.macro HEX src, load=mov
    \load \src, %eax
    call hex32
.endm

.macro DECIMAL src, load=mov
    \load \src, %eax
    call dec_small
.endm

/* Prints the FNV-1a hash of the tag at %ebx from byte `from` to its end. */
.macro TAG_FNV from
    lea \from(%ebx), %edx
    mov 4(%ebx), %ecx
    sub $\from, %ecx
    call fnv
    call hex32
.endm

entry:
    /* Capture the state the loader left, before changing any of it: EFLAGS
     * and the eight general registers go on the loader's stack (GRUB gives
     * 0x7ff00), then are copied onto ours. */
    pushfl
    pushal
    call 1f
1:  pop %ebp
    sub $(1b - _start_image), %ebp
    mov %esp, %esi
#ifdef GENERATED
    mov %ebp, %eax
    sub (range_table - _start_image + 4)(%ebp), %eax   /* load - link */
    add (range_table - _start_image + 8)(%ebp), %eax
    mov %eax, %esp
#else
    lea (stack_top - _start_image)(%ebp), %esp
#endif
    mov $9, %ecx
2:  push -4(%esi,%ecx,4)
    dec %ecx
    jnz 2b
    /* (%esp): edi esi ebp esp+4 ebx edx ecx eax eflags, as at entry */
    cli
    cld
    mov 28(%esp), %edi
    mov 16(%esp), %esi

    /* COM1: 115200 8N1, FIFO on. */
    mov $0x3f9, %dx; xor %al, %al; out %al, %dx
    mov $0x3fb, %dx; mov $0x80, %al; out %al, %dx
    mov $0x3f8, %dx; mov $1, %al; out %al, %dx
    mov $0x3f9, %dx; xor %al, %al; out %al, %dx
    mov $0x3fb, %dx; mov $3, %al; out %al, %dx
    mov $0x3fa, %dx; mov $0xc7, %al; out %al, %dx
    mov $0x3fc, %dx; mov $0x0b, %al; out %al, %dx

    PUTS "mbtest: eax="
    HEX %edi
    PUTS " ebx="
    HEX %esi
    PUTS " base="
    HEX %ebp
    PUTS " cr0="
    mov %cr0, %eax
    call hex32
    PUTS " eflags="
    HEX 32(%esp)
    PUTS " cs="
    mov %cs, %eax
    and $0xffff, %eax
    call hex32
    PUTS " ds="
    mov %ds, %eax
    and $0xffff, %eax
    call hex32
    call newline

    PUTS "mbtest: regs ecx="
    HEX 24(%esp)
    PUTS " edx="
    HEX 20(%esp)
    PUTS " esi="
    HEX 4(%esp)
    PUTS " edi="
    HEX (%esp)
    PUTS " ebp="
    HEX 8(%esp)
    PUTS " esp="
    mov 12(%esp), %eax
    add $4, %eax
    call hex32
    call newline

    PUTS "mbtest: cpu cr4="
    mov %cr4, %eax
    call hex32
    PUTS " efer="
    push %ebx
    mov $0x80000000, %eax
    cpuid
    cmp $0x80000001, %eax
    jb 3f
    mov $0x80000001, %eax
    cpuid
    test $(1 << 29), %edx           /* long mode: EFER exists */
    jz 3f
    mov $0xc0000080, %ecx
    rdmsr
    call hex32
    jmp 4f
3:  PUTS "none"
4:  pop %ebx
    call newline

    /* Each segment register: selector, then the descriptor's access
     * rights (LAR, 00f0ff00 bits) and limit (LSL), or "invalid". */
    PUTS "mbtest: seg cs "
    mov %cs, %eax
    call seginfo
    PUTS " ds "
    mov %ds, %eax
    call seginfo
    PUTS " es "
    mov %es, %eax
    call seginfo
    PUTS " fs "
    mov %fs, %eax
    call seginfo
    PUTS " gs "
    mov %gs, %eax
    call seginfo
    PUTS " ss "
    mov %ss, %eax
    call seginfo
    call newline

    cmp $0x36d76289, %edi
    je 2f
    PUTS "mbtest: bad magic"
    call newline
    mov $0x11, %al
    out %al, $0xf4
2:
#ifdef GENERATED
    /* The hash of each range in the table. */
    xor %edi, %edi
3:  cmp (range_table - _start_image + 12)(%ebp), %edi
    jae 5f
    PUTS "mbtest: range "
    DECIMAL %edi
    PUTS " addr="
    mov (range_table - _start_image + 16)(%ebp,%edi,8), %edx
    add %ebp, %edx
    sub (range_table - _start_image + 4)(%ebp), %edx
    HEX %edx
    PUTS " len="
    mov (range_table - _start_image + 20)(%ebp,%edi,8), %eax
    call hex32
    PUTS " fnv="
    mov (range_table - _start_image + 20)(%ebp,%edi,8), %ecx
    call fnv
    call hex32
    call newline
    inc %edi
    jmp 3b
5:
#else
    /* Was the bss zeroed? Sum the 4 KiB probe area (nothing writes it). */
    lea (bss_probe - _start_image)(%ebp), %ecx
    xor %eax, %eax
    mov $1024, %edx
3:  or (%ecx), %eax
    add $4, %ecx
    dec %edx
    jnz 3b
    test %eax, %eax
    jnz 4f
    PUTS "mbtest: bss zeroed"
    jmp 5f
4:  PUTS "mbtest: bss NOT zeroed"
5:  call newline
#endif

    PUTS "mbtest: total_size="
    HEX (%esi)
    PUTS " reserved="
    HEX 4(%esi)
    call newline
    lea 8(%esi), %ebx

tag_loop:
    PUTS "mbtest: tag "
    DECIMAL (%ebx)
    PUTS " size "
    DECIMAL 4(%ebx)
    mov (%ebx), %eax
    cmp $0, %eax
    je tags_done
    cmp $1, %eax
    je t_string
    cmp $2, %eax
    je t_string
    cmp $3, %eax
    je t_module
    cmp $4, %eax
    je t_meminfo
    cmp $6, %eax
    je t_mmap
    cmp $7, %eax
    je .Lt_vbe
    cmp $8, %eax
    je t_fb
    cmp $9, %eax
    je t_elf
    cmp $14, %eax
    je t_acpi
    cmp $15, %eax
    je t_acpi
    cmp $16, %eax
    je t_net
    cmp $21, %eax
    je t_base
    /* Any other tag: a hash of its payload. */
    PUTS " fnv="
    TAG_FNV 8
    jmp next_tag

t_string:
    PUTS " '"
    lea 8(%ebx), %ecx
    call puts
    PUTS "'"
    jmp next_tag
t_module:
    PUTS " start="
    HEX 8(%ebx)
    PUTS " end="
    HEX 12(%ebx)
    PUTS " sum="
    mov 8(%ebx), %ecx
    xor %eax, %eax
    xor %edx, %edx
6:  cmp 12(%ebx), %ecx
    jae 7f
    movzbl (%ecx), %edi
    add %edi, %eax
    inc %ecx
    jmp 6b
7:  call hex32
    PUTS " '"
    lea 16(%ebx), %ecx
    call puts
    PUTS "'"
    jmp next_tag
t_meminfo:
    PUTS " lower="
    DECIMAL 8(%ebx)
    PUTS " upper="
    DECIMAL 12(%ebx)
    jmp next_tag
t_mmap:
    PUTS " entry_size="
    DECIMAL 8(%ebx)
    PUTS " version="
    DECIMAL 12(%ebx)
    lea 16(%ebx), %edi
8:  mov %ebx, %eax
    add 4(%ebx), %eax
    cmp %eax, %edi
    jae next_tag
    call newline
    PUTS "mbtest:   mmap "
    HEX 4(%edi)
    HEX (%edi)
    PUTS " "
    HEX 12(%edi)
    HEX 8(%edi)
    PUTS " "
    DECIMAL 16(%edi)
    add 8(%ebx), %edi
    jmp 8b
t_fb:
    PUTS " addr="
    HEX 8(%ebx)
    PUTS " pitch="
    DECIMAL 16(%ebx)
    PUTS " width="
    DECIMAL 20(%ebx)
    PUTS " height="
    DECIMAL 24(%ebx)
    PUTS " bpp="
    DECIMAL 28(%ebx), movzbl
    PUTS " type="
    DECIMAL 29(%ebx), movzbl
    call newline
    PUTS "mbtest:   fb addr_hi="
    HEX 12(%ebx)
    PUTS " color_info_fnv="
    TAG_FNV 32
    jmp next_tag
.Lt_vbe:
    PUTS " mode="
    HEX 8(%ebx), movzwl
    PUTS " pm="
    HEX 10(%ebx)
    PUTS " version="
    HEX 20(%ebx), movzwl
    PUTS " modeattr="
    HEX 528(%ebx), movzwl
    PUTS " modebase="
    HEX 568(%ebx)
    jmp next_tag
t_elf:
    PUTS " num="
    DECIMAL 8(%ebx)
    PUTS " entsize="
    DECIMAL 12(%ebx)
    PUTS " shndx="
    DECIMAL 16(%ebx)
    /* Each section header: type, flags, address, size and, for a section
     * with bytes in memory, a hash of them. ELF32 headers are 40 bytes,
     * ELF64 64 (fields twice as wide; the high halves are printed too). */
    lea 20(%ebx), %edi
    xor %ecx, %ecx
10: cmp 8(%ebx), %ecx
    jae next_tag
    push %ecx
    call newline
    PUTS "mbtest:   shdr "
    DECIMAL (%esp)
    PUTS " type="
    HEX 4(%edi)
    cmpl $64, 12(%ebx)
    je 11f
    PUTS " flags="
    HEX 8(%edi)
    PUTS " addr="
    HEX 12(%edi)
    PUTS " size="
    HEX 20(%edi)
    mov 12(%edi), %edx
    mov 20(%edi), %esi
    jmp 12f
11: PUTS " flags="
    HEX 12(%edi)
    HEX 8(%edi)
    PUTS " addr="
    HEX 20(%edi)
    HEX 16(%edi)
    PUTS " size="
    HEX 36(%edi)
    HEX 32(%edi)
    mov 16(%edi), %edx
    mov 32(%edi), %esi
12: cmpl $8, 4(%edi)                /* SHT_NOBITS: nothing to hash */
    je 13f
    test %edx, %edx
    jz 13f
    cmp $0x100000, %esi
    ja 13f
    PUTS " fnv="
    mov %esi, %ecx
    call fnv
    call hex32
13: pop %ecx
    add 12(%ebx), %edi
    inc %ecx
    jmp 10b
t_acpi:
    PUTS " revision="
    DECIMAL 23(%ebx), movzbl
    call newline
    PUTS "mbtest:   rsdp fnv="
    TAG_FNV 8
    jmp next_tag
t_net:
    PUTS " op="
    DECIMAL 8(%ebx), movzbl
    call newline
    PUTS "mbtest:   net yiaddr="
    HEX 24(%ebx)
    PUTS " siaddr="
    HEX 28(%ebx)
    jmp next_tag
t_base:
    PUTS " load_base="
    HEX 8(%ebx)
    jmp next_tag

next_tag:
    call newline
    mov 4(%ebx), %eax
    add $7, %eax
    and $~7, %eax
    add %eax, %ebx
    jmp tag_loop

tags_done:
    call newline
    PUTS "mbtest: done"
    call newline
    mov $0x10, %al
    out %al, $0xf4
9:  hlt
    jmp 9b

/* fnv: FNV-1a 32-bit hash of %ecx bytes at %edx, into %eax. */
fnv:
    push %ecx
    push %edx
    push %esi
    mov $0x811c9dc5, %eax
    test %ecx, %ecx
    jz 2f
1:  movzbl (%edx), %esi
    xor %esi, %eax
    imul $0x01000193, %eax, %eax
    inc %edx
    dec %ecx
    jnz 1b
2:  pop %esi
    pop %edx
    pop %ecx
    ret

/* seginfo: selector in %ax: "SSSS/AAAAAAAA/LLLLLLLL" (selector, LAR
 * access rights, LSL limit) or "SSSS/invalid". */
seginfo:
    push %eax
    push %edx
    and $0xffff, %eax
    mov %eax, %edx
    call hex16
    mov $'/', %al
    call putc
    lar %edx, %eax
    jnz 1f
    and $0x00f0ff00, %eax
    call hex32
    mov $'/', %al
    call putc
    lsl %edx, %eax
    call hex32
    jmp 2f
1:  PUTS "invalid"
2:  pop %edx
    pop %eax
    ret

/* hex16: %ax as 4 hex digits */
hex16:
    push %ecx
    mov $4, %ecx
    shl $16, %eax
    call hexdigits
    pop %ecx
    ret

/* putc: %al */
putc:
    push %edx
    push %eax
    mov $0x3fd, %dx
1:  in %dx, %al
    test $0x20, %al
    jz 1b
    pop %eax
    mov $0x3f8, %dx
    out %al, %dx
    pop %edx
    ret

/* puts: %ecx = NUL-terminated string */
puts:
    push %eax
    push %ecx
1:  movb (%ecx), %al
    test %al, %al
    jz 2f
    call putc
    inc %ecx
    jmp 1b
2:  pop %ecx
    pop %eax
    ret

newline:
    push %eax
    mov $13, %al
    call putc
    mov $10, %al
    call putc
    pop %eax
    ret

/* hex32: %eax as 8 hex digits */
hex32:
    push %ecx
    mov $8, %ecx
    call hexdigits
    pop %ecx
    ret

/* hexdigits: the top %ecx nibbles of %eax */
hexdigits:
    push %eax
    push %ecx
    push %edx
    mov %eax, %edx
1:  rol $4, %edx
    mov %dl, %al
    and $0xf, %al
    cmp $10, %al
    jb 2f
    add $('a' - 10 - '0'), %al
2:  add $'0', %al
    call putc
    dec %ecx
    jnz 1b
    pop %edx
    pop %ecx
    pop %eax
    ret

/* dec_small: %eax in decimal */
dec_small:
    push %eax
    push %ecx
    push %edx
    push %esi
    xor %esi, %esi
    mov $10, %ecx
1:  xor %edx, %edx
    div %ecx
    push %edx
    inc %esi
    test %eax, %eax
    jnz 1b
2:  pop %eax
    add $'0', %al
    call putc
    dec %esi
    jnz 2b
    pop %esi
    pop %edx
    pop %ecx
    pop %eax
    ret

    .section .data
    .long 0x12345678

#ifndef GENERATED
    .section .bss
    .balign 16
bss_probe:
    .space 4096
stack:
    .space 8192
stack_top:
#endif
