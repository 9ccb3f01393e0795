/*
 * pxeshim.0: a quirk-injecting PXE stack for the end-to-end tests. Never
 * shipped; scripts/build puts it in target/dist/pxeshim.0.
 *
 * The PXE ROM loads it as the NBP. It
 *   1. moves itself to the top of base memory and lowers the BIOS base
 *      memory size (40:13) below itself, so that INT 12h keeps it safe;
 *   2. finds the ROM's PXE API (!PXE at SS:[SP+4], PXENV+ at ES:BX);
 *   3. reads `pxeshim.cfg` (quirk names, separated by white space, `#`
 *      comments) and then `chainloader.0` (to 0:7C00) through the ROM's own
 *      TFTP API (PXENV_TFTP_READ_FILE), as PXELINUX reads its files;
 *   4. builds its own !PXE and PXENV+ with valid checksums whose entry
 *      points are its wrapper, hooks INT 1Ah AX=5650h to return its PXENV+,
 *      and starts chainloader.0 at 0:7C00 with the registers a PXE 2.1 ROM
 *      gives an NBP (ES:BX = PXENV+, SS:[SP+4] = !PXE, the ROM's stack).
 * The wrapper passes every call to the real ROM, except where a quirk that
 * the config names changes what happens. Each quirk is modelled on a real
 * ROM; the comment at each names the source (iPXE commit ids refer to
 * ipxe/ipxe, whose UNDI driver carries the workarounds).
 *
 * Position independent: linked at offset 0 and run with CS = its own
 * segment. Everything is addressed with %cs: overrides, so the wrapper needs
 * no DS of its own and runs on its caller's stack.
 */

.set SHIM_KIB, 8                /* base memory taken (image + buffers) */

/* quirk bits */
.set Q_NO_TX_COMPLETE,  1<<0
.set Q_PUNKNOWN_HEADER, 1<<1
.set Q_IRQ_NEVER,       1<<2
.set Q_IRQ_ZERO,        1<<3
.set Q_IRQ_HIGH,        1<<4
.set Q_RX_FRAGMENTS,    1<<5
.set Q_RX_BAD_LENGTH,   1<<6
.set Q_ISR_BUSY,        1<<7
.set Q_MEDIA_TEST,      1<<8
.set Q_MEDIA_TEST_DEAD, 1<<9
.set Q_ZERO_MAC,        1<<10
.set Q_ONES_MAC,        1<<11
.set Q_NICTYPE_UNWRITTEN, 1<<12
.set Q_IRQ_STORM,       1<<13
.set Q_CLOBBER,         1<<14
.set Q_ROM_STACK_ONLY,  1<<15
.set Q_TX_TRANSIENT,    1<<16
.set Q_PXENV_ONLY,      1<<17
.set Q_INT1A_ONLY,      1<<18
.set Q_SLOW,            1<<19
.set Q_SULK,            1<<20
.set Q_NO_MAC,          1<<21

/* PXE opcodes */
.set UNDI_INITIALIZE,   0x0001
.set UNDI_OPEN,         0x0006
.set UNDI_TRANSMIT,     0x0008
.set UNDI_GET_INFORMATION, 0x000C
.set UNDI_GET_NIC_TYPE, 0x0012
.set UNDI_ISR,          0x0014
.set TFTP_READ_FILE,    0x0023
.set GET_CACHED_INFO,   0x0071

.set ISR_IN_START, 1
.set ISR_IN_PROCESS, 2
.set ISR_IN_GET_NEXT, 3
.set ISR_OUT_OURS, 0
.set ISR_OUT_NOT_OURS, 1
.set ISR_OUT_DONE, 0
.set ISR_OUT_TRANSMIT, 2
.set ISR_OUT_RECEIVE, 3
.set ISR_OUT_BUSY, 4

.code16
.text
.globl _start
_start:
    cli
    /* Loaded at linear 0x7C00: run as 07C0:offset (linked at 0). */
    ljmp $0x07C0, $1f
1:
    movw %ss, %cs:rom_ss
    movw %sp, %cs:rom_sp
    movw %es, %cs:rom_es
    movw %bx, %cs:rom_bx
    movw %sp, %bp
    movl 4(%bp), %eax
    movl %eax, %cs:rom_bang
    cld

    /* 1. To the top of base memory, below whatever is there already. */
    xorw %ax, %ax
    movw %ax, %ds
    movw 0x413, %ax
    subw $SHIM_KIB, %ax
    movw %ax, 0x413
    shlw $6, %ax                /* KiB -> paragraphs */
    movw %ax, %es
    movw %cs, %ax
    movw %ax, %ds
    xorw %si, %si
    xorw %di, %di
    movw $image_end, %cx
    rep movsb
    pushw %es
    pushw $relocated
    lretw
