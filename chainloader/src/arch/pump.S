/*
 * undi_pump: the UNDI receive loop, run entirely in real mode so that one
 * long->real->long round trip (about 76 us under QEMU TCG, most of it the
 * TLB refill after paging is switched back on) serves a whole exchange
 * instead of one PXE call.
 *
 * Called through rm_thunk as a far call (CS=0, interrupts on). It
 *   1. sends the frame whose UNDI_TRANSMIT block pump_tx_param points to,
 *      if pump_tx is set;
 *   2. runs the UNDI ISR sequence (START, then PROCESS and GET_NEXT until
 *      DONE), putting each received frame, reassembled from its fragments,
 *      into the next slot of the ring at pump_ring_seg (slot i at segment
 *      pump_ring_seg + 96*i: a u16 length, then the frame);
 *   3. repeats 2 until at least one frame is in the ring or the TSC passes
 *      pump_deadline.
 * Transmit completions are skipped; some ROMs never report them.
 * What vendor stacks get wrong, and what the pump does about it (see
 * docs/pxe-quirks.md):
 *   - a TRANSMIT that fails transiently is tried again, up to 3 times;
 *   - BUSY answers are followed by GET_NEXT, but never past the deadline;
 *   - a fragment longer than its frame, a frame of length 0 or above
 *     1534, or fragments that overrun their frame: the frame is dropped
 *     (counted) and the run goes on, as iPXE's undinet_poll does;
 *   - a run never takes more than 512 ISR calls;
 *   - a ROM that returns with DF set or the upper half of %esp changed
 *     (iPXE 385b7a623): DF is cleared and %esp zero-extended after every
 *     call, and both are counted so that the console can say so.
 * Layout of the control block mirrors arch::pxe::PumpCtl.
 */

/* To `before` while the TSC is below pump_deadline (compared as 64 bits,
 * high words first); to `after` if the high word is past it; falls through
 * when the TSC is at or past the deadline. Clobbers EAX, EDX. */
.macro JUMP_IF_BEFORE_DEADLINE before, after
    rdtsc
    cmpl %cs:pump_deadline+4, %edx
    jb \before
    ja \after
    cmpl %cs:pump_deadline, %eax
    jb \before
.endm

.section .text16, "awx"
.code16
.globl undi_pump
undi_pump:
    pushw %ds
    pushw %es
    pushal
    movw $0, %cs:pump_nframes
    movw $0, %cs:pump_have
    cmpw $0, %cs:pump_tx
    je 1f
    movw $0, %cs:pump_tx
    movw $3, %cx
0:  pushw %cx
    movl %cs:pump_tx_param, %eax
    movw $0x0008, %bx
    call pump_pxe_call
    popw %cx
    movw %ax, %cs:pump_tx_status
    testw %ax, %ax
    jz 1f
    incw %cs:pump_tx_retries
    loop 0b
1:
    rdtsc
    movl %eax, %cs:pump_t0
    movl %edx, %cs:pump_t0+4
pump_poll:
    movw $0, %cs:pump_have
    /* A run left open by the previous trip (it ended on a RECEIVE) goes on
     * with GET_NEXT: after our transmit that is TRANSMIT (completion) and
     * then usually the answer, without a fresh START/PROCESS. A ROM that
     * only polls its NIC on START answers DONE, and a new run starts. */
    cmpw $0, %cs:pump_open
    jne pump_next
    movw $0, %cs:pump_steps
    movw $1, %cs:pump_isr+2         /* START */
    call pump_isr_call
    testw %ax, %ax
    jnz pump_check_time
    /* PROCESS follows even on NOT_OURS: with nothing to interrupt (we
     * poll), iPXE answers NOT_OURS whenever the NIC interrupt is disabled,
     * as it is after UNDI_OPEN, and a frame would then wait until some
     * other event (measured: 1 s for the DHCPOFFER). PROCESS with nothing
     * there just says DONE. */
    movw $2, %cs:pump_isr+2         /* PROCESS */
    call pump_isr_call
pump_result:
    testw %ax, %ax
    jnz pump_run_end
    movw %cs:pump_isr+2, %ax
    cmpw $3, %ax                    /* RECEIVE */
    je pump_got_rx
    cmpw $2, %ax                    /* TRANSMIT (completion) */
    je pump_next
    cmpw $4, %ax                    /* BUSY */
    je pump_busy
    jmp pump_run_end                /* DONE, or unknown */
pump_busy:
    /* The stack asks to be called again; not past the deadline. */
    incw %cs:pump_busy_seen
    JUMP_IF_BEFORE_DEADLINE pump_next, pump_run_end
    jmp pump_run_end
pump_got_rx:
    call pump_copy_fragment
    cmpw $0, %cs:pump_nframes
    je pump_next
    /* More frames are likely behind this one (a TFTP window): collect
     * them in this trip, until DONE. */
    cmpw $0, %cs:pump_batch
    jne pump_next
    /* Lockstep: back to long mode at once, leaving the run open. */
    movw $1, %cs:pump_open
    jmp pump_done
pump_next:
    incw %cs:pump_steps
    cmpw $512, %cs:pump_steps
    ja pump_run_end
    movw $3, %cs:pump_isr+2         /* GET_NEXT */
    call pump_isr_call
    jmp pump_result
pump_run_end:
    movw $0, %cs:pump_open
    cmpw $0, %cs:pump_nframes
    jne pump_done
pump_check_time:
    JUMP_IF_BEFORE_DEADLINE pump_poll, pump_done
pump_done:
    popal
    popw %es
    popw %ds
    lretw

/* UNDI_ISR with the block in pump_isr (segment 0). */
pump_isr_call:
    movw $0, %cs:pump_isr
    movl $pump_isr, %eax
    movw $0x0014, %bx
    jmp pump_pxe_call

/* PXE call: EAX = parameter block (segment high, offset low), BX = opcode.
 * Returns the PXE exit code in AX. Everything else may be clobbered. */
pump_pxe_call:
    incl %cs:pump_calls
    cmpw $0, %cs:pump_bang
    je 2f
    movl %eax, %edx
    shrl $16, %edx
    pushw %dx                       /* parameter segment */
    pushw %ax                       /* parameter offset */
    pushw %bx                       /* opcode */
    movzwl %sp, %esp
    lcallw *%cs:pump_entry
    call pump_after_call
    addw $6, %sp
    ret
2:  movw %ax, %di                   /* PXENV+: ES:DI and BX */
    shrl $16, %eax
    movw %ax, %es
    movzwl %sp, %esp
    lcallw *%cs:pump_entry
    jmp pump_after_call

/* After a PXE call (AX = its exit code, kept): DF cleared and the upper
 * half of %esp zeroed, each counted when the ROM left it otherwise. */
pump_after_call:
    pushfw
    cld
    pushw %bp
    movw %sp, %bp
    testw $0x0400, 2(%bp)           /* DF as the ROM left it */
    jz 1f
    incw %cs:pump_df_seen
1:  popw %bp
    addw $2, %sp
    testl $0xffff0000, %esp
    jz 2f
    incw %cs:pump_esp_seen
    movzwl %sp, %esp
2:  ret

/* Appends the fragment described by pump_isr to the current ring slot. */
pump_copy_fragment:
    /* Nonsense lengths (VMware, iPXE undinet_poll): the frame is lost. */
    movw %cs:pump_isr+6, %cx        /* FrameLength */
    testw %cx, %cx
    jz 7f
    cmpw $1534, %cx
    ja 7f
    movw %cs:pump_isr+4, %ax        /* BufferLength */
    addw %cs:pump_have, %ax
    jc 7f
    cmpw %cx, %ax
    ja 7f
    movw %cs:pump_nframes, %ax
    cmpw %cs:pump_nslots, %ax
    jae 5f
    movw $96, %dx
    mulw %dx
    addw %cs:pump_ring_seg, %ax
    movw %ax, %es
    movw %cs:pump_have, %di
    addw $2, %di
    movw %cs:pump_isr+4, %cx        /* BufferLength (checked above) */
    addw %cx, %cs:pump_have
    pushw %ds
    ldsw %cs:pump_isr+10, %si       /* Frame: offset, segment */
    cld
    rep movsb
    popw %ds
    movw %cs:pump_have, %ax
    cmpw %cs:pump_isr+6, %ax
    jb 4f
    movw %ax, %es:0
    movw $0, %cs:pump_have
    incw %cs:pump_nframes
    cmpw $1, %cs:pump_nframes
    jne 4f
    rdtsc
    subl %cs:pump_t0, %eax
    sbbl %cs:pump_t0+4, %edx
    addl %eax, %cs:pump_wait
    adcl %edx, %cs:pump_wait+4
4:  ret
5:  /* Ring full or oversize: the frame is dropped once it is complete. */
    movw %cs:pump_isr+4, %ax
    addw %ax, %cs:pump_have
    movw %cs:pump_have, %ax
    cmpw %cs:pump_isr+6, %ax
    jb 6f
    movw $0, %cs:pump_have
    incw %cs:pump_dropped
6:  ret
7:  movw $0, %cs:pump_have
    incw %cs:pump_insane
    ret

.section .data16, "aw"
.balign 8
.globl pump_ctl
pump_ctl:
pump_entry:     .long 0     /* 0: PXE entry, offset low, segment high */
pump_bang:      .word 0     /* 4: 1 = !PXE (stack parameters), 0 = PXENV+ */
pump_tx:        .word 0     /* 6: transmit first */
pump_tx_param:  .long 0     /* 8: UNDI_TRANSMIT block, far pointer */
pump_ring_seg:  .word 0     /* 12 */
pump_nslots:    .word 0     /* 14 */
pump_nframes:   .word 0     /* 16: out */
pump_dropped:   .word 0     /* 18: out, accumulates */
pump_calls:     .long 0     /* 20: out, accumulates */
pump_deadline:  .quad 0     /* 24: TSC */
pump_tx_status: .word 0     /* 32: out, PXE exit code of the transmit */
pump_have:      .word 0     /* 34 */
pump_isr:       .space 20   /* 36: UNDI_ISR parameter block */
pump_t0:        .quad 0     /* 56: TSC after the transmit */
pump_wait:      .quad 0     /* 64: out, accumulates: TSC from transmit to first frame */
pump_open:      .word 0     /* 72: an ISR run is open (ended on RECEIVE) */
pump_batch:     .word 0     /* 74: after a frame, go on until DONE */
pump_steps:     .word 0     /* 76: ISR calls in this run */
pump_busy_seen: .word 0     /* 78: out, accumulates: BUSY answers */
pump_insane:    .word 0     /* 80: out, accumulates: frames with nonsense lengths */
pump_tx_retries: .word 0    /* 82: out, accumulates: TRANSMITs tried again */
pump_df_seen:   .word 0     /* 84: out, accumulates: calls that returned with DF set */
pump_esp_seen:  .word 0     /* 86: out, accumulates: calls that changed %esp's upper half */

