//! Header-variant conformance: Multiboot2 kernels composed from a
//! description (tests/harness/mbgen.rs: which header tags with which
//! values, in an ELF32, ELF64 or flat container) are booted through GRUB 2
//! netboot and through chainloader.0, and the whole handoff is compared:
//! the hash of every loaded range (checked against the file too), the
//! entry point, the registers, CR0/CR4/EFER/EFLAGS, the segment registers
//! and their descriptors, and every boot information tag the kernel reads
//! (1, 2, 3, 4, 6, 8, 9, 14/15, 16, 21, and a hash of any other).
//!
//! Headers GRUB refuses must be refused by both: GRUB prints its error,
//! chainloader.0 names the tag or field and counts down to a reboot.
//!
//! The differences that remain are computed and checked, not tolerated
//! (see `expected_differences`): the boot loader name (ours must pass
//! Xen's GRUB 2 test), the memory QEMU's iPXE ROM hides at the top of the
//! RAM region above 1 MiB, which depends on the size of the NBP it loaded
//! first (GRUB's core.0 or chainloader.0), tag 16 (ours only), GRUB's
//! EFLAGS.ID after it set a VBE mode, and GRUB's uninitialised tag 7
//! protected-mode interface.
//!
//! `scripts/test` runs the `quick` variants; `scripts/conformance` runs
//! them all (`--run-ignored all`).

use bootproto::multiboot2::htag;
use e2e::grub::GrubNetboot;
use e2e::mbgen::{Blob, Container, Expect, HeaderFault, Image, Layout, Tag, Variant, V};
use e2e::qemu::{debug_exit_status, Qemu, QemuConfig};
use e2e::{dist, write_file};
use std::collections::BTreeMap;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(180);
const MOD1: &[u8] = b"module one: plain text\n";

fn mod2() -> Vec<u8> {
    (0..10_000u32).map(|i| (i.wrapping_mul(2_246_822_519) >> 19) as u8).collect()
}

fn cmdline(v: &Variant) -> String {
    format!("console=ttyS0 variant={}", v.name)
}

// ---------------------------------------------------------------- variants

fn req(types: &[u32]) -> Tag {
    Tag::InfoRequest { optional: false, types: types.to_vec() }
}
/// What mbtest reads, asked for as required.
fn req_usual() -> Tag {
    req(&[1, 2, 3, 4, 6, 8, 9, 14, 16, 21])
}
fn entry() -> Tag {
    Tag::Entry { addr: V::Auto, size: 12, optional: false }
}
fn address() -> Tag {
    Tag::Address { header_addr: V::Auto, load_addr: V::Auto, load_end_addr: V::Auto, bss_end_addr: V::Auto }
}
fn reloc(min: u32, max: u32, align: u32, preference: u32) -> Tag {
    Tag::Relocatable { min, max, align, preference, optional: false }
}
fn boot(name: &'static str, layout: Layout, tags: Vec<Tag>) -> Variant {
    Variant { name, layout, tags, expect: Expect::Boot }
}
fn refuse(name: &'static str, layout: Layout, tags: Vec<Tag>, grub: &'static str, ours: &'static str) -> Variant {
    Variant { name, layout, tags, expect: Expect::Refuse { grub, ours } }
}

/// Every header variant. Adding one is adding a line here and a line to
/// the `variants!` list below.
fn variant(name: &str) -> Variant {
    let elf32 = Layout::elf32;
    let elf64 = Layout::elf64;
    let flat = || Layout::flat(0x20_0000);
    // Nautilus (HExSA-Lab/nautilus src/arch/x64/asm/boot.S, link/nautilus.ld):
    // ELF64, the header alone in .mbhdr at 0x100000 (file offset 0x1000),
    // the address tag's load_addr = _loadStart = 0x100040 just after it,
    // load_end_addr, bss_end_addr, and a 16-byte entry tag at 0x100040.
    let nautilus = || Layout { hdr_space: 0x40, load_skip: 0x40, sections: false, ..Layout::elf64() };
    let reloc_elf = || Layout { base: 0x20_0000, ..Layout::elf32() };
    let v = match name {
        // ELF, loaded by the program headers.
        "elf32_usual" => boot(
            "elf32_usual",
            elf32(),
            vec![req_usual(), Tag::ConsoleFlags { flags: 2, optional: false }, Tag::ModuleAlign { optional: true }],
        ),
        "elf64_usual" => boot(
            "elf64_usual",
            elf64(),
            vec![req_usual(), Tag::ConsoleFlags { flags: 2, optional: false }, Tag::ModuleAlign { optional: true }],
        ),
        "elf32_no_tags" => boot("elf32_no_tags", elf32(), vec![]),
        "elf64_no_sections" => boot("elf64_no_sections", Layout { sections: false, ..elf64() }, vec![req_usual()]),
        "elf32_two_segments" => {
            boot("elf32_two_segments", Layout { second_segment: Some(0x30_0000), ..elf32() }, vec![req_usual()])
        }
        "elf64_two_segments" => {
            boot("elf64_two_segments", Layout { second_segment: Some(0x30_0000), ..elf64() }, vec![req_usual()])
        }
        "elf64_higher_half" => {
            boot("elf64_higher_half", Layout { vaddr_offset: 0xffff_ffff_8000_0000, ..elf64() }, vec![req_usual()])
        }
        "elf32_higher_half" => {
            boot("elf32_higher_half", Layout { vaddr_offset: 0xc000_0000, ..elf32() }, vec![req_usual()])
        }
        "elf32_note_and_stack_phdrs" => {
            boot("elf32_note_and_stack_phdrs", Layout { extra_phdrs: true, ..elf32() }, vec![req_usual()])
        }
        // GRUB: an entry address tag wins over e_entry (multiboot_mbi2.c,
        // grub_multiboot2_load: payload_eip = entry when entry_specified).
        // e_entry points at the decoy (exit 0x12).
        "elf32_entry_tag_wins" => {
            boot("elf32_entry_tag_wins", Layout { e_entry: Some(0x10_0202), ..elf32() }, vec![req_usual(), entry()])
        }
        "elf64_entry_tag_wins" => boot(
            "elf64_entry_tag_wins",
            Layout { e_entry: Some(0x10_0202), ..elf64() },
            vec![req_usual(), Tag::Entry { addr: V::Auto, size: 16, optional: false }],
        ),
        // Address tag (a.out kludge).
        "aout_usual" => boot("aout_usual", flat(), vec![address(), entry(), req_usual()]),
        "aout_nautilus" => {
            boot("aout_nautilus", nautilus(), vec![address(), Tag::Entry { addr: V::Auto, size: 16, optional: false }])
        }
        "aout_nautilus_flat" => boot(
            "aout_nautilus_flat",
            Layout { container: Container::Flat, base: 0x20_0000, ..nautilus() },
            vec![address(), Tag::Entry { addr: V::Auto, size: 16, optional: false }],
        ),
        "aout_load_addr_ffffffff" => boot(
            "aout_load_addr_ffffffff",
            flat(),
            vec![
                Tag::Address {
                    header_addr: V::Auto,
                    load_addr: V::Is(0xffff_ffff),
                    load_end_addr: V::Is(0),
                    bss_end_addr: V::Is(0),
                },
                entry(),
                req_usual(),
            ],
        ),
        "aout_load_addr_ffffffff_in_elf" => boot(
            "aout_load_addr_ffffffff_in_elf",
            Layout { base: 0x20_0000, sections: false, ..elf64() },
            vec![
                Tag::Address {
                    header_addr: V::Auto,
                    load_addr: V::Is(0xffff_ffff),
                    load_end_addr: V::Is(0),
                    bss_end_addr: V::Auto,
                },
                entry(),
            ],
        ),
        "aout_load_end_0" => boot(
            "aout_load_end_0",
            flat(),
            vec![
                Tag::Address {
                    header_addr: V::Auto,
                    load_addr: V::Auto,
                    load_end_addr: V::Is(0),
                    bss_end_addr: V::Auto,
                },
                entry(),
            ],
        ),
        "aout_bss_end_0" => boot(
            "aout_bss_end_0",
            flat(),
            vec![
                Tag::Address {
                    header_addr: V::Auto,
                    load_addr: V::Auto,
                    load_end_addr: V::Auto,
                    bss_end_addr: V::Is(0),
                },
                entry(),
            ],
        ),
        // The header as far into the file as loaders search (32 KiB).
        "elf32_header_at_28k" => {
            boot("elf32_header_at_28k", Layout { elf_region_offset: 0x7000, ..elf32() }, vec![req_usual()])
        }
        // gzip-compressed files (GRUB's gzio, chainloader.0's inflater).
        "elf64_gzip" => boot("elf64_gzip", Layout { gzip: true, ..elf64() }, vec![req_usual()]),
        "aout_nautilus_gzip" => boot(
            "aout_nautilus_gzip",
            Layout { gzip: true, ..nautilus() },
            vec![address(), Tag::Entry { addr: V::Auto, size: 16, optional: false }],
        ),
        // Relocatable (tag 10), flat and ELF, each preference.
        "reloc_aout_high" => boot(
            "reloc_aout_high",
            flat(),
            vec![address(), entry(), reloc(0x100_0000, 0x800_0000, 0x20_0000, 2), req_usual()],
        ),
        "reloc_aout_low" => boot(
            "reloc_aout_low",
            flat(),
            vec![address(), entry(), reloc(0x100_0000, 0x800_0000, 0x20_0000, 1), req_usual()],
        ),
        "reloc_aout_none" => boot(
            "reloc_aout_none",
            flat(),
            vec![address(), entry(), reloc(0x100_0000, 0x800_0000, 0x20_0000, 0), req_usual()],
        ),
        "reloc_elf_high" => {
            boot("reloc_elf_high", reloc_elf(), vec![reloc(0x100_0000, 0x800_0000, 0x20_0000, 2), req_usual()])
        }
        "reloc_elf_low" => {
            boot("reloc_elf_low", reloc_elf(), vec![reloc(0x100_0000, 0x800_0000, 0x20_0000, 1), req_usual()])
        }
        "reloc_elf_none_align_0" => {
            boot("reloc_elf_none_align_0", reloc_elf(), vec![reloc(0x40_0000, 0x1000_0000, 0, 0), req_usual()])
        }
        "reloc_elf64_high_4k" => boot(
            "reloc_elf64_high_4k",
            Layout { base: 0x20_0000, ..elf64() },
            vec![reloc(0x20_0000, 0x1800_0000, 0x1000, 2), req_usual()],
        ),
        // Preference high with the window reaching the top of RAM, 2 MiB
        // aligned. (With 4 KiB alignment GRUB places the kernel below its own
        // heap, which fills the top ~744 KiB of RAM: not a rule a loader
        // without GRUB's heap can follow, so that case is not compared.)
        "reloc_aout_high_top_of_ram" => boot(
            "reloc_aout_high_top_of_ram",
            flat(),
            vec![address(), entry(), reloc(0x100_0000, 0xffff_ffff, 0x20_0000, 2), req_usual()],
        ),
        // Module alignment, console flags, framebuffer, EFI tags.
        "module_align_required" => {
            boot("module_align_required", elf32(), vec![req_usual(), Tag::ModuleAlign { optional: false }])
        }
        "console_ega_required" => {
            boot("console_ega_required", elf32(), vec![req_usual(), Tag::ConsoleFlags { flags: 3, optional: false }])
        }
        "console_no_ega" => {
            boot("console_no_ega", elf32(), vec![req_usual(), Tag::ConsoleFlags { flags: 0, optional: false }])
        }
        "fb_text_optional" => boot(
            "fb_text_optional",
            elf32(),
            vec![req_usual(), Tag::Framebuffer { width: 0, height: 0, depth: 0, optional: true }],
        ),
        "fb_text_required" => boot(
            "fb_text_required",
            elf32(),
            vec![req_usual(), Tag::Framebuffer { width: 80, height: 25, depth: 0, optional: false }],
        ),
        "fb_graphics_optional" => boot(
            "fb_graphics_optional",
            elf32(),
            vec![req_usual(), Tag::Framebuffer { width: 800, height: 600, depth: 32, optional: true }],
        ),
        "fb_graphics_required" => boot(
            "fb_graphics_required",
            elf32(),
            vec![
                req_usual(),
                Tag::Framebuffer { width: 1024, height: 768, depth: 32, optional: false },
                Tag::ConsoleFlags { flags: 0, optional: false },
            ],
        ),
        "efi_bs_optional" => boot("efi_bs_optional", elf32(), vec![req_usual(), Tag::EfiBs { optional: true }]),
        "efi_bs_required" => boot("efi_bs_required", elf32(), vec![req_usual(), Tag::EfiBs { optional: false }]),
        "entry_efi64_required" => boot(
            "entry_efi64_required",
            elf64(),
            vec![req_usual(), Tag::EntryEfi { ty: htag::ENTRY_ADDRESS_EFI64, addr: V::Is(0x10_0202), optional: false }],
        ),
        "entry_efi_both_optional" => boot(
            "entry_efi_both_optional",
            flat(),
            vec![
                address(),
                entry(),
                Tag::EntryEfi { ty: htag::ENTRY_ADDRESS_EFI32, addr: V::Is(0x20_0202), optional: true },
                Tag::EntryEfi { ty: htag::ENTRY_ADDRESS_EFI64, addr: V::Is(0x20_0202), optional: true },
            ],
        ),
        "unknown_optional_tags" => boot(
            "unknown_optional_tags",
            elf32(),
            vec![
                Tag::Raw { ty: 11, flags: 1, body: vec![1, 2, 3, 4, 5] },
                req_usual(),
                Tag::Raw { ty: 0x4242, flags: 1, body: vec![] },
            ],
        ),
        // Information requests: every type GRUB accepts as required (it
        // supplies what it has and skips the rest), all types as optional.
        "ireq_required_supplied" => {
            boot("ireq_required_supplied", elf32(), vec![req(&[0, 1, 2, 3, 4, 6, 8, 9, 14, 15, 16, 21])])
        }
        "ireq_required_not_supplied" => {
            boot("ireq_required_not_supplied", elf32(), vec![req(&[5, 7, 10, 11, 12, 17, 18, 19, 20])])
        }
        "ireq_optional_all" => boot(
            "ireq_optional_all",
            elf64(),
            vec![Tag::InfoRequest { optional: true, types: (0..=24).chain([0x7fff_ffff, 0xffff_ffff]).collect() }],
        ),
        // Refused by GRUB 2.06 (grub-core/loader/multiboot_mbi2.c and
        // multiboot_elfxx.c); both loaders must refuse.
        "refuse_unknown_required" => refuse(
            "refuse_unknown_required",
            elf32(),
            vec![req_usual(), Tag::Raw { ty: 42, flags: 0, body: vec![] }],
            r"unsupported tag: 0x2a",
            r"tag type 42 .*not marked optional",
        ),
        "refuse_entry_efi32_required" => refuse(
            "refuse_entry_efi32_required",
            flat(),
            vec![address(), entry(), Tag::EntryEfi { ty: htag::ENTRY_ADDRESS_EFI32, addr: V::Auto, optional: false }],
            r"unsupported tag: 0x8",
            r"tag type 8 .*not marked optional",
        ),
        "refuse_ireq_smbios" => refuse(
            "refuse_ireq_smbios",
            elf32(),
            vec![req(&[1, 13])],
            r"unsupported information tag: 0xd",
            r"information request.*tag type 13",
        ),
        "refuse_ireq_22" => refuse(
            "refuse_ireq_22",
            elf32(),
            vec![req(&[22])],
            r"unsupported information tag: 0x16",
            r"information request.*tag type 22",
        ),
        "refuse_address_without_entry" => refuse(
            "refuse_address_without_entry",
            flat(),
            vec![address()],
            r"load address tag without entry address tag",
            r"address tag .*entry",
        ),
        "refuse_reloc_window_too_small" => refuse(
            "refuse_reloc_window_too_small",
            flat(),
            vec![address(), entry(), reloc(0x100_0000, 0x100_1000, 0x1000, 0)],
            r"invalid min/max address and/or load size",
            r"relocatable .*(min|max)",
        ),
        "refuse_entry_outside_segments" => refuse(
            "refuse_entry_outside_segments",
            Layout { e_entry: Some(0x500_0000), ..elf32() },
            vec![req_usual()],
            r"entry point isn't in a segment",
            r"entry point .*segment",
        ),
        "refuse_header_beyond_32k" => refuse(
            "refuse_header_beyond_32k",
            Layout { elf_region_offset: 0x8000, ..elf32() },
            vec![req_usual()],
            r"no multiboot header found",
            r"(?i)no multiboot2? header",
        ),
        "refuse_bad_checksum" => refuse(
            "refuse_bad_checksum",
            Layout { header_fault: Some(HeaderFault::Checksum), ..elf32() },
            vec![req_usual()],
            r"no multiboot header found",
            r"(?i)no multiboot2? header",
        ),
        "refuse_architecture_mips" => refuse(
            "refuse_architecture_mips",
            Layout { header_fault: Some(HeaderFault::Architecture(4)), ..elf32() },
            vec![req_usual()],
            r"no multiboot header found",
            r"(?i)(no multiboot2? header|architecture)",
        ),
        "refuse_elf_rel_section" => refuse(
            "refuse_elf_rel_section",
            Layout { rel_section: true, ..elf32() },
            vec![req_usual()],
            r"ELF files with relocs are not supported yet",
            r"(?i)relocation",
        ),
        "refuse_e_entry_outside_with_entry_tag" => refuse(
            "refuse_e_entry_outside_with_entry_tag",
            Layout { e_entry: Some(0x500_0000), ..elf32() },
            vec![req_usual(), entry()],
            r"entry point isn't in a segment",
            r"entry point .*segment",
        ),
        other => panic!("no variant {other}"),
    };
    assert_eq!(v.name, name);
    v
}

// ------------------------------------------------------------------ boots

/// The kernel's report lines, "mbtest: " stripped, CRs removed. The first
/// may follow the loader's last output on the same line (GRUB's console
/// ends without a newline).
fn report(console: &str) -> Vec<String> {
    console
        .lines()
        .filter_map(|l| {
            l.trim_end_matches('\r').find("mbtest: ").map(|i| l.trim_end_matches('\r')[i + 8..].to_string())
        })
        .collect()
}

/// A line diff (longest common subsequence): "  same", "< ours", "> GRUB".
fn diff(o: &[String], g: &[String]) -> String {
    let (n, m) = (o.len(), g.len());
    let mut lcs = vec![vec![0u16; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if o[i] == g[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && o[i] == g[j] {
            out += &format!("  {}\n", o[i]);
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out += &format!("> {}\n", g[j]);
            j += 1;
        } else {
            out += &format!("< {}\n", o[i]);
            i += 1;
        }
    }
    out
}

/// Waits for the kernel's "done" (and the 0x10 exit) or, failing that,
/// returns what the machine printed, so the comparison shows it.
fn run_to_done(mut q: Qemu, who: &str, name: &str) -> String {
    // GRUB may print an error and still boot (no such video mode: text);
    // it is done when `boot` finds nothing loaded.
    let done = q.try_expect(r"mbtest: done|mbtest: bad magic|rebooting in|you need to load the kernel first", BOOT);
    if done.as_deref().is_some_and(|d| d != "mbtest: done") {
        // A refusal: the message is out; the countdown need not run down.
        q.try_expect(r"(rebooting in|kernel first)[^\n]*\n", Duration::from_secs(2));
        return q.output();
    }
    let code = q.wait_exit(Duration::from_secs(20));
    let out = q.output();
    assert!(done.is_some() || code.is_some(), "{who}: {name}: no verdict within {BOOT:?}:\n{out}");
    if out.contains("mbtest: done") {
        assert_eq!(code, Some(debug_exit_status(0x10)), "{who}: {name}: kernel done but QEMU exit {code:?}:\n{out}");
    }
    format!("{out}\n[qemu exit {code:?}]")
}

fn grub_boot(v: &Variant, img: &Image) -> String {
    let m2 = mod2();
    let script = format!(
        "echo 'grub: variant {n}'\nmultiboot2 /{n} {c}\nmodule2 /mod1 first module\nmodule2 /mod2 second\nboot\n",
        n = v.name,
        c = cmdline(v)
    );
    let g = GrubNetboot::with_script(&[(v.name, &img.file), ("mod1", MOD1), ("mod2", &m2)], &script);
    let q = Qemu::start(&QemuConfig::user_net(g.root(), GrubNetboot::BOOTFILE));
    run_to_done(q, "GRUB 2", v.name)
}

fn chainloader_boot(v: &Variant, img: &Image) -> String {
    let dir = tempfile::Builder::new().prefix("netboot-conf-").tempdir().unwrap();
    std::fs::copy(dist("chainloader.0"), dir.path().join("chainloader.0")).unwrap();
    write_file(dir.path(), v.name, &img.file);
    write_file(dir.path(), "mod1", MOD1);
    write_file(dir.path(), "mod2", mod2());
    write_file(
        dir.path(),
        "chainloader.cfg/default",
        format!("kernel /{} {}\nmodule /mod1 first module\nmodule /mod2 second\n", v.name, cmdline(v)),
    );
    let q = Qemu::start(&QemuConfig::user_net(dir.path(), "chainloader.0"));
    run_to_done(q, "chainloader.0", v.name)
}

// ------------------------------------------------------------- comparison

/// "key=value" fields of a report line.
fn fields(l: &str) -> BTreeMap<String, String> {
    l.split_whitespace().filter_map(|w| w.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))).collect()
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap_or_else(|_| panic!("not hex: {s}"))
}

/// Applies the expected differences to chainloader.0's report, so that it
/// must then equal GRUB's line for line. Each rule asserts the difference
/// it removes is exactly the computed one.
fn expected_differences(ours: &[String], grub: &[String], problems: &mut Vec<String>) -> (Vec<String>, Vec<String>) {
    // chainloader.0 is a bigger NBP than GRUB's core.0: QEMU's iPXE ROM
    // hides more RAM at the top of the region at 1 MiB (see
    // e2e::ipxe_hidden_for_nbp); its length and mem_upper are smaller by
    // exactly the page-rounded size difference.
    let delta = -e2e::ram_region_difference_grub_minus_chainloader();
    let grub_has_net = grub.iter().any(|l| l.starts_with("tag 16 "));
    let grub_set_vbe_mode = grub.iter().any(|l| l.starts_with("tag 7 "));
    let mut o: Vec<String> = vec![];
    let mut g: Vec<String> = vec![];
    for (src, dst, is_ours) in [(ours, &mut o, true), (grub, &mut g, false)] {
        let mut tag_sizes = 0u64;
        let mut total = 0u64;
        for l in src {
            if let Some(rest) = l.strip_prefix("tag 2 size ") {
                // The boot loader name differs by design. chainloader.0's
                // must contain "GRUB " and a non-zero digit (Xen's
                // multiboot2 code checks for GRUB 2 that way).
                let name = rest.split_once(" '").map(|x| x.1.trim_end_matches('\'')).unwrap_or("");
                if is_ours {
                    let ok = name
                        .match_indices("GRUB ")
                        .any(|(i, _)| name[i + 5..].chars().next().is_some_and(|c| c.is_ascii_digit() && c != '0'));
                    if !ok {
                        problems.push(format!(
                            "chainloader.0's boot loader name {name:?} must contain \"GRUB \" and a non-zero digit"
                        ));
                    }
                } else {
                    assert!(name.starts_with("GRUB 2.06"), "GRUB's name {name:?}");
                }
                tag_sizes += (rest.split_whitespace().next().unwrap().parse::<u64>().unwrap() + 7) & !7;
                dst.push("tag 2 <boot loader name>".into());
                continue;
            }
            if let Some(t) = l.strip_prefix("tag ") {
                let mut w = t.split_whitespace();
                let (ty, _, size) = (w.next().unwrap(), w.next(), w.next().unwrap_or("0"));
                if ty != "0" {
                    tag_sizes += (size.parse::<u64>().unwrap_or(0) + 7) & !7;
                } else {
                    tag_sizes += 8;
                }
            }
            // Tag 16: GRUB 2.06 netbooted by the PXE ROM gives none
            // (measured: Debian 2.06-13+deb12u2 under QEMU); chainloader.0
            // gives the DHCPACK it received (README). It must be QEMU's
            // answer to us: a BOOTREPLY for 10.0.2.15 from server 10.0.2.2.
            if is_ours && !grub_has_net && (l.starts_with("tag 16 ") || l.starts_with("  net ")) {
                if l.starts_with("tag 16 ") {
                    assert!(l.ends_with(" op=2"), "chainloader.0's tag 16 is not a BOOTREPLY: {l}");
                } else {
                    assert_eq!(l, "  net yiaddr=0f02000a siaddr=0202000a", "chainloader.0's DHCPACK");
                }
                continue;
            }
            // EFLAGS.ID (bit 21): GRUB 2.06 toggles it, and leaves it so,
            // when it sets a VBE mode: grub-core/video/i386/pc/vbe.c calls
            // grub_cpu_is_cpuid_supported (include/grub/i386/cpuid.h), which
            // flips ID to probe for CPUID and never flips it back. So with
            // tag 7 present GRUB hands over EFLAGS | 0x200000; chainloader.0
            // leaves ID clear.
            if !is_ours && grub_set_vbe_mode && l.starts_with("eax=") {
                let f = fields(l);
                let eflags = hex(&f["eflags"]);
                assert_eq!(eflags & 0x20_0000, 0x20_0000, "GRUB set a VBE mode and left EFLAGS.ID clear?: {l}");
                dst.push(l.replace(&format!("eflags={eflags:08x}"), &format!("eflags={:08x}", eflags & !0x20_0000)));
                continue;
            }
            // Tag 7's protected-mode interface (vbe_interface_seg/off, the
            // pm= field): QEMU's SeaVGABIOS has no VBE function 4F0A, and
            // GRUB 2.06 then reports stack garbage: grub-core/video/i386/pc/
            // vbe.c grub_vbe_bios_get_pm_interface zeroes the results on
            // failure and then overwrites them with registers it never set.
            // chainloader.0 reports what the failed call gives back: 0.
            if l.starts_with("tag 7 ") {
                let pm = fields(l).get("pm").cloned().unwrap_or_default();
                if is_ours && pm != "00000000" {
                    problems.push(format!(
                        "chainloader.0's tag 7 must report no protected-mode interface (pm=00000000): {l}"
                    ));
                }
                dst.push(l.replace(&format!("pm={pm}"), "pm=<no 4F0A>"));
                continue;
            }
            if l.starts_with("total_size=") {
                total = hex(&fields(l)["total_size"]);
                dst.push("total_size=<sum of the tags>".into());
                continue;
            }
            if is_ours {
                if let Some(rest) = l.strip_prefix("  mmap ") {
                    let f: Vec<&str> = rest.split_whitespace().collect();
                    if hex(f[0]) == 0x10_0000 && f[2] == "1" {
                        let len = hex(f[1]) as i64 - delta;
                        dst.push(format!("  mmap {} {:016x} {}", f[0], len, f[2]));
                        continue;
                    }
                }
                if l.starts_with("tag 4 ") {
                    let f = fields(l);
                    let upper: i64 = f["upper"].parse().unwrap();
                    dst.push(format!("tag 4 size 16 lower={} upper={}", f["lower"], upper - delta / 1024));
                    continue;
                }
            }
            dst.push(l.clone());
        }
        assert_eq!(
            total,
            8 + tag_sizes,
            "{}: total_size is not the sum of the tags",
            if is_ours { "chainloader.0" } else { "GRUB" }
        );
    }
    (o, g)
}

