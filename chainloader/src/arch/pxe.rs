//! The PXE API: finding the stack the ROM (or PXELINUX) left us, calling it
//! through the real-mode thunk, and typed wrappers for the calls the
//! chainloader makes (UNDI for raw Ethernet frames, GET_CACHED_INFO for the
//! ROM's DHCPACK, and the shutdown calls before handoff).
//!
//! Every parameter block type names its opcode ([`PxeCall`]), so a block
//! cannot go to the wrong call. A call copies the block into one scratch
//! buffer in base memory and back out (as iPXE's `undinet_call` does), so
//! a ROM that writes past the block's end writes only the scratch. The
//! transmit blocks, which the pump in real mode uses too, live in base
//! memory owned by [`Undi`], the receive ring in base memory owned by
//! [`RxRing`].
//!
//! Vendor UNDI stacks get many things wrong; what this module does about
//! each (transmit with the protocol set, media-test retries, the permanent
//! MAC, the PIC, GET_NIC_TYPE's sentinel...) is listed, with the ROMs known
//! to need it and the test that proves it, in docs/pxe-quirks.md.

use super::mem::{low, low_u16, low_u32};
use super::thunk::{self, FarPtr, Regs};
use super::BaseMem;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

pub mod opcode {
    pub const UNDI_SHUTDOWN: u16 = 0x0005;
    pub const UNDI_OPEN: u16 = 0x0006;
    pub const UNDI_CLOSE: u16 = 0x0007;
    pub const UNDI_TRANSMIT: u16 = 0x0008;
    pub const UNDI_GET_INFORMATION: u16 = 0x000C;
    pub const UNDI_GET_NIC_TYPE: u16 = 0x0012;
    pub const STOP_UNDI: u16 = 0x0015;
    pub const UNLOAD_STACK: u16 = 0x0070;
    pub const GET_CACHED_INFO: u16 = 0x0071;
}

/// Which structure led us to the PXE entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// !PXE from the far pointer at SS:[SP+4].
    BangPxeOnStack,
    /// !PXE through PXENV+ (at ES:BX or from INT 1Ah) .PXEPtr.
    BangPxeViaPxenv,
    /// PXENV+ at ES:BX, its RMEntry.
    PxenvPlusEsBx,
    /// PXENV+ returned by INT 1Ah AX=5650h, its RMEntry.
    PxenvPlusInt1a,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Found::BangPxeOnStack => "!PXE (from SS:[SP+4]), EntryPointSP",
            Found::BangPxeViaPxenv => "!PXE (via PXENV+.PXEPtr), EntryPointSP",
            Found::PxenvPlusEsBx => "PXENV+ (at ES:BX), RMEntry",
            Found::PxenvPlusInt1a => "PXENV+ (from INT 1Ah 5650h), RMEntry",
        })
    }
}

/// A PXE call failed: the exit code in AX was not PXENV_EXIT_SUCCESS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PxeError {
    pub opcode: u16,
    /// The Status word of the parameter block (PXENV_STATUS_*).
    pub status: u16,
}

impl fmt::Display for PxeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PXE call {:#06x} failed with status {:#06x}", self.opcode, self.status)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Pxe {
    pub found: Found,
    entry: FarPtr,
    /// !PXE (far call with the parameters on the stack) or PXENV+ (registers).
    bang: bool,
    pub struct_addr: usize,
}

fn checksum_ok(addr: usize, len: usize) -> bool {
    low(addr, len).iter().fold(0u8, |s, b| s.wrapping_add(*b)) == 0
}

/// !PXE: signature, StructLength (>= 0x58 in PXE 2.1, at least up to
/// EntryPointSP), checksum over StructLength bytes. Returns EntryPointSP.
fn check_bang_pxe(ptr: u32) -> Result<FarPtr, &'static str> {
    let addr = FarPtr::from_u32(ptr).linear();
    if ptr == 0 || addr + 0x58 > 0x10_0000 {
        return Err("null or out-of-range pointer");
    }
    if low(addr, 4) != b"!PXE" {
        return Err("no !PXE signature");
    }
    let len = low(addr + 4, 1)[0] as usize;
    if len < 0x14 {
        return Err("!PXE StructLength too short");
    }
    if !checksum_ok(addr, len) {
        return Err("!PXE checksum wrong");
    }
    let entry = FarPtr::from_u32(low_u32(addr + 0x10));
    if entry.segment == 0 {
        return Err("!PXE EntryPointSP is null");
    }
    Ok(entry)
}

/// PXENV+: signature, Length (0x2C in 2.1), checksum. Returns (version,
/// RMEntry, PXEPtr if version >= 2.1).
fn check_pxenv(addr: usize) -> Result<(u16, FarPtr, Option<u32>), &'static str> {
    if addr == 0 || addr + 0x2C > 0x10_0000 {
        return Err("null or out-of-range pointer");
    }
    if low(addr, 6) != b"PXENV+" {
        return Err("no PXENV+ signature");
    }
    let version = low_u16(addr + 6);
    let len = low(addr + 8, 1)[0] as usize;
    if len < 0x0E {
        return Err("PXENV+ Length too short");
    }
    if !checksum_ok(addr, len) {
        return Err("PXENV+ checksum wrong");
    }
    let rm_entry = FarPtr::from_u32(low_u32(addr + 0x0A));
    let pxe_ptr = (version >= 0x0201 && len >= 0x2C).then(|| low_u32(addr + 0x28));
    Ok((version, rm_entry, pxe_ptr))
}