relocated:
    movw %cs, %ax
    movw %ax, %ds
    sti
    movw $msg_hello, %si
    call puts
    movw %cs, %ax
    call puthex16
    call crlf

    /* 2. The ROM's entry points: !PXE from the stack, else via PXENV+. */
    movl rom_bang, %eax
    call check_bang
    jc 2f
    movl %eax, real_bang_entry
2:  lesw rom_bx, %bx            /* ES:BX = rom_es:rom_bx (stored adjacently) */
    cmpl $0x4e455850, %es:(%bx) /* "PXEN" */
    jne 3f
    movl %es:0x0a(%bx), %eax
    movl %eax, real_rm_entry
    movw %bx, pxenv_src_off
    movw %es, pxenv_src_seg
    cmpl $0, real_bang_entry
    jne 3f
    cmpw $0x0201, %es:6(%bx)
    jb 3f
    movl %es:0x28(%bx), %eax
    movl %eax, rom_bang
    call check_bang
    jc 3f
    movl %eax, real_bang_entry
3:  cmpl $0, real_bang_entry
    jne 4f
    cmpl $0, real_rm_entry
    jne 4f
    movw $msg_nopxe, %si
    jmp fatal
4:
    /* The MAC and IRQ (for the header quirk and the storm). */
    movw $info_blk, %di
    movw $UNDI_GET_INFORMATION, %bx
    call setup_call
    movw info_blk+4, %ax
    movw %ax, nic_irq
    movl info_blk+12, %eax
    movl %eax, nic_mac
    movw info_blk+16, %ax
    movw %ax, nic_mac+4

    /* The TFTP server: the boot server of the cached reply, else the
     * DHCPACK's next-server. */
    movw $3, %cx
5:  movw %cx, cached_blk+2
    movw $0, cached_blk+4
    movl $0, cached_blk+6
    movw $cached_blk, %di
    movw $GET_CACHED_INFO, %bx
    call setup_call
    testw %ax, %ax
    jnz 14f
    lesw cached_blk+6, %bx
    movl %es:20(%bx), %eax      /* siaddr */
    movl %eax, tftp_server
    testl %eax, %eax
    jnz 6f
14: decw %cx
    cmpw $2, %cx
    jae 5b
    movw $msg_noserver, %si
    jmp fatal
6:
    /* 3. The config: quirks. A missing config means none. */
    movw $name_cfg, %si
    movw %cs, %ax
    movzwl %ax, %eax
    shll $4, %eax
    addl $cfg_buf, %eax
    movl $511, %ecx
    call tftp_read
    jnc 15f
    movw $msg_nocfg, %si
    call puts
    movw rf_blk, %ax
    call puthex16
    call crlf
    jmp 7f
15: movw rf_blk+130, %cx        /* BufferSize: bytes read */
    cmpw $511, %cx
    jbe 8f
    movw $511, %cx
8:  movw $cfg_buf, %si
    addw %cx, %si
    movb $0, (%si)
    call parse_config
7:  movw $msg_quirks, %si
    call puts
    call print_quirks
    call crlf

    /* chainloader.0 to 0:7C00, up to our own copy. */
    movw $name_nbp, %si
    movl $0x7C00, %eax
    movw %cs, %cx
    movzwl %cx, %ecx
    shll $4, %ecx
    subl %eax, %ecx
    call tftp_read
    jnc 9f
    movw $msg_nbpfail, %si
    call puts
    movw rf_blk, %ax
    call puthex16
    movw $msg_empty, %si
    jmp fatal
9:  movw $msg_loaded, %si
    call puts
    movl rf_blk+130, %eax
    shrl $16, %eax
    call puthex16
    movw rf_blk+130, %ax
    call puthex16
    call crlf

    /* 4. Our own !PXE and PXENV+, pointing to the wrapper. */
    call build_structs
    /* INT 1Ah AX=5650h finds our PXENV+. */
    cli
    xorw %ax, %ax
    movw %ax, %es
    movl %es:0x68, %eax
    movl %eax, old_int1a
    movw $int1a_hook, %es:0x68
    movw %cs, %es:0x6a

    /* HP Gen9 (iPXE 4134280bc, 3bb61c33c): the NIC's IRQ is left unmasked
     * at the PIC when the NBP starts, and the NIC asserts it as soon as a
     * frame arrives; the BIOS default handler only sends EOI, so the level
     * interrupt comes back at once: a storm for an NBP without a handler. */
    testl $Q_IRQ_STORM, quirks
    jz 10f
    movw nic_irq, %cx
    cmpw $15, %cx
    ja 10f
    testw %cx, %cx
    jz 10f
    movw $1, %bx
    shlw %cl, %bx
    notw %bx
    inb $0x21, %al
    andb %bl, %al
    cmpw $8, %cx
    jb 11f
    andb $0xfb, %al             /* the cascade */
11: outb %al, $0x21
    inb $0xa1, %al
    andb %bh, %al
    outb %al, $0xa1
10:
    movw $msg_start, %si
    call puts

    /* Start chainloader.0 as a ROM starts an NBP: on the ROM's stack,
     * ES:BX = PXENV+, SS:[SP+4] = !PXE. A PXE 2.0 ROM has no !PXE. */
    cli
    movw rom_ss, %ss
    movw rom_sp, %sp
    movw %sp, %bp
    movw $bang_struct, %ax
    movw %cs, %dx
    testl $(Q_PXENV_ONLY | Q_INT1A_ONLY), quirks
    jz 12f
    xorw %ax, %ax
    xorw %dx, %dx
12: movw %ax, 4(%bp)
    movw %dx, 6(%bp)
    movw $pxenv_struct, %bx
    movw %cs, %ax
    movw %ax, %es
    testl $Q_INT1A_ONLY, quirks
    jz 13f
    /* Only INT 1Ah finds the stack: ES:BX points at nothing. */
    xorw %bx, %bx
    movw %bx, %es
13: xorl %eax, %eax
    xorl %ecx, %ecx
    xorl %edx, %edx
    xorl %esi, %esi
    xorl %edi, %edi
    movw %ax, %ds
    sti
    ljmp $0, $0x7C00

/* ---- setup helpers (DS = CS) -------------------------------------------- */

/* check_bang: EAX = far pointer; CF set unless it is a !PXE; else EAX =
 * its EntryPointSP. */
check_bang:
    pushw %es
    pushw %bx
    testl %eax, %eax
    jz 1f
    movw %ax, %bx
    shrl $16, %eax
    movw %ax, %es
    cmpl $0x45585021, %es:(%bx) /* "!PXE" */
    jne 1f
    movl %es:0x10(%bx), %eax
    clc
    jmp 2f
1:  stc
2:  popw %bx
    popw %es
    ret

/* A call to the real ROM from setup: BX = opcode, DI = block in our segment. */
setup_call:
    pushw %es
    pushw %cx
    movw %cs, %ax
    movw %ax, %es
    call real_call
    popw %cx
    popw %es
    ret

/* tftp_read: SI = file name, EAX = physical buffer, ECX = its size.
 * CF set on failure. */
tftp_read:
    movl %eax, %edx
    movw $rf_blk, %di
    pushw %cx
    movw $79, %cx
1:  movw $0, (%di)
    addw $2, %di
    loop 1b
    popw %cx
    movw $rf_blk+2, %di
2:  lodsb
    movb %al, (%di)
    incw %di
    testb %al, %al
    jnz 2b
    movl %ecx, rf_blk+130
    movl %edx, rf_blk+134
    movl tftp_server, %eax
    movl %eax, rf_blk+138
    movw $rf_blk, %di
    movw $TFTP_READ_FILE, %bx
    call setup_call
    testw %ax, %ax
    jz 3f
    stc
    ret
3:  clc
    ret

/* parse_config: the NUL-terminated text at cfg_buf. */
parse_config:
    movw $cfg_buf, %si
1:  /* skip white space */
    movb (%si), %al
    testb %al, %al
    jz 9f
    cmpb $'#', %al
    je 5f
    cmpb $' ', %al
    ja 2f
    incw %si
    jmp 1b
5:  /* comment to end of line */
    movb (%si), %al
    testb %al, %al
    jz 9f
    incw %si
    cmpb $'\n', %al
    jne 5b
    jmp 1b
2:  /* a token: SI..DX */
    movw %si, %dx
3:  movb (%si), %al
    cmpb $' ', %al
    jbe 4f
    incw %si
    jmp 3b
4:  pushw %si
    call quirk_lookup
    popw %si
    jmp 1b
9:  ret

/* quirk_lookup: the token DX..SI (exclusive). Sets its bit, or stops with
 * a message naming it. */
quirk_lookup:
    movw %si, %cx
    subw %dx, %cx               /* token length */
    movw $quirk_table, %bx
1:  movw (%bx), %di             /* name */
    testw %di, %di
    jz 8f
    pushw %si
    pushw %cx
    movw %dx, %si
2:  movb (%di), %al
    testb %al, %al
    jz 3f
    cmpb (%si), %al
    jne 4f
    incw %si
    incw %di
    loop 2b
    cmpb $0, (%di)              /* token ended: the name must end too */
    jne 4f
    popw %cx
    popw %si
    movl 2(%bx), %eax
    orl %eax, quirks
    ret
3:  /* name ended before the token */
4:  popw %cx
    popw %si
    addw $6, %bx
    jmp 1b
8:  movw $msg_unknown, %si
    call puts
    movw %dx, %si
5:  lodsb
    cmpb $' ', %al
    jbe 6f
    call putc
    jmp 5b
6:  movw $msg_empty, %si
    jmp fatal

print_quirks:
    movw $quirk_table, %bx
1:  movw (%bx), %si
    testw %si, %si
    jz 3f
    movl 2(%bx), %eax
    testl %eax, quirks
    jz 2f
    pushw %bx
    call puts
    movb $' ', %al
    call putc
    popw %bx
2:  addw $6, %bx
    jmp 1b
3:  ret

/* build_structs: copies of the ROM's !PXE and PXENV+ with our entries. */
build_structs:
    movl rom_bang, %eax
    call check_bang
    jc 3f
    movl rom_bang, %eax
    movw %ax, %si
    shrl $16, %eax
    movw %cs, %dx
    movw %dx, %es
    pushw %ds
    movw %ax, %ds
    movw $bang_struct, %di
    movw $0x58, %cx
    rep movsb
    popw %ds
    movb $0x58, bang_struct+4
    movw $bang_entry, bang_struct+0x10
    movw %cs, bang_struct+0x12
    movl $0, bang_struct+0x14   /* no protected-mode entry */
    movb $0, bang_struct+5
    movw $bang_struct, %si
    movw $0x58, %cx
    call cksum
    negb %al
    movb %al, bang_struct+5
3:  /* PXENV+ */
    movw pxenv_src_seg, %ax
    testw %ax, %ax
    jz 5f
    movw pxenv_src_off, %si
    movw %cs, %dx
    movw %dx, %es
    pushw %ds
    movw %ax, %ds
    movw $pxenv_struct, %di
    movw $0x2C, %cx
    rep movsb
    popw %ds
    movb $0x2C, pxenv_struct+8
    movw $pxenv_entry, pxenv_struct+0x0a
    movw %cs, pxenv_struct+0x0c
    movl $0, pxenv_struct+0x0e  /* no protected-mode entry */
    movw $0x0201, pxenv_struct+6
    movw $bang_struct, pxenv_struct+0x28
    movw %cs, pxenv_struct+0x2a
    testl $Q_PXENV_ONLY, quirks
    jz 4f
    /* A PXE 2.0 ROM: version 2.0, and there is no !PXE at all. */
    movw $0x0200, pxenv_struct+6
    movl $0, pxenv_struct+0x28
    movl $0, bang_struct        /* not even a signature to find */
4:  movb $0, pxenv_struct+9
    movw $pxenv_struct, %si
    movw $0x2C, %cx
    call cksum
    negb %al
    movb %al, pxenv_struct+9
5:  ret

/* cksum: AL = sum of CX bytes at DS:SI. */
cksum:
    xorb %ah, %ah
1:  addb (%si), %ah
    incw %si
    loop 1b
    movb %ah, %al
    ret

/* ---- console (COM1, polled; the chainloader sets the port up later) ---- */
putc:
    pushw %dx
    pushw %ax
    movw $0x3fd, %dx
1:  inb %dx, %al
    testb $0x20, %al
    jz 1b
    popw %ax
    movw $0x3f8, %dx
    outb %al, %dx
    popw %dx
    ret

/* puts: the NUL-terminated string at CS:SI. */
puts:
    movb %cs:(%si), %al
    testb %al, %al
    jz 1f
    call putc
    incw %si
    jmp puts
1:  ret

crlf:
    movb $'\r', %al
    call putc
    movb $'\n', %al
    jmp putc

puthex16:
    movw $4, %cx
1:  rolw $4, %ax
    pushw %ax
    andb $0x0f, %al
    addb $'0', %al
    cmpb $'9', %al
    jbe 2f
    addb $('a' - '9' - 1), %al
2:  call putc
    popw %ax
    loop 1b
    ret

fatal:
    call puts
    call crlf
1:  hlt
    jmp 1b

/* ---- the wrapper ---------------------------------------------------------- */

/* !PXE EntryPointSP: far call, opcode and parameter block on the stack. */
bang_entry:
    pushw %bp
    movw %sp, %bp
    pushw %es
    pushw %di
    pushw %bx
    movw 6(%bp), %bx
    lesw 8(%bp), %di
    call dispatch
    popw %bx
    popw %di
    popw %es
    popw %bp
    jmp wrapper_return

/* PXENV+ RMEntry: BX = opcode, ES:DI = parameter block. */
pxenv_entry:
    call dispatch

wrapper_return:
    testl $Q_CLOBBER, %cs:quirks
    jz 1f
    /* A stack that uses 32-bit registers internally and does not restore
     * the upper halves, %esp's included (iPXE 385b7a623 guards its ISR
     * against this), and returns with DF set. */
    orl $0xdead0000, %esp
    orl $0x5a5a0000, %ebp
    orl $0xa5a50000, %ebx
    orl $0x5a5a0000, %ecx
    orl $0xa5a50000, %edx
    orl $0x5a5a0000, %esi
    orl $0xa5a50000, %edi
    std
1:  lretw

/* dispatch: BX = opcode, ES:DI = parameter block; AX = PXE exit code. */
dispatch:
    incl %cs:ncalls
    testl $Q_SLOW, %cs:quirks
    jz 1f
    call delay_1ms
