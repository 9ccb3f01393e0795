/* Reference kernel entry: the Multiboot2 header, the 32-bit entry a
 * Multiboot2 loader jumps to (protected mode, paging off, EAX = 0x36d76289,
 * EBX = physical address of the boot information), and the climb to long
 * mode with the first 4 GiB identity mapped, then `kernel_main(magic, mbi)`.
 *
 * GDT selectors: 0x08 64-bit code, 0x10 flat data, 0x18 32-bit code,
 * 0x20 the 64-bit TSS (two slots, filled in by Rust before `ltr`).
 */

.set MB2_MAGIC, 0xE85250D6

.section .multiboot2.head, "a"
.balign 8
.globl mb2_header
mb2_header:
    .long MB2_MAGIC
    .long 0                 /* architecture: i386 protected mode */
    .long __mb2_len
    .long __mb2_checksum
    /* Information request, marked optional (flags bit 0) so that a loader
     * lacking one of these still boots the kernel; the self-check reports
     * what is missing instead. */
    .balign 8
1:  .word 1, 1
    .long 2f - 1b
    .long 1, 2, 3, 4, 6, 14, 15
2:

.section .multiboot2.end, "a"
.balign 8
    .word 0, 0
    .long 8

/* CR0_*, CR4_*, EFER and the macros LOAD_DATA_SEGMENTS, CLIMB_TO_LONG_MODE
 * and LONG_MODE_PAGE_TABLES come from
 * baremetal/longmode.S, shared with chainloader's modes.S and assembled
 * first. */

.section .text.entry, "ax"
.code32
.globl _start
_start:
    cli
    cld
    /* Keep what the loader handed over before any register is reused. */
    movl %eax, mb2_entry_magic
    movl %ebx, mb2_entry_info
    /* The loader's GDT may be gone (the specification says so): load ours. */
    lgdtl gdt_ptr
    ljmpl $0x18, $1f
1:
    LOAD_DATA_SEGMENTS 0x10
    /* .bss zeroed again, though a loader should have done it. */
    CLIMB_TO_LONG_MODE
    movl mb2_entry_magic(%rip), %edi
    movl mb2_entry_info(%rip), %esi
    call kernel_main
4:  cli
    hlt
    jmp 4b

/* Last-resort reset: an empty IDT makes the next exception a triple fault. */
.globl triple_fault
triple_fault:
    lidtq empty_idtr(%rip)
    int3
    jmp triple_fault

.section .data
.balign 8
.globl mb2_entry_magic, mb2_entry_info
mb2_entry_magic: .long 0
mb2_entry_info:  .long 0
.balign 16
.globl gdt
gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF    /* 0x08 64-bit code */
    .quad 0x00CF92000000FFFF    /* 0x10 flat data */
    .quad 0x00CF9A000000FFFF    /* 0x18 32-bit code */
    .quad 0, 0                  /* 0x20 TSS, filled in by arch::cpu */
gdt_end:
.balign 8
gdt_ptr:
    .word gdt_end - gdt - 1
    .quad gdt
.balign 8
empty_idtr:
    .word 0
    .quad 0

LONG_MODE_PAGE_TABLES

.section .bss
.balign 16
.skip 65536
.globl __stack_top
__stack_top:
