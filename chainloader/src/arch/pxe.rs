//! The PXE API: finding the stack the ROM (or PXELINUX) left us, calling it
//! through the real-mode thunk, and typed wrappers for the calls the
//! chainloader makes (UNDI for raw Ethernet frames, GET_CACHED_INFO for the
//! ROM's DHCPACK, and the shutdown calls before handoff).
//!
//! Every parameter block is a static in the chainloader's image, which lies
//! entirely below 1 MiB, so it has a real-mode segment:offset address.

use super::thunk::{self, FarPtr, Regs};
use super::BaseMem;
use core::fmt;

pub mod opcode {
    pub const UNDI_SHUTDOWN: u16 = 0x0005;
    pub const UNDI_OPEN: u16 = 0x0006;
    pub const UNDI_CLOSE: u16 = 0x0007;
    pub const UNDI_TRANSMIT: u16 = 0x0008;
    pub const UNDI_GET_INFORMATION: u16 = 0x000C;
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

fn read_bytes(addr: usize, len: usize) -> &'static [u8] {
    assert!(addr + len <= 0x10_0000);
    // SAFETY: the first MiB is identity-mapped RAM/ROM and always readable;
    // the bytes are only inspected (signature, checksum, fields).
    unsafe { core::slice::from_raw_parts(addr as *const u8, len) }
}

fn checksum_ok(addr: usize, len: usize) -> bool {
    read_bytes(addr, len).iter().fold(0u8, |s, b| s.wrapping_add(*b)) == 0
}

fn u16_at(addr: usize) -> u16 {
    let b = read_bytes(addr, 2);
    u16::from_le_bytes([b[0], b[1]])
}

fn u32_at(addr: usize) -> u32 {
    let b = read_bytes(addr, 4);
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// !PXE: signature, StructLength (>= 0x58 in PXE 2.1, at least up to
/// EntryPointSP), checksum over StructLength bytes. Returns EntryPointSP.
fn check_bang_pxe(ptr: u32) -> Result<FarPtr, &'static str> {
    let addr = FarPtr::from_u32(ptr).linear();
    if ptr == 0 || addr + 0x58 > 0x10_0000 {
        return Err("null or out-of-range pointer");
    }
    if read_bytes(addr, 4) != b"!PXE" {
        return Err("no !PXE signature");
    }
    let len = read_bytes(addr + 4, 1)[0] as usize;
    if len < 0x14 {
        return Err("!PXE StructLength too short");
    }
    if !checksum_ok(addr, len) {
        return Err("!PXE checksum wrong");
    }
    let entry = FarPtr::from_u32(u32_at(addr + 0x10));
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
    if read_bytes(addr, 6) != b"PXENV+" {
        return Err("no PXENV+ signature");
    }
    let version = u16_at(addr + 6);
    let len = read_bytes(addr + 8, 1)[0] as usize;
    if len < 0x0E {
        return Err("PXENV+ Length too short");
    }
    if !checksum_ok(addr, len) {
        return Err("PXENV+ checksum wrong");
    }
    let rm_entry = FarPtr::from_u32(u32_at(addr + 0x0A));
    let pxe_ptr = (version >= 0x0201 && len >= 0x2C).then(|| u32_at(addr + 0x28));
    Ok((version, rm_entry, pxe_ptr))
}

impl Pxe {
    /// Finds the PXE API in the order the PXE spec gives an NBP. `log`
    /// receives one line per structure that was rejected, with the reason.
    pub fn find(log: &mut dyn FnMut(fmt::Arguments)) -> Result<Pxe, &'static str> {
        let e = super::entry_regs();
        match check_bang_pxe(e.bang_pxe) {
            Ok(entry) => {
                return Ok(Pxe { found: Found::BangPxeOnStack, entry, bang: true, struct_addr: FarPtr::from_u32(e.bang_pxe).linear() })
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
                return Ok(Pxe { found: Found::BangPxeViaPxenv, entry, bang: true, struct_addr: FarPtr::from_u32(p).linear() });
            }
        }
        Ok(Pxe { found, entry: rm_entry, bang: false, struct_addr: addr })
    }

    /// One PXE API call with the parameter block at linear `param`.
    /// Returns the Status word (the first u16 of every parameter block).
    fn call_raw(&self, op: u16, param: usize) -> Result<(), PxeError> {
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
        let status = u16_at(param);
        if r.eax & 0xffff == 0 {
            Ok(())
        } else {
            Err(PxeError { opcode: op, status })
        }
    }

    fn call<T>(&self, op: u16, block: &BaseMem<T>) -> Result<(), PxeError> {
        self.call_raw(op, block.addr())
    }
}

// ---- parameter blocks (PXE 2.1, packed little-endian) -------------------

#[repr(C, packed)]
#[derive(Clone, Copy)]
struct StatusOnly {
    status: u16,
    reserved: [u8; 10],
}

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

const FLTR_DIRECTED: u16 = 1;
const FLTR_BRDCST: u16 = 2;
const P_UNKNOWN: u8 = 0;
const XMT_DESTADDR: u8 = 0;

// The UNDI_ISR sequence (START, PROCESS, GET_NEXT) runs in pump.S.

pub const PACKET_TYPE_DHCP_ACK: u16 = 2;
/// The boot server's reply (proxyDHCP or PXE boot server), or the DHCPACK when there was none.
pub const PACKET_TYPE_CACHED_REPLY: u16 = 3;

static STATUS_BLOCK: BaseMem<StatusOnly> = BaseMem::new(StatusOnly { status: 0, reserved: [0; 10] });
static OPEN: BaseMem<UndiOpen> = BaseMem::new(UndiOpen { status: 0, open_flag: 0, pkt_filter: 0, mcast_count: 0, mcast: [[0; 6]; 8] });
static TRANSMIT: BaseMem<UndiTransmit> = BaseMem::new(UndiTransmit { status: 0, protocol: 0, xmit_flag: 0, dest_addr: 0, tbd: 0, reserved: [0; 2] });
static TBD: BaseMem<UndiTbd> = BaseMem::new(UndiTbd { immed_length: 0, xmit: 0, data_blk_count: 0, blocks: [[0; 8]; 8] });
static DEST: BaseMem<[u8; 6]> = BaseMem::new([0; 6]);
static INFO: BaseMem<UndiGetInformation> = BaseMem::new(UndiGetInformation {
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
});
static CACHED: BaseMem<GetCachedInfo> = BaseMem::new(GetCachedInfo { status: 0, packet_type: 0, buffer_size: 0, buffer: 0, buffer_limit: 0 });
/// Frames handed to UNDI_TRANSMIT. Two, used in turn, because a ROM may
/// still be reading the previous one when it never reports completion.
pub const TX_BUF_LEN: usize = 1536;
static TX_BUFS: BaseMem<[[u8; TX_BUF_LEN]; 2]> = BaseMem::new([[0; TX_BUF_LEN]; 2]);
pub struct UndiInfo {
    pub mac: [u8; 6],
    pub mtu: u16,
    pub irq: u16,
    pub io: u16,
}

/// A received frame in a slot of the receive ring (valid until the next pump).
pub struct RxFrame {
    pub addr: usize,
    pub len: usize,
}