1:  testl $Q_ROM_STACK_ONLY, %cs:quirks
    jz 2f
    /* A stack that works only on the stack it started the NBP on
     * (PXELINUX and iPXE's .kkpxe keep the ROM's stack for this). */
    pushw %ax
    movw %ss, %ax
    cmpw %cs:rom_ss, %ax
    popw %ax
    je 2f
    movw $0x0001, %es:(%di)     /* PXENV_STATUS_FAILURE */
    movw $1, %ax
    ret
2:  cmpw $UNDI_OPEN, %bx
    je q_open
    cmpw $UNDI_INITIALIZE, %bx
    je q_open
    cmpw $UNDI_TRANSMIT, %bx
    je q_transmit
    cmpw $UNDI_GET_INFORMATION, %bx
    je q_info
    cmpw $UNDI_GET_NIC_TYPE, %bx
    je q_nictype
    cmpw $UNDI_ISR, %bx
    je q_isr
    jmp real_call

/* Realtek r8169 (iPXE fa3ca017a): the media test fails after every warm
 * reboot, and UNDI_INITIALIZE/UNDI_OPEN fail with 0x61 a few times before
 * the link settles. `media-test-dead`: the link never comes up. */
q_open:
    testl $Q_MEDIA_TEST_DEAD, %cs:quirks
    jnz 1f
    testl $Q_MEDIA_TEST, %cs:quirks
    jz real_call
    cmpw $3, %cs:media_fails
    jae real_call
    incw %cs:media_fails
1:  movw $0x0061, %es:(%di)     /* PXENV_STATUS_UNDI_MEDIATEST_FAILED */
    movw $1, %ax
    ret

q_transmit:
    testl $Q_TX_TRANSIENT, %cs:quirks
    jz 1f
    /* A transient TRANSMIT failure (out of transmit resources), as a
     * stack whose descriptor ring is momentarily full: every 4th of the
     * first 40 transmits fails without sending. */
    incw %cs:ntx
    cmpw $40, %cs:ntx
    ja 1f
    testw $3, %cs:ntx
    jnz 1f
    movw $0x0002, %es:(%di)     /* PXENV_STATUS_OUT_OF_RESOURCES */
    movw $1, %ax
    ret
1:  testl $Q_PUNKNOWN_HEADER, %cs:quirks
    jz real_call
    cmpb $0, %es:2(%di)         /* Protocol: P_UNKNOWN */
    jne real_call
    jmp punknown_header

q_info:
    call real_call
    pushw %ax
    /* Current MAC all zeros or all ones: GRUB 2 (grub-core/net/drivers/
     * i386/pc/pxe.c, grub_pxe_scan) falls back to the permanent one. */
    testl $(Q_ZERO_MAC | Q_ONES_MAC), %cs:quirks
    jz 1f
    xorl %eax, %eax
    testl $Q_ONES_MAC, %cs:quirks
    jz 2f
    decl %eax
2:  movl %eax, %es:12(%di)
    movw %ax, %es:16(%di)
1:  /* Old gPXE stacks report IRQ 0 or an IRQ above 15 (iPXE 0600ffeb3,
     * 8e984f35e treat those as polled). */
    testl $Q_IRQ_ZERO, %cs:quirks
    jz 3f
    movw $0, %es:4(%di)
3:  testl $Q_IRQ_HIGH, %cs:quirks
    jz 4f
    movw $19, %es:4(%di)
4:  testl $Q_NO_MAC, %cs:quirks
    jz 5f
    /* Neither MAC usable: a NIC whose EEPROM was wiped. */
    xorl %eax, %eax
    movl %eax, %es:12(%di)
    movw %ax, %es:16(%di)
    movl %eax, %es:28(%di)
    movw %ax, %es:32(%di)
5:  popw %ax
    ret

/* Intel X710 ROM in a Dell R6515 (iPXE e8365f7a5): GET_NIC_TYPE succeeds
 * without writing NicType or anything after it. */
q_nictype:
    testl $Q_NICTYPE_UNWRITTEN, %cs:quirks
    jz real_call
    movw $0, %es:(%di)
    xorw %ax, %ax
    ret

q_isr:
    movw %es:2(%di), %ax        /* FuncFlag in */
    cmpw $ISR_IN_START, %ax
    jne 1f
    testl $Q_SULK, %cs:quirks
    jz 8f
    call nic_irq_pending
8:  call real_call
    /* 8086:1502/1503, 14e4:1687, 8086:1521 (iPXE e3a6e9230 and the device
     * list before it): the stack claims an IRQ, but the NIC never raises
     * it, so START never finds the interrupt its own. */
    testl $Q_IRQ_NEVER, %cs:quirks
    jz 9f
    movw $ISR_OUT_NOT_OURS, %es:2(%di)
9:  ret
1:  /* PROCESS or GET_NEXT */
    cmpw $0, %cs:frag_left
    jne isr_next_fragment
    testl $Q_SULK, %cs:quirks
    jz 7f
    cmpw $ISR_IN_PROCESS, %ax
    jne 7f
    /* Stacks that "spuriously sulk" if PROCESS comes before their NIC has
     * generated an interrupt (iPXE b6ca3aa01: for such cards it calls
     * PROCESS only after an interrupt). Modelled as: until the NIC's line
     * has been seen asserted at a START (its IRR bit), PROCESS drains what
     * the NIC has and delivers nothing. */
    cmpw $0, %cs:irq_seen
    jne 7f
    cmpw $0, %cs:sulk_told
    jne 5f
    movw $1, %cs:sulk_told
    pushw %si
    movw $msg_sulk, %si
    call puts
    popw %si
5:  call real_call
    testw %ax, %ax
    jnz 6f
    movw %es:2(%di), %ax
    cmpw $ISR_OUT_RECEIVE, %ax
    je 4f
    cmpw $ISR_OUT_TRANSMIT, %ax
    jne 6f
4:  movw $ISR_IN_GET_NEXT, %es:2(%di)
    jmp 5b
6:  movw $ISR_OUT_DONE, %es:2(%di)
    movw $0, %es:(%di)
    xorw %ax, %ax
    ret
7:
    testl $Q_ISR_BUSY, %cs:quirks
    jz 3f
    /* A stack that answers BUSY several times before it has anything (the
     * spec lets it; GET_NEXT is to be repeated). The real ROM sees the
     * first request only when it is let through. */
    cmpw $0, %cs:busy_ff
    jne 2f
    movw %ax, %cs:busy_ff
2:  incw %cs:busy_count
    cmpw $4, %cs:busy_count
    jae 4f
    movw $ISR_OUT_BUSY, %es:2(%di)
    movw $0, %es:(%di)
    xorw %ax, %ax
    ret
4:  movw %cs:busy_ff, %ax
    movw %ax, %es:2(%di)
    movw $0, %cs:busy_ff
    movw $0, %cs:busy_count
3:  call real_call
    testw %ax, %ax
    jnz 9b
    /* from here on the call succeeded: return through isr_ok (AX = 0) */
    movw %es:2(%di), %ax
    cmpw $ISR_OUT_TRANSMIT, %ax
    jne 5f
    /* Some Intel PXE stacks and Etherboot 5.4 never report transmit
     * completions (iPXE undinet.c, undinet_transmit). */
    testl $Q_NO_TX_COMPLETE, %cs:quirks
    jz isr_ok
    movw $ISR_IN_GET_NEXT, %es:2(%di)
    jmp 3b
5:  cmpw $ISR_OUT_RECEIVE, %ax
    jne isr_ok
    incw %cs:nrx
    testl $Q_RX_BAD_LENGTH, %cs:quirks
    jz 6f
    /* VMware (iPXE undinet.c, undinet_poll: "Don't laugh"): a fragment
     * longer than the frame it belongs to. Every 8th frame of the first
     * 24 comes that way; the frame is lost. */
    cmpw $24, %cs:nrx
    ja 6f
    testw $7, %cs:nrx
    jnz 6f
    movw %es:4(%di), %ax
    shrw $2, %ax
    movw %ax, %es:6(%di)        /* FrameLength: a quarter of the fragment */
    xorw %ax, %ax
    ret
6:  testl $Q_RX_FRAGMENTS, %cs:quirks
    jz isr_ok
    /* A stack whose receive buffers are small: each frame arrives in
     * several fragments (the spec allows it; BufferLength < FrameLength,
     * GET_NEXT returns the rest). The first is 60 bytes, then 500 each. */
    movw %es:4(%di), %ax        /* BufferLength */
    cmpw $60, %ax
    jbe isr_ok
    subw $60, %ax
    movw %ax, %cs:frag_left
    movw $60, %es:4(%di)
    movl %es:10(%di), %eax
    addw $60, %ax
    movl %eax, %cs:frag_ptr
    movw %es:6(%di), %ax
    movw %ax, %cs:frag_total
    movw %es:14(%di), %ax
    movw %ax, %cs:frag_types
    movw %es:8(%di), %ax
    movw %ax, %cs:frag_hdrlen
    xorw %ax, %ax
    ret

isr_ok:
    xorw %ax, %ax
    ret

/* The next fragment of the frame being split: the real ROM is not called
 * until the frame is out, so its buffer stays valid. */
isr_next_fragment:
    movw %cs:frag_left, %ax
    cmpw $500, %ax
    jbe 1f
    movw $500, %ax