impl Pxe {
    /// Finds the PXE API in the order the PXE spec gives an NBP. `log`
    /// receives one line per structure that was rejected, with the reason.
    pub fn find(log: &mut dyn FnMut(fmt::Arguments)) -> Result<Pxe, &'static str> {
        let e = super::entry_regs();
        match check_bang_pxe(e.bang_pxe) {
            Ok(entry) => {
                return Ok(Pxe {
                    found: Found::BangPxeOnStack,
                    entry,
                    bang: true,
                    struct_addr: FarPtr::from_u32(e.bang_pxe).linear(),
                })
            }
            Err(why) => log(format_args!("!PXE at SS:[SP+4] ({:08x}): {why}", e.bang_pxe)),
        }
        let es_bx = FarPtr { segment: e.es, offset: e.bx }.linear();
        let pxenv = match check_pxenv(es_bx) {
            Ok(v) => Some((v, es_bx, Found::PxenvPlusEsBx)),
            Err(why) => {
                log(format_args!("PXENV+ at ES:BX ({:04x}:{:04x}): {why}", e.es, e.bx));
                let mut r = Regs { eax: 0x5650, ..Default::default() };
                thunk::int(0x1A, &mut r);
                if !r.carry() && r.eax & 0xffff == 0x564E {
                    let a = FarPtr { segment: r.es, offset: r.ebx as u16 }.linear();
                    match check_pxenv(a) {
                        Ok(v) => Some((v, a, Found::PxenvPlusInt1a)),
                        Err(why) => {
                            log(format_args!("PXENV+ from INT 1Ah ({:05x}): {why}", a));
                            None
                        }
                    }
                } else {
                    log(format_args!("INT 1Ah AX=5650h: no PXE installation"));
                    None
                }
            }
        };
        let Some(((_version, rm_entry, pxe_ptr), addr, found)) = pxenv else {
            return Err("no PXE stack found (!PXE, PXENV+ at ES:BX, INT 1Ah 5650h all failed)");
        };
        if let Some(p) = pxe_ptr {
            if let Ok(entry) = check_bang_pxe(p) {
                return Ok(Pxe {
                    found: Found::BangPxeViaPxenv,
                    entry,
                    bang: true,
                    struct_addr: FarPtr::from_u32(p).linear(),
                });
            }
        }
        Ok(Pxe { found, entry: rm_entry, bang: false, struct_addr: addr })
    }

    /// One PXE API call with the parameter block at linear `param` (below
    /// 1 MiB). True if the ROM returned PXENV_EXIT_SUCCESS in AX.
    fn call_raw(&self, op: u16, param: usize) -> bool {
        let p = FarPtr::from_linear(param);
        let mut r = Regs::default();
        if self.bang {
            thunk::far_call(self.entry, &mut r, &[op, p.offset, p.segment]);
        } else {
            r.ebx = op as u32;
            r.es = p.segment;
            r.edi = p.offset as u32;
            thunk::far_call(self.entry, &mut r, &[]);
        }
        r.eax & 0xffff == 0
    }

    /// The call `P` names, with `p` copied into the scratch block and back.
    /// The error carries the Status word (the first u16 of every block).
    fn call<P: PxeCall>(&self, p: &mut P) -> Result<(), PxeError> {
        const { assert!(core::mem::size_of::<P>() <= PARAMS_LEN, "parameter block larger than the scratch") };
        let mut block = PARAMS.lock();
        let addr = block.addr();
        let bytes = &mut (*block).0;
        bytes.fill(0);
        // SAFETY: `P` is plain old data of at most PARAMS_LEN bytes
        // (PxeCall's contract, and the assert above); the scratch is bytes,
        // hence the unaligned write.
        unsafe { core::ptr::write_unaligned(bytes.as_mut_ptr() as *mut P, *p) };
        let ok = self.call_raw(P::OPCODE, addr);
        // SAFETY: as above; any bytes the ROM left are a valid `P`.
        *p = unsafe { core::ptr::read_unaligned(bytes.as_ptr() as *const P) };
        if ok {
            Ok(())
        } else {
            Err(PxeError { opcode: P::OPCODE, status: u16::from_le_bytes([bytes[0], bytes[1]]) })
        }
    }
}

/// A PXE API parameter block and the opcode of the call it is for.
///
/// # Safety
/// `Self` must be `repr(C, packed)` plain old data whose first field is the
/// u16 Status word: every bit pattern is a valid value (the ROM may write
/// any bytes into it).
unsafe trait PxeCall: Copy {
    const OPCODE: u16;
}

/// The scratch block every [`Pxe::call`] goes through: the largest
/// parameter block (UNDI_OPEN, 56 bytes) and room to spare.
const PARAMS_LEN: usize = 64;
#[repr(C, align(16))]
struct Params([u8; PARAMS_LEN]);
static PARAMS: BaseMem<Params> = BaseMem::new(Params([0; PARAMS_LEN]));

// ---- parameter blocks (PXE 2.1, packed little-endian) -------------------

/// The block of the calls that take only a status (close, shutdown, stop,
/// unload), typed by their opcode.
#[repr(C, packed)]
#[derive(Clone, Copy)]
struct StatusOnly<const OP: u16> {
    status: u16,
    reserved: [u8; 10],
}

impl<const OP: u16> StatusOnly<OP> {
    fn new() -> Self {
        StatusOnly { status: 0, reserved: [0; 10] }
    }
}

type UndiClose = StatusOnly<{ opcode::UNDI_CLOSE }>;
type UndiShutdown = StatusOnly<{ opcode::UNDI_SHUTDOWN }>;
type StopUndi = StatusOnly<{ opcode::STOP_UNDI }>;
type UnloadStack = StatusOnly<{ opcode::UNLOAD_STACK }>;

#[repr(C, packed)]
#[derive(Clone, Copy)]
struct UndiOpen {
    status: u16,
    open_flag: u16,
    pkt_filter: u16,
    mcast_count: u16,
    mcast: [[u8; 6]; 8],
}

#[repr(C, packed)]
#[derive(Clone, Copy)]
struct UndiTransmit {
    status: u16,
    protocol: u8,
    xmit_flag: u8,
    dest_addr: u32,
    tbd: u32,
    reserved: [u32; 2],
}

#[repr(C, packed)]
#[derive(Clone, Copy)]
struct UndiTbd {
    immed_length: u16,
    xmit: u32,
    data_blk_count: u16,
    blocks: [[u8; 8]; 8],
}

#[repr(C, packed)]
#[derive(Clone, Copy)]
struct UndiGetInformation {
    status: u16,
    base_io: u16,
    int_number: u16,
    max_tran_unit: u16,
    hw_type: u16,
    hw_addr_len: u16,
    current_node_address: [u8; 16],
    perm_node_address: [u8; 16],
    rom_address: u16,
    rx_buf_ct: u16,
    tx_buf_ct: u16,
}

#[repr(C, packed)]
#[derive(Clone, Copy)]
struct GetCachedInfo {
    status: u16,
    packet_type: u16,
    buffer_size: u16,
    buffer: u32,
    buffer_limit: u16,
}

#[repr(C, packed)]
#[derive(Clone, Copy)]
struct UndiGetNicType {
    status: u16,
    nic_type: u8,
    vendor: u16,
    device: u16,
    base_class: u8,
    sub_class: u8,
    prog_intf: u8,
    rev: u8,
    bus_dev_func: u16,
    sub_vendor: u16,
    sub_device: u16,
    reserved: [u8; 8],
}

// The impls: each block is a `repr(C, packed)` struct of integers and byte
// arrays, Status first (PXE 2.1's layout).
// SAFETY: see above.
unsafe impl PxeCall for UndiClose {
    const OPCODE: u16 = opcode::UNDI_CLOSE;
}
// SAFETY: see above.
unsafe impl PxeCall for UndiShutdown {
    const OPCODE: u16 = opcode::UNDI_SHUTDOWN;
}
// SAFETY: see above.
unsafe impl PxeCall for StopUndi {
    const OPCODE: u16 = opcode::STOP_UNDI;
}
// SAFETY: see above.
unsafe impl PxeCall for UnloadStack {
    const OPCODE: u16 = opcode::UNLOAD_STACK;
}
// SAFETY: see above.
unsafe impl PxeCall for UndiOpen {
    const OPCODE: u16 = opcode::UNDI_OPEN;
}
// SAFETY: see above.
unsafe impl PxeCall for UndiTransmit {
    const OPCODE: u16 = opcode::UNDI_TRANSMIT;
}
// SAFETY: see above.
unsafe impl PxeCall for UndiGetInformation {
    const OPCODE: u16 = opcode::UNDI_GET_INFORMATION;
}
// SAFETY: see above.
unsafe impl PxeCall for GetCachedInfo {
    const OPCODE: u16 = opcode::GET_CACHED_INFO;
}
// SAFETY: see above.
unsafe impl PxeCall for UndiGetNicType {
    const OPCODE: u16 = opcode::UNDI_GET_NIC_TYPE;
}

