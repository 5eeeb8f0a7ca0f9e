//! Reading a guest group's QEMU command line.
//!
//! A scenario may describe a guest group by the command line that starts it,
//! for example `qemu: "-m 4G -mem-path /dev/hugepages -mem-prealloc"`. This
//! module owns turning that string into the memory facts the model needs
//! ([`QemuMemory`]), in two forms:
//!
//! - The summary fields (`memory`, `prealloc`, `hugepages`, `share`, ...)
//!   describe boot RAM as one backing, for a guest group the model treats as
//!   uniform. Each is `None` where the line does not say, so the scenario's
//!   own field decides; where NUMA cells are backed differently they fold
//!   into one cautious answer (huge pages or preallocation only if every
//!   cell has them, no huge page size when the sizes differ). Memory devices
//!   do not enter them.
//! - [`QemuMemory::guest`] is the guest as QEMU builds it, a
//!   [`GuestMemory`]: one region for all of boot RAM, or one per NUMA node,
//!   then one per memory device (`pc-dimm`, `nvdimm`, `virtio-mem`) in
//!   command-line order, each with its own backend's facts (anonymous,
//!   file or memfd; page size; prealloc, share, merge, discard, read-only)
//!   and QEMU's defaults filled in where the line is silent; the balloon
//!   device's options, hotplug slots and maxmem, and memory locking. The
//!   libvirt domain XML reader produces the same type, so a domain and the
//!   command line libvirt generates from it can be compared fact by fact.
//!
//! It follows QEMU's own rules rather than a lookalike: the same size units
//! (`-m` and legacy `-numa node,mem=` count a bare number in MiB,
//! `-object ...,size=` in bytes), the same defaults (a memfd backend is
//! shared, `-mem-prealloc` and `-machine mem-merge=` are defaults every
//! backend inherits, a virtio-mem device plugs nothing unless asked), and
//! the same refusals (a backend without a size, `-m` disagreeing with the
//! backend or the NUMA nodes, `-numa node,mem=` on machine types newer than
//! 5.0, a DIMM without a free slot or room below maxmem, a backend used
//! twice). A line QEMU would refuse to start is refused here too, with the
//! offending word and its byte offset so the caller can point at it. A few
//! lines QEMU accepts are refused as well, where QEMU would quietly ignore a
//! memory setting and the plan would silently model something else (a
//! `-mem-path` next to an explicit memory backend, a backend nothing uses, a
//! virtio-mem device asked for more than its backend holds).
//!
//! Options that do not touch memory (`-smp`, `-drive`, `-netdev`, ...) are
//! skipped with their argument, and so are devices other than the memory
//! devices and virtio-balloon (their `memdev=` still counts as a use of the
//! backend). Any other option is an error, so a misspelt memory option
//! cannot pass unnoticed.
//!
//! Whether memory is on huge pages is decided from the path: QEMU itself asks
//! the kernel with statfs() whether `-mem-path` / `mem-path=` lies on
//! hugetlbfs, which a planner reading a command line meant for another
//! machine cannot do. We go by the mount-point convention instead
//! (`/dev/hugepages`, `/mnt/huge`, `/hugepages`, or a path naming
//! `hugepages` or `hugetlbfs`), and read the page size from names such as
//! `/dev/hugepages1G` or `/dev/hugepages-1048576kB`.

mod backend;
mod devices;
mod finish;
mod machine;
mod numa;
mod options;
mod properties;
mod reader;
mod said;
#[cfg(test)]
mod testing;
mod words;

use super::guestmem::GuestMemory;
use crate::units::ByteSize;
use options::{OptKind, is_program_name, looks_like_option, option_kind, option_name};
use reader::Reader;
use words::{Text, tokenize};

const MIB: u64 = 1 << 20;

/// The memory facts a QEMU command line states. The summary fields are
/// about boot RAM (memory devices are only in `guest`); `None` means the
/// line does not say, so the scenario's own field (or the model's default)
/// decides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QemuMemory {
    /// Guest RAM: `-m N` / `-m size=N` (rounded up to 8 KiB as QEMU does),
    /// or the backend(s) when `-m` is absent.
    pub memory: Option<ByteSize>,
    /// `-m ...,slots=N`.
    pub slots: Option<u32>,
    /// `-m ...,maxmem=N`.
    pub maxmem: Option<ByteSize>,
    /// `-mem-path PATH`, or `mem-path=` of the memory-backend-file behind
    /// guest RAM (the first one, when NUMA nodes use several).
    pub mem_path: Option<String>,
    /// `-mem-prealloc`, or `prealloc=` on the backend(s).
    pub prealloc: Option<bool>,
    /// Whether guest RAM is hugetlbfs-backed; `Some(false)` when it is
    /// backed by something else the line names (a plain file, anonymous
    /// memory of an explicit backend).
    pub hugepages: Option<bool>,
    /// The huge page size, when it can be told: `hugetlbsize=` on a memfd,
    /// or the mount path. Only set when `hugepages` is `Some(true)` and every
    /// backend's size is known and the same (NUMA cells on 2 MiB and 1 GiB
    /// pages give `None`; `guest` has each cell's).
    pub hugepage_size: Option<ByteSize>,
    /// `share=`; a memory-backend-memfd is shared unless told otherwise.
    pub share: Option<bool>,
    /// KSM (`MADV_MERGEABLE`): `merge=` on the backend(s), or
    /// `-machine mem-merge=`.
    pub merge: Option<bool>,
    /// `Some(true)` when a virtio-balloon device is present.
    pub balloon: Option<bool>,
    /// Every region of guest memory with its own facts: the boot RAM (whole,
    /// or one region per NUMA node) and each memory device, with QEMU's
    /// defaults filled in (128 MiB without -m, anonymous memory, KSM on).
    /// Unlike the summary fields above it states everything, whether the
    /// line says it or not.
    pub guest: GuestMemory,
}

/// Why a command line was refused, with the word to point at.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct QemuError {
    /// The offending text exactly as it appears in the input.
    pub token: String,
    /// Byte offset of `token` in the input, for a caret.
    pub offset: usize,
    pub message: String,
}

/// Read the memory facts from a QEMU command line.
pub fn parse(cmdline: &str) -> Result<QemuMemory, QemuError> {
    let tokens = tokenize(cmdline)?;
    let mut reader = Reader::new(cmdline);
    let mut rest = tokens.iter().peekable();
    if rest.peek().is_some_and(|t| is_program_name(&t.s)) {
        rest.next();
    }
    let mut previous: Option<&Text> = None;
    while let Some(tok) = rest.next() {
        let Some(name) = option_name(&tok.s) else {
            return Err(reader.bare_word(tok, previous));
        };
        if let Some((opt, value)) = name.split_once('=') {
            return Err(reader.err(
                tok.span,
                format!(
                    "`{}` is not QEMU syntax: an option takes its value as the next word \
                     (`-{opt} {value}`), never after `=`",
                    reader.raw(tok.span)
                ),
            ));
        }
        let kind = option_kind(name);
        previous = matches!(kind, OptKind::Flag | OptKind::MemPrealloc).then_some(tok);
        match kind {
            OptKind::Flag if name == "enable-kvm" => reader.accel = Some(crate::scenario::schema::Accel::Kvm),
            OptKind::Flag => {}
            OptKind::MemPrealloc => reader.mem_prealloc = true,
            OptKind::Skip => {
                if rest.next().is_none() {
                    return Err(reader.missing_value(tok, None));
                }
            }
            OptKind::Unknown => return Err(reader.unknown_option(tok, name)),
            memory_option => {
                let arg = match rest.next() {
                    Some(arg) if !looks_like_option(&arg.s) => arg,
                    next => return Err(reader.missing_value(tok, next)),
                };
                match memory_option {
                    OptKind::M => reader.opt_m(tok, arg)?,
                    OptKind::MemPath => reader.opt_mem_path(tok, arg)?,
                    OptKind::Object => reader.opt_object(tok, arg)?,
                    OptKind::Machine => reader.opt_machine(tok, arg)?,
                    OptKind::Numa => reader.opt_numa(tok, arg)?,
                    OptKind::Device => reader.opt_device(tok, arg)?,
                    OptKind::Overcommit => reader.opt_overcommit(tok, arg)?,
                    OptKind::Accel => reader.opt_accel(&arg.s),
                    _ => {}
                }
            }
        }
    }
    reader.finish()
}

#[cfg(test)]
mod tests {
    use super::testing::{GIB, boot, fails, gib, ok};
    use super::*;
    use crate::scenario::guestmem::{BalloonDevice, Pages, Region, Source};

