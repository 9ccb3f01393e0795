/* The climb from 32-bit protected mode to long mode, shared by the two
 * bare-metal bins: chainloader's modes.S (at entry, and on every return from
 * a real-mode call) and the kernel's entry.S (at the Multiboot2 entry). Each
 * names this file before its own in one `global_asm!`, so this file only
 * defines constants and macros: it emits nothing until a macro is used.
 *
 * Both bins use the same GDT selectors for these: 0x08 64-bit code,
 * 0x10 flat data.
 */

.set CR0_PE,   0x00000001
.set CR0_MP,   0x00000002
.set CR0_EM,   0x00000004
.set CR0_PG,   0x80000000
.set CR4_PAE,  0x00000020
.set CR4_OSFXSR, 0x00000200
.set CR4_OSXMMEXCPT, 0x00000400
.set MSR_EFER, 0xC0000080
.set EFER_LME, 0x00000100

/* DS, ES, FS, GS and SS = `sel` (through %ax). */
.macro LOAD_DATA_SEGMENTS sel
    movw $\sel, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
.endm

/* Zero __bss_start..__bss_end (32-bit code, flat DS/ES). */
.macro ZERO_BSS
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb
.endm

/* The page tables IDENTITY_MAP_4GIB fills, in .bss.pagetables (which each
 * link.ld puts first in .bss, page-aligned). */
.macro LONG_MODE_PAGE_TABLES
.section .bss.pagetables, "aw", @nobits
.balign 4096
pml4: .skip 4096
pdpt: .skip 4096
pd:   .skip 4096 * 4
.endm

/* Identity-map the first 4 GiB with 2 MiB pages: PML4[0] -> PDPT,
 * PDPT[0..4] -> four page directories (32-bit code, tables zeroed). */
.macro IDENTITY_MAP_4GIB
    movl $pdpt, %eax
    orl $3, %eax
    movl %eax, pml4
    xorl %ecx, %ecx
.Lpdpt\@:
    movl %ecx, %eax
    shll $12, %eax
    addl $pd, %eax
    orl $3, %eax
    movl %eax, pdpt(,%ecx,8)
    incl %ecx
    cmpl $4, %ecx
    jb .Lpdpt\@
    xorl %ecx, %ecx             /* ecx = 2 MiB page number, 0..2047 */
.Lpd\@:
    movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax             /* present, writable, 2 MiB */
    movl %eax, pd(,%ecx,8)
    incl %ecx
    cmpl $2048, %ecx
    jb .Lpd\@
.endm

/* From 32-bit protected mode with paging off, into long mode at `target`
 * (64-bit code selector 0x08). Sets every control register from scratch,
 * since a BIOS or PXE call may have changed any of them. */
.macro ENTER_LONG_MODE target
    movl %cr4, %eax
    orl $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
    movl %eax, %cr4
    movl $pml4, %eax
    movl %eax, %cr3
    movl $MSR_EFER, %ecx
    rdmsr
    orl $EFER_LME, %eax
    wrmsr
    movl %cr0, %eax
    andl $~CR0_EM, %eax
    orl $(CR0_PG | CR0_MP | CR0_PE), %eax
    movl %eax, %cr0
    ljmpl $0x08, $\target
.endm

/* A bin's climb at its entry, from 32-bit protected mode with flat data
 * segments (LOAD_DATA_SEGMENTS 0x10) and paging off: the stack at
 * __stack_top, .bss zeroed (the page tables and the stack are in it), the
 * first 4 GiB identity-mapped, long mode. Goes on after the macro in 64-bit
 * code with flat data segments, %rsp = __stack_top and %rbp = 0 (the end
 * of the frame chain). */
.macro CLIMB_TO_LONG_MODE
    movl $__stack_top, %esp
    ZERO_BSS
    IDENTITY_MAP_4GIB
    ENTER_LONG_MODE .Llong\@
.code64
.Llong\@:
    LOAD_DATA_SEGMENTS 0x10
    movabsq $__stack_top, %rsp
    xorl %ebp, %ebp
.endm