/// The range hashes the kernel printed must be the file's.
fn check_ranges(who: &str, r: &[String], img: &Image) {
    let base = r.iter().find(|l| l.starts_with("eax=")).map(|l| hex(&fields(l)["base"]) as u32);
    let Some(base) = base else { return };
    let delta = base.wrapping_sub(img.entry);
    for (i, want) in img.ranges.iter().enumerate() {
        let line = r
            .iter()
            .find(|l| l.starts_with(&format!("range {i} ")))
            .unwrap_or_else(|| panic!("{who}: no range {i} in {r:#?}"));
        let f = fields(line);
        assert_eq!(hex(&f["addr"]) as u32, want.addr.wrapping_add(delta), "{who}: range {i} address");
        assert_eq!(
            hex(&f["fnv"]) as u32,
            want.fnv,
            "{who}: range {i} ({:#x}, {:#x} bytes) does not hold what the file says",
            want.addr,
            want.len
        );
    }
}

fn conformance(name: &str) {
    let v = variant(name);
    assert!(matches!(v.expect, Expect::Boot), "{name} is refused: it belongs in REFUSED");
    let img = Blob::dist().compose(&v);
    let grub = grub_boot(&v, &img);
    let ours = chainloader_boot(&v, &img);
    println!("===== GRUB 2\n{grub}\n===== chainloader.0\n{ours}\n===== expected ranges {:#x?}", img.ranges);
    let (rg, ro) = (report(&grub), report(&ours));
    assert!(rg.iter().any(|l| l == "done"), "GRUB 2 did not run {name} to the end:\n{grub}");
    check_ranges("GRUB 2", &rg, &img);
    assert!(ro.iter().any(|l| l == "done"), "chainloader.0 did not run {name} (GRUB did):\n{ours}");
    check_ranges("chainloader.0", &ro, &img);
    let mut problems = vec![];
    let (o, g) = expected_differences(&ro, &rg, &mut problems);
    if o != g {
        problems.push(format!("chainloader.0 (<) and GRUB 2 (>) hand over differently:\n{}", diff(&o, &g)));
    }
    assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
}

