//! The bench's report: tables of medians and spreads, the targets with a
//! verdict each, frames, sizes, and the plot.

use crate::{Link, Results, Row, Sample, CL_HTTP, CL_TFTP, FLOOR, GRUB, LINUX, REFERENCE_MIB};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn own(samples: &[Sample]) -> Vec<f64> {
    samples.iter().map(|s| s.own).collect()
}

/// The median own time of a row at a size.
fn med(r: &Results, row: Row, size: u32) -> Option<f64> {
    r.samples.get(&(row, size)).map(|s| median(&own(s)))
}

fn cell(samples: Option<&Vec<Sample>>) -> String {
    match samples {
        None => "".into(),
        Some(s) if s.len() == 1 => format!("{:.2}", s[0].own),
        Some(s) => {
            let v = own(s);
            let (lo, hi) =
                (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(f64::NEG_INFINITY, f64::max));
            format!("{:.2} [{lo:.2}-{hi:.2}]", median(&v))
        }
    }
}

fn rows(r: &Results) -> Vec<Row> {
    let mut v: Vec<Row> = r.samples.keys().map(|(row, _)| *row).collect();
    v.dedup();
    v
}

fn find(r: &Results, link: Link, loader: &str, server_contains: &str) -> Option<Row> {
    rows(r).into_iter().find(|row| row.link == link && row.loader == loader && row.server.contains(server_contains))
}

/// Loader sizes: ours, iPXE's undionly.kpxe, GRUB 2's core.0 plus what it
/// fetched at boot.
pub struct Sizes {
    chainloader: u64,
    undionly: Result<u64, String>,
    grub: Vec<(String, u64)>,
}

impl Sizes {
    pub fn measure(grub_files: &[(String, u64)]) -> Sizes {
        let chainloader = std::fs::metadata(e2e::dist("chainloader.0")).unwrap().len();
        let undionly = std::panic::catch_unwind(|| e2e::debpkg::file("ipxe", "usr/lib/ipxe/undionly.kpxe"))
            .map_err(|_| "Debian package ipxe not available".to_string())
            .map(|p| std::fs::metadata(p).unwrap().len());
        let grub = grub_files.iter().filter(|(p, _)| p.contains("/boot/grub/")).cloned().collect();
        Sizes { chainloader, undionly, grub }
    }
}

fn kib(b: u64) -> String {
    format!("{:.1} KiB", b as f64 / 1024.0)
}