1:  subw %ax, %cs:frag_left
    movw %ax, %es:4(%di)
    movw $0, %es:(%di)
    movw $ISR_OUT_RECEIVE, %es:2(%di)
    movw %cs:frag_total, %ax
    movw %ax, %es:6(%di)
    movw %cs:frag_hdrlen, %ax
    movw %ax, %es:8(%di)
    movl %cs:frag_ptr, %eax
    movl %eax, %es:10(%di)
    movw %es:4(%di), %ax
    addw %ax, %cs:frag_ptr
    movw %cs:frag_types, %ax
    movw %ax, %es:14(%di)
    xorw %ax, %ax
    ret

/* QLogic 8242 (iPXE 6324bd938): P_UNKNOWN is not honoured; the stack puts
 * a link-layer header of its own in front of the caller's complete frame
 * (destination, our MAC, type 0), and the frame on the wire is garbage. */
punknown_header:
    pushw %ds
    pushw %si
    pushw %cx
    pushw %dx
    movw %es, %cs:caller_es
    movw %di, %cs:caller_di
    cld
    movw %es, %ax
    movw %ax, %ds
    movw %di, %si               /* DS:SI = the caller's TRANSMIT block */
    movw %cs, %ax
    movw %ax, %es
    movw $tx_frame, %di
    cmpb $1, 3(%si)             /* XmitFlag: XMT_BROADCAST */
    jne 1f
    movl $0xffffffff, %es:(%di)
    movw $0xffff, %es:4(%di)
    addw $6, %di
    jmp 2f
1:  pushw %si
    pushw %ds
    ldsw 4(%si), %si            /* DestAddr */
    movw $6, %cx
    rep movsb
    popw %ds
    popw %si
2:  movl %cs:nic_mac, %eax
    movl %eax, %es:(%di)
    movw %cs:nic_mac+4, %ax
    movw %ax, %es:4(%di)
    movw $0, %es:6(%di)
    addw $8, %di
    /* then the caller's whole frame: immediate data, then the blocks */
    ldsw 8(%si), %si            /* TBD */
    movw 6(%si), %dx            /* DataBlkCount */
    pushw %si
    pushw %ds
    movw (%si), %cx             /* ImmedLength */
    ldsw 2(%si), %si
    call tx_append
    popw %ds
    popw %si
    addw $8, %si
3:  testw %dx, %dx
    jz 4f
    cmpb $0, (%si)              /* segment:offset blocks only */
    jne 5f
    pushw %si
    pushw %ds
    movw 2(%si), %cx
    ldsw 4(%si), %si
    call tx_append
    popw %ds
    popw %si
5:  addw $8, %si
    decw %dx
    jmp 3b
4:  subw $tx_frame, %di
    movw %di, %cs:tx_tbd
    movw $tx_frame, %cs:tx_tbd+2
    movw %cs, %cs:tx_tbd+4
    movw $0, %cs:tx_tbd+6
    /* our TRANSMIT block: the caller's, with our TBD */
    movw %cs:caller_es, %ds
    movw %cs:caller_di, %si
    movw $tx_blk, %di
    movw $20, %cx
    rep movsb
    movw $tx_tbd, %cs:tx_blk+8
    movw %cs, %cs:tx_blk+10
    movw $tx_blk, %di
    movw $UNDI_TRANSMIT, %bx
    call real_call
    movw %cs:tx_blk, %cx        /* the status, back in the caller's block */
    movw %cs:caller_es, %es
    movw %cs:caller_di, %di
    movw %cx, %es:(%di)
    popw %dx
    popw %cx
    popw %si
    popw %ds
    ret

/* tx_append: CX bytes from DS:SI to ES:DI, at most up to the buffer end. */
tx_append:
    movw $tx_frame_end, %bx
    subw %di, %bx
    cmpw %bx, %cx
    jbe 1f
    movw %bx, %cx
1:  rep movsb
    ret

/* nic_irq_pending: irq_seen = 1 if the NIC's line is asserted at the PIC
 * (its IRR bit, which the 8259 sets whether or not the line is masked). */
nic_irq_pending:
    pushw %ax
    pushw %cx
    movw %cs:nic_irq, %cx
    cmpw $15, %cx
    ja 3f
    movb $0x0a, %al             /* OCW3: read IRR */
    cmpw $8, %cx
    jae 1f
    outb %al, $0x20
    inb $0x20, %al
    jmp 2f
1:  outb %al, $0xa0
    inb $0xa0, %al
    subw $8, %cx
2:  shrb %cl, %al
    testb $1, %al
    jz 3f
    movw $1, %cs:irq_seen
3:  popw %cx
    popw %ax
    ret

/* real_call: the real ROM, BX = opcode, ES:DI = block; AX = exit code. */
real_call:
    cmpl $0, %cs:real_bang_entry
    je 1f
    pushw %es
    pushw %di
    pushw %bx
    lcallw *%cs:real_bang_entry
    addw $6, %sp
    ret
1:  lcallw *%cs:real_rm_entry
    ret