/// Headers GRUB 2.06 refuses: one of each kind in scripts/test, the rest
/// in scripts/conformance.
const REFUSED_QUICK: &[&str] =
    &["refuse_unknown_required", "refuse_ireq_smbios", "refuse_address_without_entry", "refuse_header_beyond_32k"];
const REFUSED_FULL: &[&str] = &[
    "refuse_entry_efi32_required",
    "refuse_ireq_22",
    "refuse_reloc_window_too_small",
    "refuse_entry_outside_segments",
    "refuse_e_entry_outside_with_entry_tag",
    "refuse_bad_checksum",
    "refuse_architecture_mips",
    "refuse_elf_rel_section",
];

#[test]
fn refused_headers() {
    refused(REFUSED_QUICK);
}

#[test]
#[ignore = "full conformance set: scripts/conformance"]
fn refused_headers_full() {
    refused(REFUSED_FULL);
}

/// GRUB tries every header of `names` in one boot (each `multiboot2`
/// fails and the script goes on); then chainloader.0 boots each: it must
/// name the tag or field, count down to a reboot, and not run the kernel.
fn refused(names: &[&str]) {
    let blob = Blob::dist();
    let vs: Vec<(Variant, Image)> = names
        .iter()
        .map(|n| {
            let v = variant(n);
            let i = blob.compose(&v);
            (v, i)
        })
        .collect();
    let mut script = String::new();
    for (v, _) in &vs {
        script += &format!(
            "echo 'grub: variant {n}'\nmultiboot2 /{n} {c}\necho 'grub: end {n}'\n",
            n = v.name,
            c = cmdline(v)
        );
    }
    script += "echo 'grub: all tried'\n";
    let files: Vec<(&str, &[u8])> = vs.iter().map(|(v, i)| (v.name, i.file.as_slice())).collect();
    let g = GrubNetboot::with_script(&files, &script);
    let q = Qemu::start(&QemuConfig::user_net(g.root(), GrubNetboot::BOOTFILE));
    q.expect("grub: all tried", BOOT);
    let grub = q.output();
    drop(q);
    let mut failures = vec![];
    for (v, img) in &vs {
        let Expect::Refuse { grub: gre, ours: ore } = v.expect else { panic!("{} is not refused", v.name) };
        let part = grub
            .split(&format!("grub: variant {}", v.name))
            .nth(1)
            .and_then(|t| t.split(&format!("grub: end {}", v.name)).next())
            .unwrap_or_else(|| panic!("no GRUB output for {}:\n{grub}", v.name));
        assert!(
            regex::Regex::new(gre).unwrap().is_match(part),
            "GRUB 2 did not refuse {} with /{gre}/:\n{part}",
            v.name
        );
        let ours = chainloader_boot(v, img);
        println!("===== {}: GRUB 2\n{part}\n===== chainloader.0\n{ours}", v.name);
        if !regex::Regex::new(ore).unwrap().is_match(&ours)
            || !ours.contains("rebooting in")
            || !report(&ours).is_empty()
        {
            failures.push(format!(
                "{}: GRUB refuses it ({:?}); chainloader.0 must name the tag or field (/{ore}/), count down to a reboot and not run it; it printed:\n{}",
                v.name,
                part.trim(),
                ours.lines().filter(|l| !l.starts_with("config ")).collect::<Vec<_>>().join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// Each variant is one test, so nextest runs two at a time. `quick` ones run
// in scripts/test (one of each kind of header); `full` ones are ignored
// there and run by scripts/conformance (`--run-ignored all`).
macro_rules! variants {
    (quick: $($q:ident),* ; full: $($f:ident),* $(;)?) => {
        $(
            #[test]
            fn $q() {
                conformance(stringify!($q));
            }
        )*
        $(
            #[test]
            #[ignore = "full conformance set: scripts/conformance"]
            fn $f() {
                conformance(stringify!($f));
            }
        )*
    };
}

variants! {
    quick:
        elf32_usual,
        elf64_usual,
        elf64_higher_half,
        elf32_two_segments,
        elf32_entry_tag_wins,
        aout_usual,
        aout_nautilus,
        aout_load_addr_ffffffff,
        reloc_elf_high,
        reloc_aout_low,
        fb_graphics_optional,
        ireq_required_not_supplied,
        unknown_optional_tags;
    full:
        elf32_no_tags,
        elf64_no_sections,
        elf64_two_segments,
        elf32_higher_half,
        elf32_note_and_stack_phdrs,
        elf64_entry_tag_wins,
        aout_nautilus_flat,
        aout_load_addr_ffffffff_in_elf,
        aout_load_end_0,
        elf64_gzip,
        reloc_aout_high_top_of_ram,
        elf32_header_at_28k,
        aout_nautilus_gzip,
        aout_bss_end_0,
        reloc_aout_high,
        reloc_aout_none,
        reloc_elf_low,
        reloc_elf_none_align_0,
        reloc_elf64_high_4k,
        module_align_required,
        console_ega_required,
        console_no_ega,
        fb_text_optional,
        fb_text_required,
        fb_graphics_required,
        efi_bs_optional,
        efi_bs_required,
        entry_efi64_required,
        entry_efi_both_optional,
        ireq_required_supplied,
        ireq_optional_all;
}

/// The end of the RAM region at 1 MiB in an mbtest report.
fn ram_region_end(r: &[String]) -> u64 {
    r.iter()
        .find_map(|l| {
            let f: Vec<&str> = l.strip_prefix("  mmap ")?.split_whitespace().collect();
            (hex(f[0]) == 0x10_0000 && f[2] == "1").then(|| hex(f[0]) + hex(f[1]))
        })
        .unwrap_or_else(|| panic!("no RAM region at 1 MiB in {r:#?}"))
}

/// The rule behind e2e::ipxe_hidden_for_nbp, measured: chainloader.0
/// padded to k pages - 8 bytes, and to k pages - 7, sees the RAM region at
/// 1 MiB end k and k + 1 pages below where it ends with no NBP (found from
/// GRUB's core.0 and the same rule): iPXE's 8-byte block header counts.
#[test]
fn ipxe_rom_hides_the_nbp_rounded_up_to_pages() {
    let kernel = dist("testkernels/elf32.elf");
    let g =
        GrubNetboot::with_script(&[("elf32.elf", &std::fs::read(&kernel).unwrap())], "multiboot2 /elf32.elf\nboot\n");
    let q = Qemu::start(&QemuConfig::user_net(g.root(), GrubNetboot::BOOTFILE));
    let grub_end = ram_region_end(&report(&run_to_done(q, "GRUB 2", "elf32.elf")));
    let no_nbp_end = grub_end + e2e::ipxe_hidden_for_nbp(GrubNetboot::core_size());

    let nbp = std::fs::read(dist("chainloader.0")).unwrap();
    let pages = nbp.len().div_ceil(4096) as u64 + 1;
    for size in [pages * 4096 - 8, pages * 4096 - 7] {
        let dir = tempfile::Builder::new().prefix("netboot-conf-").tempdir().unwrap();
        let mut padded = nbp.clone();
        padded.resize(size as usize, 0);
        write_file(dir.path(), "chainloader.0", &padded);
        write_file(dir.path(), "elf32.elf", std::fs::read(&kernel).unwrap());
        write_file(dir.path(), "chainloader.cfg/default", "kernel /elf32.elf\n");
        let q = Qemu::start(&QemuConfig::user_net(dir.path(), "chainloader.0"));
        let end = ram_region_end(&report(&run_to_done(q, "chainloader.0", "elf32.elf")));
        assert_eq!(
            no_nbp_end - end,
            e2e::ipxe_hidden_for_nbp(size),
            "a {size}-byte NBP: the RAM region at 1 MiB ends at {end:#x}; GRUB's core.0 ({} bytes) sees {grub_end:#x}",
            GrubNetboot::core_size()
        );
    }
}
