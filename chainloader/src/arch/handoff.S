/* The Multiboot2 handoff: from 64-bit long mode to the machine state GRUB 2
 * hands a Multiboot2 kernel on a BIOS machine (grub-core/lib/i386/
 * relocator32.S with MULTIBOOT2_INITIAL_STATE, include/grub/i386/
 * multiboot.h), which is what kernels were tested against:
 *
 *   EAX = 0x36d76289, EBX = physical address of the boot information,
 *   ECX = EDX = ESI = EDI = EBP = 0, ESP = 0x7FF00 (GRUB's "some location in
 *   low memory" for kernels that push before setting up a stack),
 *   CS = 0x10 (32-bit flat code), DS/ES/FS/GS/SS = 0x18 (flat data), GRUB's
 *   selector numbers, from a GDT of our own laid out like GRUB's;
 *   CR0 = PE|ET (PG and MP off), EFER.LME = 0, CR4 = 0, IF = 0, DF = 0,
 *   A20 on (it has been since entry).
 *
 * The kernel must load its own GDT before it reloads a segment register, as
 * the specification says; 0x7FF00 lies in the base memory the chainloader
 * keeps out of every placement, above its .bss.
 *
 *   void mb2_handoff(uint32_t entry (edi), uint32_t mbi (esi)) noreturn
 */

.section .text.mb2_handoff, "ax"
.code64
.globl mb2_handoff
mb2_handoff:
    cli
    cld
    /* The entry goes to memory: the jump must not need a register, since
     * every general register has a value the kernel may look at. */
    movl %edi, mb2_entry(%rip)
    /* Far return into modes.S's 32-bit code segment (0x18 there):
     * compatibility mode. This code and its data are identity-mapped below
     * 1 MiB, so the same addresses stay valid once paging is off. */
    pushq $0x18
    leaq 1f(%rip), %rax
    pushq %rax
    lretq
.code32
1:
    /* Paging off leaves long mode (LMA clears), then LME off. MP goes too:
     * GRUB hands over CR0 = PE|ET and kernels may expect FPU defaults. */
    movl %cr0, %eax
    andl $0x7ffffffd, %eax
    movl %eax, %cr0
    movl $0xC0000080, %ecx
    rdmsr
    andl $~0x00000100, %eax
    wrmsr
    xorl %eax, %eax
    movl %eax, %cr4
    /* GRUB's selectors: code 0x10, data 0x18. */
    lgdtl mb2_gdt_ptr
    ljmpl $0x10, $2f
2:
    movw $0x18, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl $0x7ff00, %esp
    movl %esi, %ebx
    movl $0x36d76289, %eax
    xorl %ecx, %ecx
    xorl %edx, %edx
    xorl %esi, %esi
    xorl %edi, %edi
    xorl %ebp, %ebp
    jmp *mb2_entry

.section .data.mb2_handoff, "aw"
.balign 8
mb2_gdt:
    .quad 0
    .quad 0
    .quad 0x00CF9A000000FFFF    /* 0x10: 32-bit flat code */
    .quad 0x00CF92000000FFFF    /* 0x18: flat data */
mb2_gdt_ptr:
    .word mb2_gdt_ptr - mb2_gdt - 1
    .long mb2_gdt
mb2_entry:
    .long 0

/* Back to the assembler mode the rest of the crate's global asm expects. */
.code64
