/*
 * floor.0: the bench's floor. A PXE network boot program that does
 * nothing: it prints one line on COM1 and ends QEMU through isa-debug-exit.
 * Timed from QEMU's start to that line, it is what every loader pays
 * before its first instruction (firmware, the ROM's DHCP, the NBP's TFTP),
 * so that `scripts/bench` can subtract it, measured in the same run.
 * The ROM starts an NBP at 0:7C00 (PXE 2.1, section 4.4.5).
 */
    .code16
    .text
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    cld
    mov $message, %si
next:
    lodsb
    test %al, %al
    jz done
    mov %al, %ah
    mov $0x3fd, %dx         /* 16550 line status: wait for THR empty */
wait:
    in %dx, %al
    test $0x20, %al
    jz wait
    mov $0x3f8, %dx
    mov %ah, %al
    out %al, %dx
    jmp next
done:
    mov $0x01, %al          /* QEMU exits with status (1 << 1) | 1 = 3 */
    out %al, $0xf4
halt:
    hlt
    jmp halt

message:
    .asciz "\r\nfloor-nbp: started\r\n"