    // Nothing said, nothing known: the summary leaves QEMU's defaults to
    // the caller, while `guest` states what QEMU would run: 128 MiB of
    // anonymous RAM (units.rs QEMU_DEFAULT_RAM, the x86 default_ram_size),
    // KSM on (qemu-options.hx: mem-merge "enabled by default").
    #[test]
    fn empty_line_states_nothing() {
        for line in ["", "   \n\t "] {
            let q = ok(line);
            assert_eq!(q, QemuMemory { guest: q.guest.clone(), ..QemuMemory::default() });
            assert_eq!(q.guest, GuestMemory { regions: vec![boot(None, 128 * MIB)], ..GuestMemory::default() });
        }
    }

    // vl.c takes an option's value from the next argv word; `-m=4G` is the
    // unknown option "m=4G" to QEMU.
    #[test]
    fn option_equals_value_is_refused() {
        let e = fails("-m 1G --mem-path=/dev/hugepages");
        assert_eq!(e.token, "--mem-path=/dev/hugepages");
        assert_eq!(e.offset, 6);
        assert!(e.message.contains("`-mem-path /dev/hugepages`"), "{}", e.message);
    }

    // The shape libvirt generates for a hugepage-backed guest.
    #[test]
    fn libvirt_style_line() {
        let line = r#"/usr/bin/qemu-system-x86_64 -name guest=web1,debug-threads=on -S \
            -object '{"qom-type":"secret","id":"masterKey0","format":"raw","file":"/var/lib/libvirt/qemu/master-key.aes"}' \
            -machine pc-q35-8.2,usb=off,vmport=off,dump-guest-core=off,memory-backend=pc.ram,hpet=off,acpi=on \
            -accel kvm -cpu host,migratable=on -m size=8388608k \
            -object '{"qom-type":"memory-backend-file","id":"pc.ram","mem-path":"/dev/hugepages1G/libvirt/qemu/1-web1","x-use-canonical-path-for-ramblock-id":false,"prealloc":true,"size":8589934592}' \
            -overcommit mem-lock=off -smp 4,sockets=4,cores=1,threads=1 -uuid 0f7c -no-user-config -nodefaults \
            -chardev socket,id=charmonitor,fd=31,server=on,wait=off -mon chardev=charmonitor,id=monitor,mode=control \
            -rtc base=utc,driftfix=slew -global kvm-pit.lost_tick_policy=delay -no-shutdown -boot strict=on \
            -blockdev '{"driver":"file","filename":"/var/lib/libvirt/images/web1.qcow2","node-name":"disk0"}' \
            -device '{"driver":"virtio-blk-pci","bus":"pci.3","drive":"disk0","id":"virtio-disk0"}' \
            -audiodev '{"id":"audio1","driver":"none"}' -vnc 127.0.0.1:0,audiodev=audio1 \
            -device '{"driver":"virtio-balloon-pci","id":"balloon0","bus":"pci.5","addr":"0x0"}' \
            -sandbox on,obsolete=deny,elevateprivileges=deny -msg timestamp=on"#;
        let q = ok(line);
        assert_eq!(
            q,
            QemuMemory {
                memory: gib(8),
                slots: None,
                maxmem: None,
                mem_path: Some("/dev/hugepages1G/libvirt/qemu/1-web1".to_string()),
                prealloc: Some(true),
                hugepages: Some(true),
                hugepage_size: gib(1),
                share: None,
                merge: None,
                balloon: Some(true),
                guest: GuestMemory {
                    regions: vec![Region {
                        source: Source::File,
                        pages: Pages::Huge(gib(1)),
                        prealloc: true,
                        ..boot(None, 8 * GIB)
                    }],
                    balloon: Some(BalloonDevice::default()),
                    accel: Some(crate::scenario::schema::Accel::Kvm),
                    ..GuestMemory::default()
                },
            }
        );
    }

    // The accelerator, as qemu-options.hx gives its forms: `-accel NAME[,prop=..]`,
    // `-machine accel=NAME[:NAME...]` (the first is tried first) and
    // `-enable-kvm`; the last one said wins, others (xen, hvf) say nothing.
    #[test]
    fn accelerator() {
        use crate::scenario::schema::Accel::{Kvm, Tcg};
        for (line, accel) in [
            ("-m 1G", None),
            ("-m 1G -accel tcg,thread=multi", Some(Tcg)),
            ("-m 1G -accel accel=kvm", Some(Kvm)),
            ("-m 1G -machine q35,accel=tcg:kvm", Some(Tcg)),
            ("-m 1G -accel tcg -enable-kvm", Some(Kvm)),
            ("-m 1G -accel hvf", None),
        ] {
            assert_eq!(ok(line).guest.accel, accel, "{line}");
        }
    }

