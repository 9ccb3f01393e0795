//! The numbers of Multiboot2 (specification 2.0, section 3): the two
//! magics, the header tag types, the boot information (MBI) tag types and
//! their names. Everything else in this module refers to them by name.

/// The first word of a kernel's Multiboot2 header.
pub const HEADER_MAGIC: u32 = 0xE852_50D6;
/// What the kernel finds in EAX.
pub const BOOTLOADER_MAGIC: u32 = 0x36d7_6289;

/// Header tag types (the `u16` type field of each tag in the kernel's header).
pub mod htag {
    pub const END: u16 = 0;
    pub const INFORMATION_REQUEST: u16 = 1;
    pub const ADDRESS: u16 = 2;
    pub const ENTRY_ADDRESS: u16 = 3;
    pub const CONSOLE_FLAGS: u16 = 4;
    pub const FRAMEBUFFER: u16 = 5;
    pub const MODULE_ALIGN: u16 = 6;
    pub const EFI_BS: u16 = 7;
    pub const ENTRY_ADDRESS_EFI32: u16 = 8;
    pub const ENTRY_ADDRESS_EFI64: u16 = 9;
    pub const RELOCATABLE: u16 = 10;

    /// Bit 0 of a header tag's flags: the kernel boots without it.
    pub const FLAG_OPTIONAL: u16 = 1;
}

/// Boot information tag types (the `u32` type field of each MBI tag).
pub mod tag {
    pub const END: u32 = 0;
    pub const CMDLINE: u32 = 1;
    pub const BOOT_LOADER_NAME: u32 = 2;
    pub const MODULE: u32 = 3;
    pub const BASIC_MEMINFO: u32 = 4;
    pub const BOOTDEV: u32 = 5;
    pub const MMAP: u32 = 6;
    pub const VBE: u32 = 7;
    pub const FRAMEBUFFER: u32 = 8;
    pub const ELF_SECTIONS: u32 = 9;
    pub const APM: u32 = 10;
    pub const EFI32: u32 = 11;
    pub const EFI64: u32 = 12;
    pub const SMBIOS: u32 = 13;
    pub const ACPI_OLD: u32 = 14;
    pub const ACPI_NEW: u32 = 15;
    pub const NETWORK: u32 = 16;
    pub const EFI_MMAP: u32 = 17;
    pub const EFI_BS: u32 = 18;
    pub const EFI32_IH: u32 = 19;
    pub const EFI64_IH: u32 = 20;
    pub const LOAD_BASE_ADDR: u32 = 21;
}

/// A header tag type's name, for messages.
pub fn header_tag_name(t: u16) -> &'static str {
    match t {
        htag::END => "end",
        htag::INFORMATION_REQUEST => "information request",
        htag::ADDRESS => "address",
        htag::ENTRY_ADDRESS => "entry address",
        htag::CONSOLE_FLAGS => "console flags",
        htag::FRAMEBUFFER => "framebuffer",
        htag::MODULE_ALIGN => "module alignment",
        htag::EFI_BS => "EFI boot services",
        htag::ENTRY_ADDRESS_EFI32 => "EFI i386 entry address",
        htag::ENTRY_ADDRESS_EFI64 => "EFI amd64 entry address",
        htag::RELOCATABLE => "relocatable",
        _ => "unknown",
    }
}

/// An MBI tag type's name, for messages.
pub fn mbi_tag_name(t: u32) -> &'static str {
    match t {
        tag::END => "end",
        tag::CMDLINE => "command line",
        tag::BOOT_LOADER_NAME => "boot loader name",
        tag::MODULE => "module",
        tag::BASIC_MEMINFO => "basic memory information",
        tag::BOOTDEV => "BIOS boot device",
        tag::MMAP => "memory map",
        tag::VBE => "VBE information",
        tag::FRAMEBUFFER => "framebuffer information",
        tag::ELF_SECTIONS => "ELF sections",
        tag::APM => "APM table",
        tag::EFI32 => "EFI32 system table",
        tag::EFI64 => "EFI64 system table",
        tag::SMBIOS => "SMBIOS tables",
        tag::ACPI_OLD => "ACPI old RSDP",
        tag::ACPI_NEW => "ACPI new RSDP",
        tag::NETWORK => "networking information",
        tag::EFI_MMAP => "EFI memory map",
        tag::EFI_BS => "EFI boot services not terminated",
        tag::EFI32_IH => "EFI32 image handle",
        tag::EFI64_IH => "EFI64 image handle",
        tag::LOAD_BASE_ADDR => "image load base address",
        _ => "unknown",
    }
}
