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
 * (an optional framebuffer tag with no preference, 0x0x0, as Xen has).
 */
    .code32
    .section .text
    .globl _start_image, entry
_start_image:
    jmp entry

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

/* Prints the string that follows the macro in the code stream. */
.macro PUTS s
    call 78f
    .asciz "\s"
78: pop %ecx
    call puts
.endm

.macro HEX reg
    mov \reg, %eax
    call hex32
.endm

entry:
    cli
    mov %eax, %edi
    mov %ebx, %esi
    call 1f
1:  pop %ebp
    sub $(1b - _start_image), %ebp
    lea (stack_top - _start_image)(%ebp), %esp

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
    pushf
    pop %eax
    call hex32
    PUTS " cs="
    mov %cs, %eax
    and $0xffff, %eax
    call hex32
    PUTS " ds="
    mov %ds, %eax
    and $0xffff, %eax
    call hex32
    call newline

    cmp $0x36d76289, %edi
    je 2f
    PUTS "mbtest: bad magic"
    call newline
    mov $0x11, %al
    out %al, $0xf4
2:
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

    PUTS "mbtest: total_size="
    HEX (%esi)
    PUTS " reserved="
    HEX 4(%esi)
    call newline
    lea 8(%esi), %ebx

tag_loop:
    PUTS "mbtest: tag "
    mov (%ebx), %eax
    call dec_small
    PUTS " size "
    mov 4(%ebx), %eax
    call dec_small
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
    mov 8(%ebx), %eax
    call dec_small
    PUTS " upper="
    mov 12(%ebx), %eax
    call dec_small
    jmp next_tag
t_mmap:
    PUTS " entry_size="
    mov 8(%ebx), %eax
    call dec_small
    PUTS " version="
    mov 12(%ebx), %eax
    call dec_small
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
    mov 16(%edi), %eax
    call dec_small
    add 8(%ebx), %edi
    jmp 8b
t_fb:
    PUTS " addr="
    HEX 8(%ebx)
    PUTS " pitch="
    mov 16(%ebx), %eax
    call dec_small
    PUTS " width="
    mov 20(%ebx), %eax
    call dec_small
    PUTS " height="
    mov 24(%ebx), %eax
    call dec_small
    PUTS " bpp="
    movzbl 28(%ebx), %eax
    call dec_small
    PUTS " type="
    movzbl 29(%ebx), %eax
    call dec_small
    jmp next_tag
.Lt_vbe:
    PUTS " mode="
    movzwl 8(%ebx), %eax
    call hex32
    PUTS " pm="
    HEX 10(%ebx)
    PUTS " version="
    movzwl 20(%ebx), %eax
    call hex32
    PUTS " modeattr="
    movzwl 528(%ebx), %eax
    call hex32
    PUTS " modebase="
    HEX 568(%ebx)
    jmp next_tag
t_elf:
    PUTS " num="
    mov 8(%ebx), %eax
    call dec_small
    PUTS " entsize="
    mov 12(%ebx), %eax
    call dec_small
    PUTS " shndx="
    mov 16(%ebx), %eax
    call dec_small
    jmp next_tag
t_acpi:
    PUTS " revision="
    movzbl 23(%ebx), %eax
    call dec_small
    jmp next_tag
t_net:
    PUTS " op="
    movzbl 8(%ebx), %eax
    call dec_small
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
    push %eax
    push %ecx
    push %edx
    mov %eax, %edx
    mov $8, %ecx
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

    .section .bss
    .balign 16
bss_probe:
    .space 4096
stack:
    .space 8192
stack_top:
