use super::*;
use alloc::vec;

fn k(text: &str) -> String {
    parse(text).unwrap().kernel.args
}

#[test]
fn http_urls_are_kept_whole() {
    let c = parse("kernel http://10.0.0.1:8080/k.elf a\nmodule m.bin\n").unwrap();
    assert_eq!((c.kernel.path.as_str(), c.kernel.rooted), ("http://10.0.0.1:8080/k.elf", false));
    assert_eq!((c.modules[0].path.as_str(), c.modules[0].rooted), ("m.bin", false));
}

#[test]
fn kernel_and_modules() {
    let c = parse(
        "# Nautilus on the desk machine\n\
         kernel /nautilus.bin console=ttyS0 debug\n\
         \n\
         module /initrd.img root=/dev/ram\n\
         module fs.img\n",
    )
    .unwrap();
    assert_eq!(
        c,
        BootConfig {
            kernel: Entry {
                path: "nautilus.bin".into(),
                args: "console=ttyS0 debug".into(),
                nounzip: false,
                line: 2,
                rooted: true
            },
            modules: vec![
                Entry {
                    path: "initrd.img".into(),
                    args: "root=/dev/ram".into(),
                    nounzip: false,
                    line: 4,
                    rooted: true
                },
                Entry { path: "fs.img".into(), args: "".into(), nounzip: false, line: 5, rooted: false },
            ],
            loader_name: None,
        }
    );
}

#[test]
fn grub_spellings_crlf_and_indentation() {
    let c = parse("  multiboot2 (pxe)/boot/k.elf a=1\r\n\tmodule2 --nounzip /m.gz  x \r\n").unwrap();
    assert_eq!(c.kernel.path, "boot/k.elf");
    assert_eq!(c.kernel.args, "a=1");
    assert_eq!(c.modules[0].path, "m.gz");
    assert!(c.modules[0].nounzip);
    assert_eq!(c.modules[0].args, "x");
}

#[test]
fn args_as_grub_joins_them() {
    // GRUB 2 re-joins the words with single spaces.
    assert_eq!(k("multiboot2 /k a b  c"), "a b c");
    assert_eq!(k("kernel /k\ta\t\tb   "), "a b");
    assert_eq!(k("kernel /k"), "");
    // Quoted words with spaces come back in double quotes; quotes and
    // backslashes inside words are escaped.
    assert_eq!(k("kernel /k 'a  b' c"), "\"a  b\" c");
    assert_eq!(k(r#"kernel /k "x=\"y\"""#), r#"x=\"y\""#);
    assert_eq!(k(r"kernel /k it\'s"), r"it\'s");
    assert_eq!(k(r"kernel /k a\ b"), "\"a b\"");
    assert_eq!(k(r#"kernel /k "c:\dir" '\n'"#), r"c:\\dir \\n");
    assert_eq!(k(r"kernel /k a\\b"), r"a\\b");
    // An empty quoted word is an (empty) argument, as in GRUB.
    assert_eq!(k("kernel /k a '' b"), "a  b");
    // '=' and other ordinary characters pass untouched.
    assert_eq!(k("kernel /k isolcpus=1,2 x=[a] *"), "isolcpus=1,2 x=[a] *");
}

#[test]
fn comments() {
    // '#' starts a comment only at the start of a word, as in GRUB.
    assert_eq!(k("kernel /k console=ttyS0 # serial console"), "console=ttyS0");
    assert_eq!(k("kernel /k a#b #c"), "a#b");
    assert_eq!(k("kernel /k '#quoted'"), "#quoted");
    assert_eq!(k("kernel /k \\#escaped"), "#escaped");
    assert!(parse("# only a comment\n#kernel /x\n").is_err());
}

#[test]
fn errors_name_the_line() {
    let e = parse("kernel /k\n\nkernal /x\n").unwrap_err();
    assert_eq!(e.line, 3);
    assert_eq!(
        e.to_string(),
        "chainloader.cfg line 3: unknown directive 'kernal' (expected kernel, multiboot2, module, module2 or loader_name)"
    );
    let e = parse("module /m\n").unwrap_err();
    assert_eq!(e.to_string(), "chainloader.cfg: no kernel line ('kernel PATH [CMDLINE...]')");
    let e = parse("").unwrap_err();
    assert_eq!(e.line, 0);
    let e = parse("kernel /a\nmultiboot2 /b\n").unwrap_err();
    assert_eq!(e.to_string(), "chainloader.cfg line 2: a second kernel line (the first is line 1)");
    let e = parse("kernel\n").unwrap_err();
    assert_eq!(e.to_string(), "chainloader.cfg line 1: kernel: missing PATH");
    let e = parse("kernel /k\nmodule2 --nounzip\n").unwrap_err();
    assert_eq!(e.to_string(), "chainloader.cfg line 2: module2: missing PATH");
    let e = parse("kernel /\n").unwrap_err();
    assert_eq!(e.to_string(), "chainloader.cfg line 1: kernel: '/' names no file");
    let e = parse("multiboot /k\n").unwrap_err();
    assert!(e.to_string().contains("Multiboot 1"));
}

#[test]
fn what_grub_would_do_differently_is_refused() {
    for (line, needle) in [
        ("kernel /k root=$root", "variables"),
        ("kernel /k \"a $x\"", "variables"),
        ("kernel /k a;b", "';' is GRUB script syntax"),
        ("kernel /k a|b", "'|'"),
        ("kernel /k {x}", "'{'"),
        ("kernel /k 'open", "unterminated ' quote"),
        ("kernel /k \"open", "unterminated \" quote"),
        ("kernel /k a \\", "line continuation"),
        ("kernel (hd0,1)/k", "only network files"),
        ("kernel (tftp,10.0.0.9)/k", "another server"),
    ] {
        let e = parse(line).unwrap_err();
        assert!(e.to_string().contains(needle), "{line}: {e}");
        assert_eq!(e.line, 1);
    }
    // Quoted, they pass literally.
    assert_eq!(k(r"kernel /k 'a;b' '$x' \$y"), "a;b $x $y");
}

#[test]
fn modules_may_precede_the_kernel_and_keep_their_order() {
    let c = parse("module b\nkernel k\nmodule a\n").unwrap();
    let names: Vec<&str> = c.modules.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(names, ["b", "a"]);
}

#[test]
fn tftp_paths() {
    assert_eq!(tftp_path("/nautilus.bin"), "nautilus.bin");
    assert_eq!(tftp_path("nautilus.bin"), "nautilus.bin");
    assert_eq!(tftp_path("(pxe)/boot/k"), "boot/k");
    assert_eq!(tftp_path("(tftp)//k"), "k");
    assert_eq!(tftp_path(tftp_path("(pxe)/a/b")), "a/b");
    assert_eq!(parse("kernel (tftp)/k").unwrap().kernel.path, "k");
}

#[test]
fn candidate_order() {
    let c = candidates([0x52, 0x54, 0x00, 0xAB, 0xcd, 0x0f], [192, 168, 10, 5]);
    assert_eq!(
        c,
        vec![
            "chainloader.cfg/01-52-54-00-ab-cd-0f",
            "chainloader.cfg/C0A80A05",
            "chainloader.cfg/C0A80A0",
            "chainloader.cfg/C0A80A",
            "chainloader.cfg/C0A80",
            "chainloader.cfg/C0A8",
            "chainloader.cfg/C0A",
            "chainloader.cfg/C0",
            "chainloader.cfg/C",
            "chainloader.cfg/default",
        ]
    );
}

#[test]
fn grub_cmdline_join() {
    assert_eq!(grub_cmdline::<&str>(&[]), "");
    assert_eq!(grub_cmdline(&["a", "b c", "d\"e"]), r#"a "b c" d\"e"#);
}

/// What Debian's GRUB 2.06 (grub-pc-bin 2.06-13+deb12u2) gave the reference
/// kernel for these very lines, netbooted under QEMU (tags 1 and 3 as the
/// kernel printed them).
#[test]
fn same_as_debian_grub_2_06_measured() {
    let c = parse(concat!(
        r#"multiboot2 /kernel.elf exit  a   b 'q  s' it\'s "d\"q" x#y c:\\p "e\z" '' end # comment"#,
        "\n",
        r"module2 /m1 mod  'one two'   x\ y",
        "\n",
    ))
    .unwrap();
    assert_eq!(c.kernel.args, r#"exit a b "q  s" it\'s d\"q x#y c:\\p e\\z  end"#);
    assert_eq!(c.modules[0].args, r#"mod "one two" "x y""#);
}

#[test]
fn loader_name_directive() {
    let c = parse("loader_name GRUB 2.06\nkernel /k\n").unwrap();
    assert_eq!(c.loader_name.as_deref(), Some("GRUB 2.06"));
    // Words are joined by single spaces; quoting keeps spaces.
    let c = parse("kernel /k\nloader_name  my   'loader  v1'\n").unwrap();
    assert_eq!(c.loader_name.as_deref(), Some("my loader  v1"));
    assert_eq!(parse("kernel /k\n").unwrap().loader_name, None);
    let e = parse("kernel /k\nloader_name\n").unwrap_err();
    assert_eq!(e.to_string(), "chainloader.cfg line 2: loader_name: missing TEXT");
    let e = parse("loader_name a\nkernel /k\nloader_name b\n").unwrap_err();
    assert_eq!(e.to_string(), "chainloader.cfg line 3: a second loader_name line (the first is line 1)");
}
