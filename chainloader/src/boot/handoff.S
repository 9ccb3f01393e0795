/* The Multiboot2 handoff: from 64-bit long mode to the machine state the
 * Multiboot2 specification promises a kernel on i386:
 *
 *   EAX = 0x36d76289, EBX = physical address of the boot information,
 *   CS = 32-bit flat code (0x18), DS/ES/FS/GS/SS = flat data (0x10),
 *   CR0.PE = 1, CR0.PG = 0, CR0.MP = 0, EFER.LME = 0, CR4 = 0 (as GRUB leaves it on a
 *   BIOS machine), IF = 0, DF = 0, A20 on (it has been since entry).
 *
 * The GDT is the one modes.S loaded (gdt_ptr); the kernel must load its own
 * before it reloads a segment register, as the specification says.
 *
 *   void mb2_handoff(uint32_t entry (edi), uint32_t mbi (esi)) noreturn
 */

.section .text.mb2_handoff, "ax"
.code64
.globl mb2_handoff
mb2_handoff:
    cli
    cld
    /* Far return into the 32-bit code segment: compatibility mode. This
     * code and its stack are identity-mapped below 1 MiB, so the same
     * addresses stay valid once paging is off. */
    pushq $0x18
    leaq 1f(%rip), %rax
    pushq %rax
    lretq
.code32
1:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
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
    movl %esi, %ebx
    movl $0x36d76289, %eax
    xorl %ecx, %ecx
    xorl %edx, %edx
    xorl %esi, %esi
    xorl %ebp, %ebp
    jmp *%edi