/* About 1 ms: 66 periods of the 15.085 us refresh toggle (port 61h bit 4). */
delay_1ms:
    pushw %ax
    pushw %cx
    movw $66, %cx
    inb $0x61, %al
    andb $0x10, %al
    movb %al, %ah
1:  inb $0x61, %al
    andb $0x10, %al
    cmpb %al, %ah
    je 1b
    movb %al, %ah
    loop 1b
    popw %cx
    popw %ax
    ret

/* INT 1Ah AX=5650h: "PXE installation check", answered with our PXENV+. */
int1a_hook:
    cmpw $0x5650, %ax
    je 1f
    ljmpw *%cs:old_int1a
1:  movw $0x564e, %ax
    pushw %cs
    popw %es
    movw $pxenv_struct, %bx
    pushw %bp
    movw %sp, %bp
    andw $0xfffe, 6(%bp)        /* CF clear in the caller's FLAGS */
    popw %bp
    iret

/* ---- data ------------------------------------------------------------------ */
.balign 4
quirks:         .long 0
ncalls:         .long 0
rom_bang:       .long 0
real_bang_entry: .long 0
real_rm_entry:  .long 0
old_int1a:      .long 0
tftp_server:    .long 0
nic_mac:        .long 0, 0
frag_ptr:       .long 0
frag_types:     .long 0
rom_ss:         .word 0
rom_sp:         .word 0
rom_bx:         .word 0         /* rom_bx, rom_es: a far pointer for lesw */
rom_es:         .word 0
pxenv_src_off:  .word 0
pxenv_src_seg:  .word 0
nic_irq:        .word 0
media_fails:    .word 0
ntx:            .word 0
nrx:            .word 0
busy_ff:        .word 0
busy_count:     .word 0
frag_left:      .word 0
frag_total:     .word 0
frag_hdrlen:    .word 0
caller_es:      .word 0
irq_seen:       .word 0
sulk_told:      .word 0
caller_di:      .word 0

msg_hello:      .asciz "pxeshim: at segment "
msg_nopxe:      .asciz "pxeshim: no PXE API from the ROM"
msg_noserver:   .asciz "pxeshim: no TFTP server in the ROM's cached replies"
msg_quirks:     .asciz "pxeshim: quirks: "
msg_nocfg:      .asciz "pxeshim: no pxeshim.cfg, status "
msg_unknown:    .asciz "pxeshim: unknown quirk "
msg_nbpfail:    .asciz "pxeshim: cannot read chainloader.0, status "
msg_loaded:     .asciz "pxeshim: chainloader.0 loaded, bytes 0x"
msg_start:      .asciz "pxeshim: starting chainloader.0\r\n"
msg_empty:      .asciz ""
msg_sulk:       .asciz "[pxeshim: sulking: PROCESS before the first interrupt, frames dropped]"
name_cfg:       .asciz "pxeshim.cfg"
name_nbp:       .asciz "chainloader.0"

.macro QUIRK name, bit
    .subsection 1
1:  .asciz "\name"
    .subsection 0
    .word 1b
    .long \bit
.endm
.balign 2
quirk_table:
    QUIRK no-tx-complete, Q_NO_TX_COMPLETE
    QUIRK punknown-header, Q_PUNKNOWN_HEADER
    QUIRK irq-never, Q_IRQ_NEVER
    QUIRK irq-zero, Q_IRQ_ZERO
    QUIRK irq-high, Q_IRQ_HIGH
    QUIRK rx-fragments, Q_RX_FRAGMENTS
    QUIRK rx-bad-length, Q_RX_BAD_LENGTH
    QUIRK isr-busy, Q_ISR_BUSY
    QUIRK media-test, Q_MEDIA_TEST
    QUIRK media-test-dead, Q_MEDIA_TEST_DEAD
    QUIRK zero-mac, Q_ZERO_MAC
    QUIRK ones-mac, Q_ONES_MAC
    QUIRK nictype-unwritten, Q_NICTYPE_UNWRITTEN
    QUIRK irq-storm, Q_IRQ_STORM
    QUIRK clobber, Q_CLOBBER
    QUIRK rom-stack-only, Q_ROM_STACK_ONLY
    QUIRK tx-transient, Q_TX_TRANSIENT
    QUIRK pxenv-only, Q_PXENV_ONLY
    QUIRK int1a-only, Q_INT1A_ONLY
    QUIRK slow, Q_SLOW
    QUIRK sulk, Q_SULK
    QUIRK no-mac, Q_NO_MAC
    .word 0

/* Buffers: zeros at the end of the image (copied with it; 8 KiB in all). */
.subsection 2
.balign 16
bang_struct:    .space 0x58
pxenv_struct:   .space 0x2C
.balign 4
info_blk:       .space 48
cached_blk:     .space 12
rf_blk:         .space 160
tx_blk:         .space 20
tx_tbd:         .space 16
cfg_buf:        .space 512
tx_frame:       .space 1536
tx_frame_end:
image_end:
