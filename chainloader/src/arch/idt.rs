//! A 64-bit IDT for CPU exceptions: each prints the vector, error code and
//! RIP, then the reboot countdown runs (no silent triple fault). Hardware
//! interrupts never reach it: interrupts are only enabled inside real-mode
//! calls, where the thunk has loaded the real-mode IVT.

core::arch::global_asm!(
    r#"
.macro EXC_NOERR n
exc_\n:
    pushq $0
    pushq $\n
    jmp exc_common
.endm
.macro EXC_ERR n
exc_\n:
    pushq $\n
    jmp exc_common
.endm
.text
.code64
EXC_NOERR 0
EXC_NOERR 1
EXC_NOERR 2
EXC_NOERR 3
EXC_NOERR 4
EXC_NOERR 5
EXC_NOERR 6
EXC_NOERR 7
EXC_ERR 8
EXC_NOERR 9
EXC_ERR 10
EXC_ERR 11
EXC_ERR 12
EXC_ERR 13
EXC_ERR 14
EXC_NOERR 15
EXC_NOERR 16
EXC_ERR 17
EXC_NOERR 18
EXC_NOERR 19
EXC_NOERR 20
EXC_ERR 21
exc_common:
    movq %rsp, %rdi
    andq $-16, %rsp
    call chainloader_exception
    ud2
.section .rodata
.balign 8
.globl exc_stubs
exc_stubs:
    .quad exc_0, exc_1, exc_2, exc_3, exc_4, exc_5, exc_6, exc_7
    .quad exc_8, exc_9, exc_10, exc_11, exc_12, exc_13, exc_14, exc_15
    .quad exc_16, exc_17, exc_18, exc_19, exc_20, exc_21
.text
"#,
    options(att_syntax)
);

const VECTORS: usize = 22;

extern "C" {
    static exc_stubs: [u64; VECTORS];
}

/// What the stub pushed, then what the CPU pushed.
#[repr(C)]
pub struct ExceptionFrame {
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Called by `exc_common` above with the frame on the stack.
#[no_mangle]
extern "C" fn chainloader_exception(f: &ExceptionFrame) -> ! {
    crate::exception(f)
}

#[repr(C, align(16))]
struct Idt([u64; 2 * VECTORS]);

/// Taken once by `init`, then the CPU's (through IDTR) for good.
static IDT: spin::Mutex<Idt> = spin::Mutex::new(Idt([0; 2 * VECTORS]));

/// Loads the exception IDT. The real-mode thunk saves and restores IDTR
/// around each BIOS/PXE call, so it stays in force in long mode.
pub fn init() {
    let idt: &'static mut Idt = spin::MutexGuard::leak(IDT.try_lock().expect("idt::init runs once"));
    // SAFETY: exc_stubs is the table in the asm above, written at link
    // time; the stubs are 64-bit code in our image; selector 0x08 is the
    // 64-bit code segment. The IDT is 'static and no longer changes once
    // loaded.
    unsafe {
        for (v, &stub) in exc_stubs.iter().enumerate() {
            let lo = (stub & 0xffff) | (0x08 << 16) | (0x8E00 << 32) | ((stub >> 16) & 0xffff) << 48;
            idt.0[2 * v] = lo;
            idt.0[2 * v + 1] = stub >> 32;
        }
        x86::dtables::lidt(&x86::dtables::DescriptorTablePointer::new(&idt.0));
    }
}
