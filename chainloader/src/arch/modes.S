/* chainloader.0 processor-mode code: the real-mode entry from the PXE ROM,
 * the climb to long mode, and the thunk that drops back to real mode to call
 * the PXE API or a BIOS interrupt and then returns to long mode.
 *
 * GDT selectors (see `gdt` below):
 *   0x08 64-bit code   0x10 flat data   0x18 32-bit code
 *   0x20 16-bit code   0x28 16-bit data
 *
 * Everything here is in .text16 (below 64 KiB, segment 0), so real-mode code
 * addresses every variable with a %cs: override and never depends on DS.
 */

/* CR0_*, CR4_*, EFER and the macros LOAD_DATA_SEGMENTS, CLIMB_TO_LONG_MODE,
 * ENTER_LONG_MODE and LONG_MODE_PAGE_TABLES come from
 * baremetal/longmode.S, shared with the kernel's entry and assembled first. */

/* From real mode (interrupts off), into 32-bit protected mode with flat data
 * segments, going on after the macro. The return from every real-mode call
 * does this again, since the callee may have changed GDTR and CR0. */
.macro ENTER_PROTECTED_MODE
    lgdtl %cs:gdt_ptr
    movl %cr0, %eax
    orl $CR0_PE, %eax
    movl %eax, %cr0
    ljmpl $0x18, $.Lprotected\@
.code32
.Lprotected\@:
    LOAD_DATA_SEGMENTS 0x10
.endm

.section .text16.entry, "awx"
.code16
.globl _start
_start:
    cli
    /* Some ROMs enter at 07C0:0000 rather than 0000:7C00. */
    ljmp $0, $1f
1:
    /* Keep what the ROM handed us: PXENV+ at ES:BX, !PXE at SS:[SP+4], and
     * SS:SP itself, which becomes the stack for every later real-mode call
     * (some PXE stacks only work on the stack they started us on). */
    movw %ss, %cs:pxe_entry_ss
    movw %sp, %cs:pxe_entry_sp
    movw %es, %cs:pxe_entry_es
    movw %bx, %cs:pxe_entry_bx
    movw %sp, %bp
    movl %ss:4(%bp), %eax
    movl %eax, %cs:pxe_entry_bang
    cld
    xorw %ax, %ax
    movw %ax, %ds

    /* A20: ask the BIOS, then use the fast gate; both are harmless when A20
     * is already on (it is, under any PXE ROM that has used extended memory). */
    movw $0x2401, %ax
    int $0x15
    inb $0x92, %al
    testb $2, %al
    jnz 2f
    orb $2, %al
    andb $0xfe, %al
    outb %al, $0x92
2:
    cli
    ENTER_PROTECTED_MODE
    CLIMB_TO_LONG_MODE
    call chainloader_main
5:  hlt
    jmp 5b

/* ---------------------------------------------------------------------
 * rm_thunk(): run one real-mode call described by `rm_regs`, then return.
 * Called from 64-bit Rust (System V ABI); preserves the callee-saved
 * registers and the interrupt flag state (interrupts stay off in long mode).
 */
.code64
.globl rm_thunk
rm_thunk:
    pushq %rbx
    pushq %rbp
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, saved_rsp(%rip)
    sidt saved_idtr(%rip)
    /* To 32-bit compatibility mode. */
    pushq $0x18
    leaq 6f(%rip), %rax
    pushq %rax
    lretq
.code32
6:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %ss
    /* Leave long mode: paging off, then EFER.LME off. */
    movl %cr0, %eax
    andl $~CR0_PG, %eax
    movl %eax, %cr0
    movl $MSR_EFER, %ecx
    rdmsr
    andl $~EFER_LME, %eax
    wrmsr
    ljmpl $0x20, $7f
.code16
7:
    LOAD_DATA_SEGMENTS 0x28
    movl %cr0, %eax
    andl $~CR0_PE, %eax
    movl %eax, %cr0
    ljmp $0, $8f
8:
    xorw %ax, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    lidtl %cs:rm_idtr
    movw %cs:pxe_entry_ss, %ss
    /* The whole of %esp: some ROM code uses 32-bit stack addressing, and
     * the upper half would otherwise be what long mode left there. */
    movzwl %cs:pxe_entry_sp, %esp
    /* The caller's stack words go on the real-mode stack, rm_stack[0] last
     * (so it sits right above the return address). */
    movw %cs:rm_nstack, %cx
