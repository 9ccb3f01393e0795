//! chainloader.0: a PXE network bootstrap program that fetches a Multiboot2
//! kernel by TFTP and boots it directly.
//!
//! Flow: find the PXE stack, open UNDI, DHCP through smoltcp (or the ROM's
//! cached DHCPACK), read the boot config (option 209, else PXELINUX-style
//! candidates), fetch the kernel and modules into the staging area, plan
//! the boot, quiesce the NIC and jump. Every failure prints what went wrong
//! and ends in a visible reboot countdown.
#![no_std]
#![no_main]
// Hardware access lives in `arch` (and the allocator in `boot::heap`); the
// rest is safe Rust.
#![deny(unsafe_code)]

extern crate alloc;

#[allow(unsafe_code)]
mod arch;
mod boot;
mod console;
mod error;
mod fetch;
mod net;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use arch::{cpu, e820, idt, pxe};
use bootproto::config;
use core::net::Ipv4Addr;
use error::BootError;
use fetch::ConfigPlace;
use net::lease::Lease;
use net::Net;

/// Seconds shown before the machine resets after a failure.
const REBOOT_COUNTDOWN_S: u64 = 10;
/// How long DHCP may take before the ROM's cached DHCPACK is used.
const DHCP_TIMEOUT_MS: u64 = 4000;
/// HTTP's TCP receive buffer, which is the window the server may fill
/// before it waits for an ACK. Small on purpose: a window must fit what one
/// trip to real mode collects (the 32-slot UNDI ring, and the ROM's own
/// receive queue before it); beyond that frames are dropped and TCP backs
/// off. Measured, 3 MiB from the relay on a tap link: 256 KiB 4.2 MiB/s
/// (592 frames dropped), 96 KiB 4.0, 48 KiB 6.7, 32 KiB 11.1, 24 KiB 12.5,
/// 16 KiB 7.6 MiB/s.
const TCP_RX_BUFFER: usize = 24 * 1024;
const TCP_TX_BUFFER: usize = 4096;

/// The Rust entry (from modes.S, through `arch::chainloader_main`).
fn start() -> ! {
    console::init();
    idt::init();
    // Before the first real-mode call: an IRQ the ROM left unmasked and
    // asserted would otherwise storm (arch::pic).
    arch::pic::quiet_at_entry();
    println!("chainloader {}", env!("CARGO_PKG_VERSION"));
    let tsc_khz = cpu::calibrate_clock();
    match run(tsc_khz) {
        Err(e) => {
            println!("chainloader: {e}");
            reboot_countdown()
        }
    }
}

fn reboot_countdown() -> ! {
    print!("rebooting in {REBOOT_COUNTDOWN_S} s...");
    for s in (0..REBOOT_COUNTDOWN_S).rev() {
        cpu::delay_ms(1000);
        print!(" {s}");
    }
    println!();
    cpu::reset()
}

fn log_line(args: core::fmt::Arguments) {
    println!("  {args}");
}

enum Never {}

/// The boot, step by step. Each step prints what it found; the first that
/// fails ends the boot with its reason (and `start` counts down to a reset).
fn run(tsc_khz: u64) -> Result<Never, BootError> {
    let memory = check_memory(tsc_khz)?;
    let (pxe, mut net, mac) = bring_up_nic(&memory)?;
    let lease = dhcp(&mut net, &pxe)?;
    let server = file_server(&lease, &pxe)?;
    let staging = staging_and_socket_buffers(&memory.e820, &mut net)?;
    let (cfg_place, cfg) = read_config(&mut net, &lease, mac, server, staging)?;
    let placed = fetch_files(&mut net, &cfg, &cfg_place, staging)?;
    report_undi(&mut net, tsc_khz);
    let prepared = plan(cfg, staging, &placed, &memory.e820, &lease)?;
    hand_off(net, prepared)
}

/// What `check_memory` found.
struct Memory {
    e820: Vec<e820::E820Entry>,
    image_start: usize,
    bss_end: usize,
}

/// Base memory and our own footprint: .bss must end below the EBDA/PXE
/// stack (the top of base memory as INT 12h reports it). Then the E820 map,
/// read before the PXE stack is touched.
fn check_memory(tsc_khz: u64) -> Result<Memory, BootError> {
    let base_kib = arch::base_memory_kib();
    let (img_start, img_end, bss_end) = arch::image_layout();
    println!(
        "image {:#x}-{:#x} ({} KiB), .bss to {:#x}; base memory {} KiB; TSC {} MHz",
        img_start,
        img_end,
        (img_end - img_start) / 1024,
        bss_end,
        base_kib,
        tsc_khz / 1000
    );
    if bss_end > base_kib * 1024 {
        return Err(BootError::Memory { end: bss_end, top: base_kib * 1024 });
    }
    let e820 = e820::read().map_err(BootError::E820)?;
    let usable: u64 = e820.iter().filter(|e| e.kind == 1).map(|e| e.len).sum();
    println!("memory: {} E820 entries, {} MiB usable", e820.len(), usable >> 20);
    Ok(Memory { e820, image_start: img_start, bss_end })
}

/// Finds the PXE API and opens the NIC through UNDI, with smoltcp over it.
fn bring_up_nic(memory: &Memory) -> Result<(pxe::Pxe, Net, [u8; 6]), BootError> {
    let pxe = pxe::Pxe::find(&mut log_line).map_err(BootError::NoPxe)?;
    let er = arch::entry_regs();
    println!("PXE: {} at {:#x} (entry SS:SP {:04x}:{:04x})", pxe.found, pxe.struct_addr, er.ss, er.sp);
    let (start, end) = (memory.image_start, memory.bss_end);
    if pxe.struct_addr < end && pxe.struct_addr >= start {
        return Err(BootError::PxeInside { at: pxe.struct_addr, start, end });
    }
    let (undi, info) = pxe::Undi::open(pxe).map_err(BootError::Nic)?;
    println!("NIC: {info}");
    Ok((pxe, Net::new(undi, info.mac), info.mac))
}

/// DHCP with our user class, else the lease in the ROM's cached DHCPACK;
/// the interface is configured from it.
fn dhcp(net: &mut Net, pxe: &pxe::Pxe) -> Result<Lease, BootError> {
    let t0 = cpu::now_ms();
    let lease = match net.dhcp(DHCP_TIMEOUT_MS) {
        Some(l) => {
            println!("DHCP: {} ms", cpu::now_ms() - t0);
            l
        }
        None => {
            println!("DHCP: no answer after {} s, using the PXE ROM's cached DHCPACK", DHCP_TIMEOUT_MS / 1000);
            let raw = pxe.get_cached_info(pxe::PACKET_TYPE_DHCP_ACK).map_err(BootError::NoCachedAck)?;
            Lease::parse(raw).ok_or(BootError::CachedAckNoAddress)?
        }
    };
    net.configure(&lease);
    Ok(lease)
}

/// The server the files come from ([`tftp_server`]), printed with the lease.
fn file_server(lease: &Lease, pxe: &pxe::Pxe) -> Result<Ipv4Addr, BootError> {
    let (server, source) = tftp_server(lease, pxe)?;
    println!(
        "IP {}/{}, gateway {}, TFTP server {} ({source})",
        lease.ip,
        lease.prefix,
        lease.router.map(|r| r.to_string()).unwrap_or_else(|| "none".into()),
        server
    );
    Ok(server)
}

/// The staging area for the downloads, in RAM above 1 MiB. The download
/// sockets' buffers come off its end: base memory has no room for them,
/// and after the downloads (before the handoff plans where the kernel
/// goes) nothing needs them. Returns the part left for the files.
fn staging_and_socket_buffers(e820: &[e820::E820Entry], net: &mut Net) -> Result<&'static mut [u8], BootError> {
    let (stage_base, stage_len) = boot::staging_area(e820)?;
    // `staging_area` returns usable RAM that nothing else uses: not the
    // chainloader, its stack or page tables, not the firmware areas.
    let staging = arch::mem::high_mut(stage_base, stage_len);
    println!("staging: {} MiB at {:#x}", stage_len >> 20, stage_base);
    let (staging, buffers) = staging.split_at_mut(staging.len() - net::UDP_RX_DATA_LEN - TCP_RX_BUFFER - TCP_TX_BUFFER);
    let (udp_rx, buffers) = buffers.split_at_mut(net::UDP_RX_DATA_LEN);
    let (tcp_rx, tcp_tx) = buffers.split_at_mut(TCP_RX_BUFFER);
    net.enable_downloads(udp_rx, tcp_rx, tcp_tx);
    Ok(staging)
}

/// The boot config: each candidate in PXELINUX's order (or the one DHCP
/// names); one that is not there moves on to the next.
fn read_config(
    net: &mut Net,
    lease: &Lease,
    mac: [u8; 6],
    server: Ipv4Addr,
    staging: &mut [u8],
) -> Result<(ConfigPlace, config::BootConfig), BootError> {
    let candidates = fetch::config_candidates(lease, mac, server)?;
    for place in candidates.iter() {
        let f = match fetch::fetch_with_retry(net, &place.source, staging, true) {
            Ok(f) => f,
            Err(e) if e.not_found() => {
                println!("config {place}: not found");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let text = core::str::from_utf8(&staging[..f.size as usize])
            .map_err(|err| BootError::ConfigNotText { place: place.to_string(), err })?;
        let text = String::from(text);
        let cfg = config::parse(&text).map_err(|err| BootError::Config { place: place.to_string(), err })?;
        println!("config {place}: kernel {} {}, {} module(s)", cfg.kernel.path, cfg.kernel.args, cfg.modules.len());
        return Ok((place.clone(), cfg));
    }
    Err(BootError::NoConfig { tried: candidates.len() })
}

/// Kernel and modules, each at a page-aligned offset in the staging area.
/// Returns (offset, size) of each, kernel first.
fn fetch_files(
    net: &mut Net,
    cfg: &config::BootConfig,
    cfg_place: &ConfigPlace,
    staging: &mut [u8],
) -> Result<Vec<(usize, usize)>, BootError> {
    let mut placed: Vec<(usize, usize)> = Vec::new();
    let mut cursor = 0usize;
    for e in core::iter::once(&cfg.kernel).chain(cfg.modules.iter()) {
        let src = fetch::resolve(e, cfg_place)?;
        let f = fetch::fetch_with_retry(net, &src, &mut staging[cursor..], false)?;
        println!("{}: {}", e.path, net::rate(f.size, f.ms));
        placed.push((cursor, f.size as usize));
        cursor = (cursor + f.size as usize).next_multiple_of(4096);
    }
    net.http_drop();
    Ok(placed)
}

/// What UNDI did during the downloads, and the workarounds it needed.
fn report_undi(net: &mut Net, tsc_khz: u64) {
    let stats = net.dev.undi.stats;
    println!(
        "UNDI: {} PXE calls in {} trips to real mode ({} ms, {} ms of it from send to first frame received), {} frames in ({} dropped), {} out, {} transmit errors",
        stats.calls, stats.pumps, stats.pump_tsc / tsc_khz, stats.wait_tsc / tsc_khz, stats.rx_frames, stats.rx_dropped, stats.tx_frames, stats.tx_errors
    );
    let used = net.dev.undi.run_workarounds();
    if used.any() {
        println!("UNDI workarounds used: {used}");
    }
}

/// Checks the kernel and plans where everything goes (`boot::prepare`),
/// while the network still works: a failure is reported like any other.
fn plan(
    cfg: config::BootConfig,
    staging: &'static [u8],
    placed: &[(usize, usize)],
    e820: &[e820::E820Entry],
    lease: &Lease,
) -> Result<(&'static str, boot::PreparedBoot), BootError> {
    let file = |i: usize, e: &'static config::Entry| boot::StagedFile {
        name: &e.path,
        args: &e.args,
        data: &staging[placed[i].0..placed[i].0 + placed[i].1],
    };
    let cfg: &'static config::BootConfig = alloc::boxed::Box::leak(alloc::boxed::Box::new(cfg));
    let kernel = file(0, &cfg.kernel);
    let modules: Vec<boot::StagedFile> = cfg.modules.iter().enumerate().map(|(i, m)| file(i + 1, m)).collect();
    let loader_name = cfg.loader_name.as_deref().unwrap_or(boot::LOADER_NAME);
    let prepared = boot::prepare(kernel, &modules, e820, Some(&lease.raw), loader_name)?;
    for w in &prepared.warnings {
        println!("{w}");
    }
    println!("boot: {prepared}");
    Ok((&cfg.kernel.path, prepared))
}

/// Quiesces the NIC (UNDI closed, shut down, the stack unloaded) and hands
/// off to the kernel.
fn hand_off(net: Net, (kernel, prepared): (&str, boot::PreparedBoot)) -> ! {
    println!("booting {kernel}");
    let mut undi = net.dev.undi;
    boot::boot(prepared, move || undi.shutdown(&mut log_line))
}

/// Where the config, kernel and modules come from. When our own DHCPACK
/// speaks of booting (boot file, option 66 or 209), its next-server wins: a
/// netboot-aware server tagged us. Otherwise (a site DHCP server that knows
/// nothing of netbooting, with a proxyDHCP server beside it; dnsmasq still
/// puts itself in siaddr) the files live where chainloader.0 came from: the
/// boot server in the PXE ROM's cached boot-server reply (PXE 2.1 packet
/// type 3, the proxyDHCP or boot server answer), else in its cached
/// DHCPACK, as PXELINUX does. Then our next-server, then the DHCP server's
/// identifier (option 54).
fn tftp_server(lease: &Lease, pxe: &pxe::Pxe) -> Result<(Ipv4Addr, &'static str), BootError> {
    if let (true, Some(s)) = (lease.has_boot_info(), lease.next_server) {
        return Ok((s, "next-server of the DHCPACK"));
    }
    let cached = |t| pxe.get_cached_info(t).ok().and_then(net::lease::next_server);
    if let Some(s) = cached(pxe::PACKET_TYPE_CACHED_REPLY) {
        return Ok((s, "boot server of the PXE ROM's cached reply"));
    }
    if let Some(s) = cached(pxe::PACKET_TYPE_DHCP_ACK) {
        return Ok((s, "next-server of the PXE ROM's cached DHCPACK"));
    }
    if let Some(s) = lease.next_server {
        return Ok((s, "next-server of the DHCPACK"));
    }
    lease.server_id.map(|s| (s, "DHCP server identifier")).ok_or(BootError::NoServer)
}

/// Any CPU exception (from the IDT's stubs, through `arch::idt`).
fn exception(f: &idt::ExceptionFrame) -> ! {
    println!(
        "chainloader: CPU exception {} (error code {:#x}) at RIP {:#x}, RSP {:#x}",
        f.vector, f.error_code, f.rip, f.rsp
    );
    reboot_countdown()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("chainloader: panic: {info}");
    reboot_countdown()
}