pub fn render(r: &Results, sizes: &[u32], runs: usize, sz: &Sizes, took: Duration) -> String {
    let mut o = String::new();
    let qemu = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").to_string())
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "# scripts/bench\n\n{runs} round(s), module sizes {sizes:?} MiB, {:.0} s in all. {qemu}, TCG, e1000 with its iPXE PXE ROM, {} MiB.\n",
        took.as_secs_f64(),
        crate::MEMORY_MIB
    );
    let _ = writeln!(
        o,
        "Own time = power-on to the kernel's first line minus the floor (power-on to the first line of floor.0, a do-nothing NBP, from the same server; the median of one floor boot per round). Seconds, median [min-max] over the rounds.\n"
    );
    let header: Vec<String> =
        sizes.iter().map(|s| if *s == 0 { "kernel only".into() } else { format!("{s} MiB") }).collect();
    let _ = writeln!(o, "| link | server | loader | {} |", header.join(" | "));
    let _ = writeln!(o, "|---|---|---|{}", "---|".repeat(sizes.len()));
    for row in rows(r) {
        let cells: Vec<String> = sizes.iter().map(|s| cell(r.samples.get(&(row, *s)))).collect();
        let _ = writeln!(o, "| {} | {} | {} | {} |", row.link.label(), row.server, row.loader, cells.join(" | "));
    }

    targets(&mut o, r, sizes);
    throughput(&mut o, r, sizes);

    let _ = writeln!(o, "\n## Frames on the tap per boot (median, both directions)\n");
    let _ = writeln!(o, "| server | loader | {} |", header.join(" | "));
    let _ = writeln!(o, "|---|---|{}", "---|".repeat(sizes.len()));
    for row in rows(r).into_iter().filter(|row| row.link == Link::Tap && row.loader != LINUX) {
        let cells: Vec<String> = sizes
            .iter()
            .map(|s| {
                r.samples
                    .get(&(row, *s))
                    .and_then(|v| {
                        let f: Vec<f64> = v.iter().filter_map(|x| x.frames.map(|f| f as f64)).collect();
                        (!f.is_empty()).then(|| format!("{:.0}", median(&f)))
                    })
                    .unwrap_or_default()
            })
            .collect();
        let _ = writeln!(o, "| {} | {} | {} |", row.server, row.loader, cells.join(" | "));
    }

    let _ = writeln!(o, "\n## Sizes\n\n| image | size |\n|---|---|");
    let _ = writeln!(o, "| chainloader.0 | {} ({} bytes) |", kib(sz.chainloader), sz.chainloader);
    match &sz.undionly {
        Ok(b) => {
            let _ = writeln!(o, "| iPXE undionly.kpxe (Debian ipxe) | {} ({b} bytes) |", kib(*b));
        }
        Err(e) => {
            let _ = writeln!(o, "| iPXE undionly.kpxe | not measured: {e} |");
        }
    }
    if !sz.grub.is_empty() {
        let total: u64 = sz.grub.iter().map(|(_, b)| b).sum();
        let names: Vec<String> = sz
            .grub
            .iter()
            .map(|(p, b)| format!("{} {}", Path::new(p).file_name().unwrap().to_string_lossy(), kib(*b)))
            .collect();
        let _ = writeln!(
            o,
            "| GRUB 2: core.0 and the {} files it fetched | {} ({total} bytes): {} |",
            sz.grub.len(),
            kib(total),
            names.join(", ")
        );
    }

    bound(&mut o, r);

    let _ = writeln!(o, "\n## chainloader.0's own throughput lines (last round)\n\n```");
    for ((row, size), lines) in &r.reports {
        if *size == REFERENCE_MIB || (*size == *sizes.iter().max().unwrap()) {
            for l in lines {
                let _ = writeln!(o, "{} / {} / {size} MiB: {l}", row.link.label(), row.loader);
            }
        }
    }
    let _ = writeln!(o, "```");
    o
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn targets(o: &mut String, r: &Results, sizes: &[u32]) {
    let s = REFERENCE_MIB;
    let _ = writeln!(o, "\n## Targets\n\n| target | measured | verdict |\n|---|---|---|");
    let ratio_line = |o: &mut String, what: &str, link: Link, grub_server: &str, want: f64| {
        let (Some(g), Some(c)) =
            (find(r, link, GRUB, grub_server).and_then(|row| med(r, row, s)), best_ours(r, link, s))
        else {
            return;
        };
        let x = g / c.1;
        let _ = writeln!(
            o,
            "| {what}: at least {want:.0}x | GRUB 2 {g:.2} s / {} {:.2} s = {x:.1}x | {}{} |",
            c.0,
            c.1,
            verdict(x >= want),
            if x >= want { String::new() } else { format!(" ({:.1}x short)", want / x) }
        );
    };
    ratio_line(o, &format!("{s} MiB, user network, vs GRUB 2's own time"), Link::User, "QEMU", 8.0);
    ratio_line(o, &format!("{s} MiB, tap, vs GRUB 2 on tuned dnsmasq"), Link::Tap, "tuned", 10.0);
    if sizes.contains(&0) {
        for link in [Link::User, Link::Tap] {
            if let (Some(t), Some(h)) = (find(r, link, LINUX, ""), find(r, link, CL_HTTP, "")) {
                if let (Some(l), Some(a), Some(z)) = (med(r, t, s), med(r, h, s), med(r, h, 0)) {
                    let x = (a - z) / l;
                    let _ = writeln!(
                        o,
                        "| {s} MiB by HTTP within 2x of the Linux guest, {} | chainloader.0 {:.2} s (own time at {s} MiB minus kernel only) / Linux {l:.2} s = {x:.1}x | {} |",
                        link.label(),
                        a - z,
                        verdict(x <= 2.0)
                    );
                }
            }
        }
        for row in rows(r).into_iter().filter(|row| row.loader == CL_TFTP || row.loader == CL_HTTP) {
            if let Some(t) = med(r, row, 0) {
                let _ = writeln!(
                    o,
                    "| kernel only, at most 0.1 s: {}, {} | {t:.2} s | {} |",
                    row.link.label(),
                    row.loader,
                    verdict(t <= 0.1)
                );
            }
        }
    }
    let big: Vec<u32> = sizes.iter().copied().filter(|&s| s > 0).collect();
    if sizes.contains(&0) && big.len() >= 2 {
        for row in rows(r).into_iter().filter(|row| row.loader == CL_TFTP || row.loader == CL_HTTP) {
            let t: Vec<f64> = big.iter().filter_map(|&s| marginal(r, row, s)).collect();
            if t.len() == big.len() {
                let (lo, hi) = (t.iter().copied().fold(f64::INFINITY, f64::min), t.iter().copied().fold(0.0, f64::max));
                let list: Vec<String> = big.iter().zip(&t).map(|(s, v)| format!("{s} MiB {v:.1}")).collect();
                let _ = writeln!(
                    o,
                    "| linear cost, throughput within 20%: {}, {} | {} MiB/s; max/min {:.2} | {} |",
                    row.link.label(),
                    row.loader,
                    list.join(", "),
                    hi / lo,
                    verdict(hi / lo <= 1.2)
                );
            }
        }
    }
}

/// Our faster of TFTP and HTTP on a link at a size: (label, seconds).
fn best_ours(r: &Results, link: Link, size: u32) -> Option<(&'static str, f64)> {
    [CL_TFTP, CL_HTTP]
        .iter()
        .filter_map(|l| find(r, link, l, "").and_then(|row| med(r, row, size)).map(|t| (*l, t)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// Throughput of the module alone: size over (own time minus the
/// kernel-only own time).
fn marginal(r: &Results, row: Row, size: u32) -> Option<f64> {
    let (t, z) = (med(r, row, size)?, med(r, row, 0)?);
    (t > z).then(|| size as f64 / (t - z))
}

fn throughput(o: &mut String, r: &Results, sizes: &[u32]) {
    if !sizes.contains(&0) {
        return;
    }
    let big: Vec<u32> = sizes.iter().copied().filter(|&s| s > 0).collect();
    let _ = writeln!(
        o,
        "\n## Throughput of the module (MiB/s): size / (own time - own time of the kernel alone)\n\n| link | server | loader | {} |\n|---|---|---|{}",
        big.iter().map(|s| format!("{s} MiB")).collect::<Vec<_>>().join(" | "),
        "---|".repeat(big.len())
    );
    for row in rows(r).into_iter().filter(|row| row.loader != FLOOR) {
        let cells: Vec<String> = big
            .iter()
            .map(|&s| {
                if row.loader == LINUX {
                    med(r, row, s).map(|t| format!("{:.1}", s as f64 / t)).unwrap_or_default()
                } else {
                    marginal(r, row, s).map(|v| format!("{v:.1}")).unwrap_or_default()
                }
            })
            .collect();
        let _ = writeln!(o, "| {} | {} | {} | {} |", row.link.label(), row.server, row.loader, cells.join(" | "));
    }
}

/// Own time against module size, one line per row, log-log, by gnuplot.
pub fn plot(r: &Results, out: &Path) -> Result<PathBuf, String> {
    if Command::new("gnuplot").arg("--version").output().is_err() {
        return Err("gnuplot is not installed (apt-get install gnuplot-nox)".into());
    }
    let mut script = String::from(
        "set terminal pngcairo size 1000,720 font 'sans,10'\n\
         set output '__OUT__'\n\
         set title 'Own time to kernel entry vs module size (QEMU TCG, e1000, iPXE ROM); lower is better'\n\
         set logscale xy\nset xlabel 'module size (MiB)'\nset ylabel 'own time (s): power-on to kernel entry minus floor'\n\
         set key outside below maxrows 5\nset grid\nset xrange [0.7:400]\n",
    );
    let mut plots = vec![];
    let mut data = String::new();
    let mut index = 0;
    for row in rows(r).into_iter().filter(|row| row.loader != FLOOR) {
        let mut points: Vec<(u32, f64)> = r
            .samples
            .iter()
            .filter(|((rw, s), _)| *rw == row && *s > 0)
            .map(|((_, s), v)| (*s, median(&own(v))))
            .collect();
        points.sort_by_key(|p| p.0);
        if points.is_empty() {
            continue;
        }
        for (s, t) in &points {
            let _ = writeln!(data, "{s} {t}");
        }
        data += "\n\n";
        let style = if points.len() == 1 { "points pt 7 ps 1.5" } else { "linespoints pt 7" };
        let dash = if row.link == Link::User { "dt 2" } else { "dt 1" };
        let title = format!("{}: {} ({})", row.link.label(), row.loader, row.server).replace('\'', "");
        plots.push(format!("'__DATA__' index {index} with {style} {dash} lw 2 title '{title}'"));
        index += 1;
    }
    if plots.is_empty() {
        return Err("no sized samples to plot".into());
    }
    let png = out.join("own-time.png");
    let dat = out.join("own-time.dat");
    std::fs::write(&dat, data).map_err(|e| e.to_string())?;
    script += &format!("plot {}\n", plots.join(", \\\n     "));
    let script = script.replace("__OUT__", &png.display().to_string()).replace("__DATA__", &dat.display().to_string());
    let gp = out.join("own-time.gp");
    std::fs::write(&gp, &script).map_err(|e| e.to_string())?;
    let st = Command::new("gnuplot").arg(&gp).output().map_err(|e| e.to_string())?;
    if !st.status.success() {
        return Err(format!("gnuplot failed: {}", String::from_utf8_lossy(&st.stderr)));
    }
    Ok(png)
}

/// Where chainloader.0's time goes, from its own UNDI counters (the last
/// round, the largest size): time inside the PXE ROM in real mode, split
/// into waiting for the first frame after a send (the network and the
/// server) and the rest (the ROM's per-call cost), per frame received.
fn bound(o: &mut String, r: &Results) {
    let undi = regex::Regex::new(
        r"UNDI: (\d+) PXE calls in (\d+) trips to real mode \((\d+) ms, (\d+) ms of it from send to first frame received\), (\d+) frames in",
    )
    .unwrap();
    let fetch = regex::Regex::new(r"mod-\d+\.bin: [\d.]+ MiB in ([\d.]+) s").unwrap();
    let mut rows_out = vec![];
    let largest: BTreeMap<Row, u32> = r.reports.keys().fold(BTreeMap::new(), |mut m, (row, s)| {
        let e = m.entry(*row).or_insert(*s);
        *e = (*e).max(*s);
        m
    });
    for (row, size) in largest {
        let lines = &r.reports[&(row, size)];
        let Some(c) = lines.iter().find_map(|l| undi.captures(l)) else { continue };
        let n = |i: usize| c[i].parse::<f64>().unwrap_or(0.0);
        let (calls, trips, real_ms, wait_ms, frames) = (n(1), n(2), n(3), n(4), n(5));
        let fetch_s = lines.iter().find_map(|l| fetch.captures(l)).and_then(|c| c[1].parse::<f64>().ok());
        rows_out.push(format!(
            "| {} | {} | {size} MiB | {frames:.0} | {calls:.0} in {trips:.0} trips | {real_ms:.0} ms | {wait_ms:.0} ms | {:.0} us | {} |",
            row.link.label(),
            row.loader,
            (real_ms - wait_ms) * 1000.0 / frames.max(1.0),
            fetch_s.map(|f| format!("{:.0}%", real_ms / 10.0 / f)).unwrap_or_default()
        ));
    }
    if rows_out.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "\n## What bounds chainloader.0: time inside the PXE ROM (its UNDI counters, last round)\n\n\
         | link | protocol | module | frames in | PXE calls | in real mode | of it waiting for a frame | ROM cost per frame in | real mode / module fetch time |\n|---|---|---|---|---|---|---|---|---|"
    );
    for l in rows_out {
        let _ = writeln!(o, "{l}");
    }
}