impl RxFrame {
    pub fn bytes(&self) -> &[u8] {
        read_bytes(self.addr, self.len)
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
    ring_count: usize,
    ring_next: usize,
    pub stats: UndiStats,
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
}

extern "C" {
    static mut pump_ctl: PumpCtl;
    fn undi_pump();
}

/// The control block as a BaseMem view.
struct PumpRef;
impl PumpRef {
    #[allow(clippy::mut_from_ref)]
    fn get(&self) -> &mut PumpCtl {
        // SAFETY: pump_ctl is only touched here and by undi_pump, which runs
        // synchronously inside a thunk call; single-threaded.
        unsafe { &mut *core::ptr::addr_of_mut!(pump_ctl) }
    }
}
static PUMP: PumpRef = PumpRef;

/// undi_pump addresses its data CS-relative with CS = 0, so it must be
/// called as 0000:offset (link.ld keeps .text16 below 64 KiB).
fn undi_pump_addr() -> usize {
    let a = undi_pump as *const () as usize;
    assert!(a < 0x10000);
    a
}

/// Receive ring slots: a u16 length, then the frame (at most 1534 bytes).
/// 16-byte aligned: slot i is at segment base/16 + 96*i.
pub const RING_SLOTS: usize = 32;
#[repr(C, align(16))]
struct Ring([[u8; 1536]; RING_SLOTS]);
static RING: BaseMem<Ring> = BaseMem::new(Ring([[0; 1536]; RING_SLOTS]));

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
        let b = CACHED.get();
        *b = GetCachedInfo { status: 0, packet_type, buffer_size: 0, buffer: 0, buffer_limit: 0 };
        self.call(opcode::GET_CACHED_INFO, &CACHED)?;
        let b = *CACHED.get();
        let addr = FarPtr::from_u32(b.buffer).linear();
        let len = (b.buffer_size as usize).min(0x10_0000 - addr);
        Ok(read_bytes(addr, len))
    }

    fn status_call(&self, op: u16) -> Result<(), PxeError> {
        *STATUS_BLOCK.get() = StatusOnly { status: 0, reserved: [0; 10] };
        self.call(op, &STATUS_BLOCK)
    }

    pub fn undi_close(&self) -> Result<(), PxeError> {
        self.status_call(opcode::UNDI_CLOSE)
    }

    pub fn undi_open(&self) -> Result<(), PxeError> {
        *OPEN.get() = UndiOpen { status: 0, open_flag: 0, pkt_filter: FLTR_DIRECTED | FLTR_BRDCST, mcast_count: 0, mcast: [[0; 6]; 8] };
        self.call(opcode::UNDI_OPEN, &OPEN)
    }

    pub fn undi_get_information(&self) -> Result<UndiInfo, PxeError> {
        let b = INFO.get();
        b.status = 0;
        self.call(opcode::UNDI_GET_INFORMATION, &INFO)?;
        let b = *INFO.get();
        let mut mac = [0; 6];
        mac.copy_from_slice(&b.current_node_address[..6]);
        Ok(UndiInfo { mac, mtu: b.max_tran_unit, irq: b.int_number, io: b.base_io })
    }

    pub fn undi_shutdown(&self) -> Result<(), PxeError> {
        self.status_call(opcode::UNDI_SHUTDOWN)
    }

    pub fn stop_undi(&self) -> Result<(), PxeError> {
        self.status_call(opcode::STOP_UNDI)
    }

    pub fn unload_stack(&self) -> Result<(), PxeError> {
        self.status_call(opcode::UNLOAD_STACK)
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
    pub fn open(pxe: Pxe) -> Result<(Undi, UndiInfo), PxeError> {
        if pxe.undi_open().is_err() {
            let _ = pxe.undi_close();
            pxe.undi_open()?;
        }
        let info = pxe.undi_get_information()?;
        Ok((Undi { pxe, tx_next: 0, pending_tx: None, batch: false, ring_count: 0, ring_next: 0, stats: UndiStats::default() }, info))
    }

    /// A buffer in base memory to build the next frame in.
    pub fn tx_buffer(&mut self) -> &'static mut [u8; TX_BUF_LEN] {
        &mut TX_BUFS.get()[self.tx_next]
    }

    /// Fills the UNDI_TRANSMIT block for the first `len` bytes of transmit
    /// buffer `idx`: a whole Ethernet frame (header included, P_UNKNOWN),
    /// padded to 60 bytes.
    fn prepare_transmit(&mut self, idx: usize, len: usize) {
        let buf = &mut TX_BUFS.get()[idx];
        let len = if len < 60 {
            buf[len..60].fill(0);
            60
        } else {
            len
        };
        DEST.get().copy_from_slice(&buf[..6]);
        let buf_ptr = FarPtr::from_linear(buf.as_ptr() as usize);
        *TBD.get() = UndiTbd { immed_length: len as u16, xmit: far(buf_ptr), data_blk_count: 0, blocks: [[0; 8]; 8] };
        *TRANSMIT.get() = UndiTransmit {
            status: 0,
            protocol: P_UNKNOWN,
            xmit_flag: XMT_DESTADDR,
            dest_addr: far(FarPtr::from_linear(DEST.addr())),
            tbd: far(FarPtr::from_linear(TBD.addr())),
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
    pub fn flush_tx(&mut self) {
        if let Some((idx, len)) = self.pending_tx.take() {
            self.prepare_transmit(idx, len);
            self.stats.calls += 1;
            match self.pxe.call(opcode::UNDI_TRANSMIT, &TRANSMIT) {
                Ok(()) => self.stats.tx_frames += 1,
                Err(_) => self.stats.tx_errors += 1,
            }
        }
    }

    /// One trip to real mode (`undi_pump` in pump.S): sends the queued
    /// frame, then collects received frames into the ring until at least
    /// one is there or the TSC reaches `deadline_tsc`. Returns the number
    /// of frames now waiting in the ring.
    pub fn pump(&mut self, deadline_tsc: u64) -> usize {
        if self.ring_next < self.ring_count {
            return self.ring_count - self.ring_next;
        }
        let tx = self.pending_tx.take();
        if let Some((idx, len)) = tx {
            self.prepare_transmit(idx, len);
        }
        let ctl = PUMP.get();
        ctl.entry = far(self.pxe.entry);
        ctl.bang = self.pxe.bang as u16;
        ctl.tx = tx.is_some() as u16;
        ctl.tx_param = far(FarPtr::from_linear(TRANSMIT.addr()));
        ctl.ring_seg = (RING.addr() >> 4) as u16;
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
        let ctl = PUMP.get();
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
        self.ring_count = ctl.nframes as usize;
        self.ring_next = 0;
        self.stats.rx_frames += self.ring_count as u64;
        self.ring_count
    }

    /// The next frame from the ring (filled by [`Self::pump`]); no PXE call.
    pub fn next_rx(&mut self) -> Option<RxFrame> {
        if self.ring_next >= self.ring_count {
            return None;
        }
        let slot = &RING.get().0[self.ring_next];
        self.ring_next += 1;
        let len = u16::from_le_bytes([slot[0], slot[1]]) as usize;
        Some(RxFrame { addr: slot.as_ptr() as usize + 2, len })
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
    }
}

fn far(p: FarPtr) -> u32 {
    (p.segment as u32) << 16 | p.offset as u32
}