const FLTR_DIRECTED: u16 = 1;
const FLTR_BRDCST: u16 = 2;
const P_UNKNOWN: u8 = 0;
const P_IP: u8 = 1;
const P_ARP: u8 = 2;
const P_RARP: u8 = 3;
const XMT_DESTADDR: u8 = 0;
const XMT_BROADCAST: u8 = 1;
const PCI_NIC: u8 = 2;
const PNP_NIC: u8 = 3;
const CARDBUS_NIC: u8 = 4;
/// NicType before the call: a value no stack writes (iPXE e8365f7a5 uses
/// one the same way), so that an unwritten buffer shows.
const NIC_TYPE_SENTINEL: u8 = 0xEB;
/// PXENV_STATUS_UNDI_MEDIATEST_FAILED.
const STATUS_MEDIA_TEST_FAILED: u16 = 0x0061;
/// UNDI_OPEN attempts while the media test fails, 200 ms apart: Realtek
/// r8169 stacks fail it after every warm reboot until the link settles
/// (iPXE fa3ca017a retries UNDI_INITIALIZE the same way).
pub const MEDIA_TEST_ATTEMPTS: u32 = 10;
const MEDIA_TEST_RETRY_MS: u64 = 200;
/// Transmits tried again after a failure (flush_tx; the pump does the same).
const TX_ATTEMPTS: u32 = 3;

// The UNDI_ISR sequence (START, PROCESS, GET_NEXT) runs in pump.S.

pub const PACKET_TYPE_DHCP_ACK: u16 = 2;
/// The boot server's reply (proxyDHCP or PXE boot server), or the DHCPACK when there was none.
pub const PACKET_TYPE_CACHED_REPLY: u16 = 3;

/// Frames handed to UNDI_TRANSMIT. Two, used in turn, because a ROM may
/// still be reading the previous one when it never reports completion.
pub const TX_BUF_LEN: usize = 1536;

/// Receive ring slots: a u16 length, then the frame (at most 1534 bytes).
/// 16-byte aligned: slot i is at segment base/16 + 96*i.
pub const RING_SLOTS: usize = 32;
#[repr(C, align(16))]
struct Ring([[u8; 1536]; RING_SLOTS]);

/// What the pump (pump.S) and the ROM read in base memory to transmit: the
/// UNDI_TRANSMIT block, its buffer descriptor and destination, the
/// transmit buffers. [`Undi`] owns it.
#[repr(C)]
struct UndiMem {
    transmit: UndiTransmit,
    tbd: UndiTbd,
    dest: [u8; 6],
    tx_bufs: [[u8; TX_BUF_LEN]; 2],
}

static UNDI_MEM: BaseMem<UndiMem> = BaseMem::new(UndiMem {
    transmit: UndiTransmit { status: 0, protocol: 0, xmit_flag: 0, dest_addr: 0, tbd: 0, reserved: [0; 2] },
    tbd: UndiTbd { immed_length: 0, xmit: 0, data_blk_count: 0, blocks: [[0; 8]; 8] },
    dest: [0; 6],
    tx_bufs: [[0; TX_BUF_LEN]; 2],
});

/// The receive ring, which the pump fills. [`RxRing`] owns it.
static RING: BaseMem<Ring> = BaseMem::new(Ring([[0; 1536]; RING_SLOTS]));

fn linear<T>(x: &T) -> usize {
    x as *const T as usize
}

pub struct UndiInfo {
    pub mac: [u8; 6],
    pub mtu: u16,
    pub irq: u16,
    pub io: u16,
    pub nic_type: NicType,
    pub workarounds: OpenWorkarounds,
}

/// GET_INFORMATION's answer, before the MAC is checked.
struct RawInfo {
    current: [u8; 6],
    permanent: [u8; 6],
    mtu: u16,
    irq: u16,
    io: u16,
}

/// What GET_NIC_TYPE said.
#[derive(Clone, Copy, Debug)]
pub enum NicType {
    Pci {
        vendor: u16,
        device: u16,
        bus_dev_func: u16,
    },
    PnP,
    CardBus,
    Other(u8),
    /// The call succeeded but left NicType as it was (Intel X710 ROM in a
    /// Dell R6515, iPXE e8365f7a5): assumed PCI, identity unknown.
    Unwritten,
    Failed(PxeError),
}

/// The workarounds that opening the NIC needed (shown on the NIC line).
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenWorkarounds {
    /// UNDI_OPEN attempts that failed the media test before one passed.
    pub media_test_retries: u32,
    /// UNDI_OPEN failed (not the media test): closed and opened again.
    pub reopened: bool,
    /// The current MAC was all zeros or all ones: this one was replaced
    /// by the permanent MAC (GRUB 2, grub-core/net/drivers/i386/pc/pxe.c,
    /// grub_pxe_scan, does the same).
    pub bad_current_mac: Option<[u8; 6]>,
    /// The ROM left the NIC's IRQ unmasked at the PIC.
    pub irq_left_unmasked: bool,
}

/// Opening the NIC failed.
#[derive(Clone, Copy, Debug)]
pub enum OpenError {
    Pxe(PxeError),
    MediaTest { attempts: u32 },
    NoMac { current: [u8; 6], permanent: [u8; 6] },
}

impl From<PxeError> for OpenError {
    fn from(e: PxeError) -> Self {
        OpenError::Pxe(e)
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Pxe(e) => write!(f, "{e}"),
            OpenError::MediaTest { attempts } => write!(
                f,
                "UNDI_OPEN failed its media test {attempts} times, {MEDIA_TEST_RETRY_MS} ms apart (status 0x61: no link; is the cable in and the switch port up?)"
            ),
            OpenError::NoMac { current, permanent } => write!(
                f,
                "the NIC has no usable MAC address (current {}, permanent {})",
                MacAddr(current),
                MacAddr(permanent)
            ),
        }
    }
}

struct MacAddr<'a>(&'a [u8; 6]);
impl fmt::Display for MacAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

fn mac_usable(m: &[u8; 6]) -> bool {
    *m != [0; 6] && *m != [0xff; 6]
}

/// The console line for the NIC: what UNDI said, then every workaround in
/// force, the ones always used and the ones this NIC needed.
impl fmt::Display for UndiInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MAC {}, MTU {}, ", MacAddr(&self.mac), self.mtu)?;
        if super::pic::usable_nic_irq(self.irq) {
            write!(f, "IRQ {} (masked at the PIC; polled)", self.irq)?;
        } else {
            write!(f, "IRQ {} reported, not a usable line (PIC lines but 0 and 2 masked; polled)", self.irq)?;
        }
        write!(f, ", I/O {:#x}, ", self.io)?;
        match self.nic_type {
            NicType::Pci { vendor, device, bus_dev_func } => write!(
                f,
                "PCI {vendor:04x}:{device:04x} at {:02x}:{:02x}.{}",
                bus_dev_func >> 8,
                (bus_dev_func >> 3) & 0x1f,
                bus_dev_func & 7
            )?,
            NicType::PnP => f.write_str("PnP")?,
            NicType::CardBus => f.write_str("CardBus")?,
            NicType::Other(t) => write!(f, "NIC type {t}")?,
            NicType::Unwritten => f.write_str("NIC type unknown")?,
            NicType::Failed(e) => write!(f, "NIC type unknown (GET_NIC_TYPE: {e})")?,
        }
        f.write_str("; workarounds: transmit with protocol and destination, polled UNDI_ISR")?;
        let w = &self.workarounds;
        if w.irq_left_unmasked {
            write!(f, ", IRQ {} left unmasked by the ROM (masked)", self.irq)?;
        }
        if w.media_test_retries > 0 {
            write!(f, ", media test failed {} times (retried)", w.media_test_retries)?;
        }
        if w.reopened {
            f.write_str(", UNDI_OPEN failed (closed and reopened)")?;
        }
        if let Some(m) = w.bad_current_mac {
            write!(f, ", current MAC {} unusable (permanent MAC used)", MacAddr(&m))?;
        }
        if !super::pic::usable_nic_irq(self.irq) {
            write!(f, ", IRQ {} ignored", self.irq)?;
        }
        if matches!(self.nic_type, NicType::Unwritten) {
            f.write_str(", GET_NIC_TYPE left its buffer unwritten (assumed PCI)")?;
        }
        Ok(())
    }
}

/// Workarounds used while frames went in and out (from the pump's and the
/// thunk's counters); `None` when the ROM needed none of them.
pub struct RunWorkarounds {
    busy: u16,
    insane: u16,
    tx_retries: u32,
    df: u32,
    esp: u32,
}

impl RunWorkarounds {
    pub fn any(&self) -> bool {
        self.busy + self.insane > 0 || self.tx_retries + self.df + self.esp > 0
    }
}

impl fmt::Display for RunWorkarounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut item = |f: &mut fmt::Formatter<'_>, n: u32, what: &str| -> fmt::Result {
            if n > 0 {
                write!(f, "{sep}{what} {n} times")?;
                sep = ", ";
            }
            Ok(())
        };
        item(f, self.busy as u32, "ISR answered BUSY (called again)")?;
        item(f, self.insane as u32, "fragment with a nonsense length (frame dropped)")?;
        item(f, self.tx_retries, "transmit failed (tried again)")?;
        item(f, self.df, "the ROM returned with DF set (cleared)")?;
        item(f, self.esp, "the ROM changed the upper half of %esp (restored)")
    }
}

/// The receive ring and the frames of the last pump not yet read. A frame
/// borrows the ring, and [`Undi::pump`] needs it mutably, so no frame can
/// be read while the pump overwrites its slot.
pub struct RxRing {
    ring: &'static mut Ring,
    count: usize,
    next: usize,
}

impl RxRing {
    /// The ring, for good (one owner).
    pub fn take() -> RxRing {
        RxRing { ring: RING.take(), count: 0, next: 0 }
    }

    /// The next frame that the last pump collected; no PXE call.
    pub fn next(&mut self) -> Option<&[u8]> {
        if self.next >= self.count {
            return None;
        }
        let slot = &self.ring.0[self.next];
        self.next += 1;
        let len = (u16::from_le_bytes([slot[0], slot[1]]) as usize).min(slot.len() - 2);
        Some(&slot[2..2 + len])
    }
}

/// UNDI driven by polling: the queued frame, the transmit buffer in turn,
/// and the receive ring that `undi_pump` fills.
pub struct Undi {
    pub pxe: Pxe,
    tx_next: usize,
    pending_tx: Option<(usize, usize)>,
    /// Frames come in bursts (a TFTP window): a pump collects all that are
    /// there instead of returning after the first.
    pub batch: bool,
    pub stats: UndiStats,
    /// Transmits tried again by flush_tx.
    tx_retries: u32,
    /// The transmit blocks and buffers, for good.
    mem: &'static mut UndiMem,
    pump: Pump,
}

/// Mirrors the control block `pump_ctl` in pump.S.
#[repr(C, packed)]
struct PumpCtl {
    entry: u32,
    bang: u16,
    tx: u16,
    tx_param: u32,
    ring_seg: u16,
    nslots: u16,
    nframes: u16,
    dropped: u16,
    calls: u32,
    deadline: u64,
    tx_status: u16,
    have: u16,
    isr: [u8; 20],
    t0: u64,
    wait: u64,
    open: u16,
    batch: u16,
    steps: u16,
    busy_seen: u16,
    insane: u16,
    tx_retries: u16,
    df_seen: u16,
    esp_seen: u16,
}

extern "C" {
    static mut pump_ctl: PumpCtl;
    fn undi_pump();
}

/// The one owner of `pump_ctl` (taken by [`Undi::open`]).
struct Pump(());

static PUMP_TAKEN: AtomicBool = AtomicBool::new(false);

impl Pump {
    fn take() -> Pump {
        assert!(!PUMP_TAKEN.swap(true, Ordering::Relaxed), "the UNDI pump has one owner");
        Pump(())
    }

    /// The control block, borrowed from the owner: never across the trip to
    /// real mode that runs `undi_pump`.
    fn ctl(&mut self) -> &mut PumpCtl {
        // SAFETY: pump_ctl (pump.S, .data16) is touched only through the one
        // `Pump` (the flag above) and by undi_pump, which runs synchronously
        // inside a thunk call made while no borrow from here is live.
        unsafe { &mut *core::ptr::addr_of_mut!(pump_ctl) }
    }
}

/// undi_pump addresses its data CS-relative with CS = 0, so it must be
/// called as 0000:offset (link.ld keeps .text16 below 64 KiB).
fn undi_pump_addr() -> usize {
    let a = undi_pump as *const () as usize;
    assert!(a < 0x10000);
    a
}

#[derive(Default, Clone, Copy, Debug)]
pub struct UndiStats {
    pub calls: u64,
    pub rx_frames: u64,
    pub tx_frames: u64,
    pub tx_errors: u64,
    pub pumps: u64,
    /// TSC ticks spent in pump trips (real mode included).
    pub pump_tsc: u64,
    /// TSC ticks from the end of a transmit to the first frame received.
    pub wait_tsc: u64,
    pub rx_dropped: u64,
}

impl Pxe {
    pub fn get_cached_info(&self, packet_type: u16) -> Result<&'static [u8], PxeError> {
        let mut b = GetCachedInfo { status: 0, packet_type, buffer_size: 0, buffer: 0, buffer_limit: 0 };
        self.call(&mut b)?;
        let addr = FarPtr::from_u32(b.buffer).linear();
        let len = (b.buffer_size as usize).min(0x10_0000 - addr);
        Ok(low(addr, len))
    }

    pub fn undi_close(&self) -> Result<(), PxeError> {
        self.call(&mut UndiClose::new())
    }

    pub fn undi_open(&self) -> Result<(), PxeError> {
        self.call(&mut UndiOpen {
            status: 0,
            open_flag: 0,
            pkt_filter: FLTR_DIRECTED | FLTR_BRDCST,
            mcast_count: 0,
            mcast: [[0; 6]; 8],
        })
    }

    /// GET_INFORMATION.
    fn undi_get_information(&self) -> Result<RawInfo, PxeError> {
        let mut b = UndiGetInformation {
            status: 0,
            base_io: 0,
            int_number: 0,
            max_tran_unit: 0,
            hw_type: 0,
            hw_addr_len: 0,
            current_node_address: [0; 16],
            perm_node_address: [0; 16],
            rom_address: 0,
            rx_buf_ct: 0,
            tx_buf_ct: 0,
        };
        self.call(&mut b)?;
        let mut mac = [0; 6];
        mac.copy_from_slice(&b.current_node_address[..6]);
        let mut perm = [0; 6];
        perm.copy_from_slice(&b.perm_node_address[..6]);
        Ok(RawInfo { current: mac, permanent: perm, mtu: b.max_tran_unit, irq: b.int_number, io: b.base_io })
    }

    /// GET_NIC_TYPE, with a sentinel in NicType to catch a stack that
    /// reports success without writing it.
    pub fn undi_get_nic_type(&self) -> NicType {
        let mut b = UndiGetNicType {
            status: 0,
            nic_type: NIC_TYPE_SENTINEL,
            vendor: 0,
            device: 0,
            base_class: 0,
            sub_class: 0,
            prog_intf: 0,
            rev: 0,
            bus_dev_func: 0,
            sub_vendor: 0,
            sub_device: 0,
            reserved: [0; 8],
        };
        if let Err(e) = self.call(&mut b) {
            return NicType::Failed(e);
        }
        match b.nic_type {
            NIC_TYPE_SENTINEL => NicType::Unwritten,
            PCI_NIC => NicType::Pci { vendor: b.vendor, device: b.device, bus_dev_func: b.bus_dev_func },
            PNP_NIC => NicType::PnP,
            CARDBUS_NIC => NicType::CardBus,
            t => NicType::Other(t),
        }
    }

    pub fn undi_shutdown(&self) -> Result<(), PxeError> {
        self.call(&mut UndiShutdown::new())
    }

    pub fn stop_undi(&self) -> Result<(), PxeError> {
        self.call(&mut StopUndi::new())
    }

    pub fn unload_stack(&self) -> Result<(), PxeError> {
        self.call(&mut UnloadStack::new())
    }
}

impl Undi {
    /// Takes the NIC over with directed and broadcast frames. UNDI_OPEN
    /// first: straight from the ROM, UNDI is still open and an OPEN only
    /// sets the filter, whereas CLOSE + OPEN resets the NIC (QEMU's e1000
    /// then drops frames for about a second until its link is up again).
    /// If that OPEN fails (a ROM that wants it closed first), UNDI_CLOSE
    /// (whose failure only means it was closed, as PXELINUX leaves it) and
    /// UNDI_OPEN again.
    ///
    /// A failed media test (status 0x61) is retried, 200 ms apart, up to
    /// [`MEDIA_TEST_ATTEMPTS`] times. Then the NIC's IRQ is masked at the
    /// PIC (see arch::pic), the MAC checked (the permanent one when the
    /// current one is all zeros or all ones) and the NIC type asked for.
    pub fn open(pxe: Pxe) -> Result<(Undi, UndiInfo), OpenError> {
        let mut w = OpenWorkarounds::default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match pxe.undi_open() {
                Ok(()) => break,
                Err(e) if e.status == STATUS_MEDIA_TEST_FAILED => {
                    if attempt >= MEDIA_TEST_ATTEMPTS {
                        return Err(OpenError::MediaTest { attempts: attempt });
                    }
                    w.media_test_retries += 1;
                    super::cpu::delay_ms(MEDIA_TEST_RETRY_MS);
                }
                Err(e) if w.reopened => return Err(e.into()),
                Err(_) => {
                    w.reopened = true;
                    let _ = pxe.undi_close();
                }
            }
        }
        let RawInfo { current, permanent, mtu, irq, io } = pxe.undi_get_information()?;
        w.irq_left_unmasked = super::pic::firmware_left_unmasked(irq);
        super::pic::mask_only_nic(irq);
        let mac = if mac_usable(&current) {
            current
        } else if mac_usable(&permanent) {
            w.bad_current_mac = Some(current);
            permanent
        } else {
            return Err(OpenError::NoMac { current, permanent });
        };
        let nic_type = pxe.undi_get_nic_type();
        let undi = Undi {
            pxe,
            tx_next: 0,
            pending_tx: None,
            batch: false,
            stats: UndiStats::default(),
            tx_retries: 0,
            mem: UNDI_MEM.take(),
            pump: Pump::take(),
        };
        Ok((undi, UndiInfo { mac, mtu, irq, io, nic_type, workarounds: w }))
    }

    /// A buffer in base memory to build the next frame in.
    pub fn tx_buffer(&mut self) -> &mut [u8; TX_BUF_LEN] {
        &mut self.mem.tx_bufs[self.tx_next]
    }

    /// Fills the UNDI_TRANSMIT block for the first `len` bytes of transmit
    /// buffer `idx`, a whole Ethernet frame, padded to 60 bytes first (some
    /// stacks send short frames unpadded: Mellanox, iPXE 6d8297505).
    ///
    /// IPv4, ARP and RARP go out as the spec intends: without our Ethernet
    /// header, with Protocol and the destination set, and the stack builds
    /// the header. P_UNKNOWN (our header as is) only for anything else:
    /// some stacks prepend a second header to a P_UNKNOWN frame (QLogic
    /// 8242, iPXE 6324bd938), and iPXE's undinet transmits this way always.
    fn prepare_transmit(&mut self, idx: usize, len: usize) {
        let m = &mut *self.mem;
        let buf = &mut m.tx_bufs[idx];
        let len = if len < 60 {
            buf[len..60].fill(0);
            60
        } else {
            len
        };
        let (protocol, skip) = match u16::from_be_bytes([buf[12], buf[13]]) {
            0x0800 => (P_IP, 14),
            0x0806 => (P_ARP, 14),
            0x8035 => (P_RARP, 14),
            _ => (P_UNKNOWN, 0),
        };
        let dest: [u8; 6] = buf[..6].try_into().unwrap_or([0xff; 6]);
        let xmit_flag = if protocol != P_UNKNOWN && dest == [0xff; 6] { XMT_BROADCAST } else { XMT_DESTADDR };
        let buf_ptr = FarPtr::from_linear(buf.as_ptr() as usize + skip);
        m.dest = dest;
        m.tbd =
            UndiTbd { immed_length: (len - skip) as u16, xmit: far(buf_ptr), data_blk_count: 0, blocks: [[0; 8]; 8] };
        m.transmit = UndiTransmit {
            status: 0,
            protocol,
            xmit_flag,
            dest_addr: far(FarPtr::from_linear(linear(&m.dest))),
            tbd: far(FarPtr::from_linear(linear(&m.tbd))),
            reserved: [0; 2],
        };
    }

    /// Queues the first `len` bytes of [`Self::tx_buffer`] for sending: it
    /// goes out with the next [`Self::pump`] (in the same trip to real
    /// mode), or now if another frame is queued behind it.
    pub fn queue_tx(&mut self, len: usize) {
        self.flush_tx();
        self.pending_tx = Some((self.tx_next, len));
        self.tx_next ^= 1;
    }

    /// Sends the queued frame, if any, with its own PXE call.
    /// A transient failure (a full descriptor ring) is tried again.
    pub fn flush_tx(&mut self) {
        if let Some((idx, len)) = self.pending_tx.take() {
            for attempt in 1..=TX_ATTEMPTS {
                self.prepare_transmit(idx, len);
                self.stats.calls += 1;
                let mut transmit = self.mem.transmit;
                match self.pxe.call(&mut transmit) {
                    Ok(()) => {
                        self.stats.tx_frames += 1;
                        return;
                    }
                    Err(_) if attempt < TX_ATTEMPTS => self.tx_retries += 1,
                    Err(_) => self.stats.tx_errors += 1,
                }
            }
        }
    }

    /// The workarounds the run so far needed (for the console).
    pub fn run_workarounds(&mut self) -> RunWorkarounds {
        let ctl = self.pump.ctl();
        let (df, esp) = thunk::clobbers();
        RunWorkarounds {
            busy: ctl.busy_seen,
            insane: ctl.insane,
            tx_retries: self.tx_retries + ctl.tx_retries as u32,
            df: df + ctl.df_seen as u32,
            esp: esp + ctl.esp_seen as u32,
        }
    }

    /// One trip to real mode (`undi_pump` in pump.S): sends the queued
    /// frame, then collects received frames into the ring until at least
    /// one is there or the TSC reaches `deadline_tsc`. Returns the number
    /// of frames now waiting in the ring.
    pub fn pump(&mut self, rx: &mut RxRing, deadline_tsc: u64) -> usize {
        if rx.next < rx.count {
            return rx.count - rx.next;
        }
        let tx = self.pending_tx.take();
        if let Some((idx, len)) = tx {
            self.prepare_transmit(idx, len);
        }
        let (transmit, ring) = (linear(&self.mem.transmit), linear(&*rx.ring));
        let ctl = self.pump.ctl();
        ctl.entry = far(self.pxe.entry);
        ctl.bang = self.pxe.bang as u16;
        ctl.tx = tx.is_some() as u16;
        ctl.tx_param = far(FarPtr::from_linear(transmit));
        ctl.ring_seg = (ring >> 4) as u16;
        ctl.nslots = RING_SLOTS as u16;
        ctl.deadline = deadline_tsc;
        ctl.batch = self.batch as u16;

        let calls_before = ctl.calls;
        let mut r = Regs::default();
        let t0 = super::cpu::rdtsc();
        // SAFETY (of the call it makes): undi_pump is real-mode code in
        // .text16 (below 64 KiB, so segment 0 reaches it); it touches only
        // its control block, the ring and the PXE parameter blocks.
        thunk::far_call(FarPtr { segment: 0, offset: undi_pump_addr() as u16 }, &mut r, &[]);
        let ctl = self.pump.ctl();
        self.stats.pump_tsc += super::cpu::rdtsc() - t0;
        self.stats.calls += (ctl.calls - calls_before) as u64;
        self.stats.pumps += 1;
        if tx.is_some() {
            if ctl.tx_status == 0 {
                self.stats.tx_frames += 1;
            } else {
                self.stats.tx_errors += 1;
            }
        }
        self.stats.rx_dropped = ctl.dropped as u64;
        self.stats.wait_tsc = ctl.wait;
        rx.count = ctl.nframes as usize;
        rx.next = 0;
        self.stats.rx_frames += rx.count as u64;
        rx.count
    }

    /// Quiesces the NIC before handoff: no more DMA into RAM the kernel
    /// will own. Close and shut down UNDI, then unload the base code and
    /// UNDI stacks (failures are reported but do not stop the boot).
    pub fn shutdown(&mut self, log: &mut dyn FnMut(fmt::Arguments)) {
        let p = self.pxe;
        if let Err(e) = p.undi_close() {
            log(format_args!("UNDI_CLOSE: {e}"));
        }
        if let Err(e) = p.undi_shutdown() {
            log(format_args!("UNDI_SHUTDOWN: {e}"));
        }
        // The order syslinux uses to unload a PXE stack: the base code
        // first, then the UNDI driver.
        if let Err(e) = p.unload_stack() {
            log(format_args!("UNLOAD_STACK: {e}"));
        }
        if let Err(e) = p.stop_undi() {
            log(format_args!("STOP_UNDI: {e}"));
        }
        // The NIC can no longer assert its line: the firmware's masks back.
        super::pic::restore_firmware_masks();
    }
}

fn far(p: FarPtr) -> u32 {
    (p.segment as u32) << 16 | p.offset as u32
}