    // The example from the scenario format.
    #[test]
    fn scenario_example() {
        let q = ok("-m 4G -mem-path /dev/hugepages -mem-prealloc");
        assert_eq!(
            q,
            QemuMemory {
                guest: q.guest.clone(),
                memory: gib(4),
                mem_path: Some("/dev/hugepages".to_string()),
                prealloc: Some(true),
                hugepages: Some(true),
                ..QemuMemory::default()
            }
        );
    }

    // Whatever the input, parse returns; every error points at its token.
    #[test]
    fn never_panics_on_token_soup() {
        const FRAGMENTS: &[&str] = &[
            "-m",
            "4G",
            "4096",
            "size=",
            ",",
            ",,",
            "'",
            "\"",
            "\\",
            "\n",
            " ",
            "=",
            "-object",
            "memory-backend-file",
            "memory-backend-ram",
            "memory-backend-memfd",
            "id=x",
            "id=y",
            "size=1G",
            "mem-path=/dev/hugepages",
            "-machine",
            "memory-backend=x",
            "-numa",
            "node",
            "memdev=x",
            "memdev=y",
            "-device",
            "virtio-balloon",
            "-mem-path",
            "/dev/hugepages1G",
            "-mem-prealloc",
            "é",
            "日本",
            "💾",
            "{",
            "}",
            "\"size\":",
            "1",
            "0",
            "slots=2",
            "maxmem=",
            "hugetlb=on",
            "hugetlbsize=",
            "-",
            "--",
            "prealloc=on",
            "-smp",
            "qemu-kvm",
            "\u{0}",
            "\t",
            "0x",
            "k",
            "B",
            "maxmem=8G",
            "-overcommit",
            "mem-lock=",
            "type=",
            "nodeid=1",
            "pc-dimm",
            "nvdimm",
            "virtio-mem-pci",
            "virtio-balloon-pci",
            "node=1",
            "slot=0",
            "requested-size=2M",
            "block-size=0",
            "label-size=1G",
            "unarmed=on",
            "mem=1",
            "-M",
            "pc-i440fx-5.0",
            "nvdimm=on",
            "slots=0",
            "maxmem=2G",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            // Knuth's MMIX LCG: deterministic, so a failure reproduces.
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        for _ in 0..20_000 {
            let n = next() % 14;
            let mut line = String::new();
            for _ in 0..n {
                line.push_str(FRAGMENTS[next() % FRAGMENTS.len()]);
                if next() % 3 != 0 {
                    line.push(' ');
                }
            }
            if let Err(e) = parse(&line) {
                assert_eq!(line.get(e.offset..e.offset + e.token.len()), Some(e.token.as_str()), "{line:?} -> {e:?}");
                assert!(!e.message.is_empty());
            }
        }
    }

    // libvirt's own test suite (tests/qemuxmlconfdata, see the README next
    // to the files): every command line libvirt generates for a memory
    // feature must be one QEMU starts, except migrate-numa-unaligned, whose
    // cells add up to 14 GiB + 3 MiB + 104 KiB while -m says 14 GiB + 2 MiB
    // (numa.c numa_complete_configuration refuses it).
    #[test]
    fn libvirt_testdata_command_lines_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/libvirt-testdata");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!("skipped: libvirt test data not found at {}", dir.display());
            return;
        };
        let mut files: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "args"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no .args files in {}", dir.display());
        let mut wrong = Vec::new();
        for path in &files {
            let name = path.file_stem().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // The files start with environment assignments (LC_ALL=C
            // PATH=... \); the command line starts at the QEMU binary.
            let at = text.find("qemu-system").map_or(0, |i| text[..i].rfind(char::is_whitespace).map_or(0, |w| w + 1));
            let result = parse(&text[at..]);
            match (name.as_str(), result) {
                ("migrate-numa-unaligned", Err(e))
                    if e.message.contains("total memory for NUMA nodes should equal RAM size") => {}
                ("migrate-numa-unaligned", other) => {
                    wrong.push(format!("{name}: want the NUMA-sum refusal, got {other:?}"))
                }
                (_, Ok(_)) => {}
                (_, Err(e)) => wrong.push(format!("{name}: {e} (at `{}`)", e.token)),
            }
        }
        assert!(
            wrong.is_empty(),
            "{} of {} command lines read wrongly:\n{}",
            wrong.len(),
            files.len(),
            wrong.join("\n")
        );
    }
}