9:  testw %cx, %cx
    jz 10f
    decw %cx
    movw %cx, %bx
    shlw $1, %bx
    pushw %cs:rm_stack(%bx)
    jmp 9b
10:
    /* An interrupt is a far call to its IVT vector with FLAGS pushed. */
    cmpw $0xffff, %cs:rm_intno
    je 11f
    movw %cs:rm_intno, %bx
    shlw $2, %bx
    movl (%bx), %eax
    movl %eax, %cs:rm_target
11:
    movl %cs:rm_eax, %eax
    movl %cs:rm_ebx, %ebx
    movl %cs:rm_ecx, %ecx
    movl %cs:rm_edx, %edx
    movl %cs:rm_esi, %esi
    movl %cs:rm_edi, %edi
    movl %cs:rm_ebp, %ebp
    movw %cs:rm_es, %es
    movw %cs:rm_ds, %ds
    sti
    cmpw $0xffff, %cs:rm_intno
    je 12f
    pushfw
    cli
12:
    lcallw *%cs:rm_target
    /* The flags as the callee left them (DF included), then DF clear and
     * interrupts off. The callee may have changed any register, the upper
     * halves of %esp and %ebp included (iPXE 385b7a623): nothing below
     * relies on one; long-mode state comes back from memory. */
    pushfl
    cli
    cld
    popl %cs:rm_eflags
    movl %esp, %cs:rm_esp_out
    movl %eax, %cs:rm_eax
    movl %ebx, %cs:rm_ebx
    movl %ecx, %cs:rm_ecx
    movl %edx, %cs:rm_edx
    movl %esi, %cs:rm_esi
    movl %edi, %cs:rm_edi
    movl %ebp, %cs:rm_ebp
    movw %ds, %cs:rm_ds
    movw %es, %cs:rm_es
    /* Back up: protected mode, then long mode. The callee may have changed
     * GDTR, IDTR, CR0, CR3, CR4 and EFER; all are set again. */
    xorw %ax, %ax
    movw %ax, %ds
    ENTER_PROTECTED_MODE
    ENTER_LONG_MODE 14f
.code64
14:
    LOAD_DATA_SEGMENTS 0x10
    movq saved_rsp(%rip), %rsp
    lidt saved_idtr(%rip)
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbp
    popq %rbx
    ret

/* --------------------------------------------------------------------- */
.section .data16, "aw"
.balign 16
gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF    /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF    /* 0x10: flat data */
    .quad 0x00CF9A000000FFFF    /* 0x18: 32-bit code */
    .quad 0x00009A000000FFFF    /* 0x20: 16-bit code, base 0, limit 64 KiB */
    .quad 0x000092000000FFFF    /* 0x28: 16-bit data, base 0, limit 64 KiB */
gdt_end:
.balign 4
    .word 0
gdt_ptr:
    .word gdt_end - gdt - 1
    .long gdt
rm_idtr:
    .word 0x3ff
    .long 0
.balign 8
saved_idtr:
    .word 0
    .quad 0
.balign 8
saved_rsp:
    .quad 0

/* What the ROM handed over; read by arch::pxe_entry. */
.balign 4
.globl pxe_entry_regs
pxe_entry_regs:
pxe_entry_ss:   .word 0
pxe_entry_sp:   .word 0
pxe_entry_es:   .word 0
pxe_entry_bx:   .word 0
pxe_entry_bang: .long 0

/* One real-mode call; layout mirrors arch::thunk::RealModeCall. */
.balign 4
.globl rm_regs
rm_regs:
rm_eax:    .long 0
rm_ebx:    .long 0
rm_ecx:    .long 0
rm_edx:    .long 0
rm_esi:    .long 0
rm_edi:    .long 0
rm_ebp:    .long 0
rm_eflags: .long 0
rm_ds:     .word 0
rm_es:     .word 0
rm_target: .long 0          /* offset (low word), segment (high word) */
rm_intno:  .word 0          /* 0xffff: far call to rm_target */
rm_nstack: .word 0
rm_stack:  .space 16
rm_esp_out: .long 0         /* out: %esp as the callee returned it */

LONG_MODE_PAGE_TABLES

/* 40 KiB: measured use is about 18 KiB (a gzip kernel and a gzip module:
 * the lowest byte of the stack ever written, read back with QEMU's
 * pmemsave); base memory has no room for the 64 KiB this once was. */
.section .bss.stack, "aw", @nobits
.balign 16
    .space 40 * 1024
__stack_top:
