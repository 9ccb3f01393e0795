/* Address and entry-address tags (built with `--features aout`): tell the
 * loader to copy the file from its start (the header) to 1 MiB and jump to
 * `_start`, so that a flat `objcopy -O binary` image boots without ELF
 * headers. */
.section .multiboot2.tags, "a"
.balign 8
1:  .word 2, 0
    .long 2f - 1b
    .long mb2_header            /* header_addr */
    .long __kernel_start        /* load_addr: the file's first byte */
    .long __load_end            /* load_end_addr */
    .long __bss_end             /* bss_end_addr */
2:
.balign 8
3:  .word 3, 0
    .long 4f - 3b
    .long _start
4:
.balign 8
