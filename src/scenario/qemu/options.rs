//! The options a command line may hold: what makes a word an option (one
//! or two dashes; a leading program name is none), the memory options the
//! reader reads, the ones it skips (with or without their argument)
//! because they do not touch memory, and what it says about a word that is
//! not an option, an option without its value or an option it does not
//! know.

use super::QemuError;
use super::reader::Reader;
use super::words::Text;

/// A leading program name is not an option; skip it so a line copied from
/// `ps` or a script works unchanged.
pub(super) fn is_program_name(word: &str) -> bool {
    let base = word.rsplit('/').next().unwrap_or(word);
    matches!(base, "kvm" | "qemu" | "qemu-kvm") || base.starts_with("qemu-system-")
}

/// QEMU accepts every option with one or two dashes.
pub(super) fn option_name(word: &str) -> Option<&str> {
    word.strip_prefix("--").or_else(|| word.strip_prefix('-')).filter(|n| !n.is_empty())
}

/// A word that is surely the next option rather than a value.
pub(super) fn looks_like_option(word: &str) -> bool {
    word.strip_prefix('-').and_then(|r| r.chars().next()).is_some_and(|c| c.is_ascii_alphabetic() || c == '-')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OptKind {
    M,
    MemPath,
    MemPrealloc,
    Object,
    Machine,
    Numa,
    Device,
    Overcommit,
    Accel,
    /// Irrelevant to memory, no argument.
    Flag,
    /// Irrelevant to memory, one argument.
    Skip,
    Unknown,
}

/// Options that take no argument and do not touch memory.
const FLAGS: &[&str] = &[
    "enable-kvm",
    "nographic",
    "daemonize",
    "snapshot",
    "no-reboot",
    "no-shutdown",
    "S",
    "usb",
    "nodefaults",
    "no-user-config",
    "no-hpet",
    "no-acpi",
    "full-screen",
    "only-migratable",
    "preconfig",
];

/// Options that take one argument and do not touch memory.
const SKIPPED: &[&str] = &[
    "smp",
    "cpu",
    "name",
    "display",
    "vga",
    "drive",
    "blockdev",
    "hda",
    "hdb",
    "hdc",
    "hdd",
    "fda",
    "fdb",
    "cdrom",
    "boot",
    "netdev",
    "net",
    "nic",
    "serial",
    "parallel",
    "monitor",
    "mon",
    "qmp",
    "qmp-pretty",
    "chardev",
    "vnc",
    "spice",
    "audiodev",
    "audio",
    "kernel",
    "initrd",
    "append",
    "dtb",
    "pidfile",
    "uuid",
    "rtc",
    "global",
    "bios",
    "usbdevice",
    "k",
    "D",
    "d",
    "incoming",
    "trace",
    "sandbox",
    "msg",
    "fw_cfg",
    "add-fd",
    "smbios",
    "tpmdev",
    "fsdev",
    "virtfs",
    "L",
    "runas",
    "run-with",
    "action",
    "icount",
    "loadvm",
    "watchdog-action",
];

pub(super) fn option_kind(name: &str) -> OptKind {
    match name {
        "m" => OptKind::M,
        "mem-path" => OptKind::MemPath,
        "mem-prealloc" => OptKind::MemPrealloc,
        "object" => OptKind::Object,
        "machine" | "M" => OptKind::Machine,
        "numa" => OptKind::Numa,
        "device" => OptKind::Device,
        "overcommit" => OptKind::Overcommit,
        "accel" => OptKind::Accel,
        _ if FLAGS.contains(&name) => OptKind::Flag,
        _ if SKIPPED.contains(&name) => OptKind::Skip,
        _ => OptKind::Unknown,
    }
}

/// All option names we know, for "did you mean".
fn known_options() -> impl Iterator<Item = &'static str> {
    ["m", "mem-path", "mem-prealloc", "object", "machine", "numa", "device", "overcommit", "accel"]
        .into_iter()
        .chain(FLAGS.iter().copied())
        .chain(SKIPPED.iter().copied())
}

impl Reader<'_> {
    pub(super) fn bare_word(&self, tok: &Text, previous: Option<&Text>) -> QemuError {
        let word = self.raw(tok.span);
        let message = match previous {
            Some(flag) => format!(
                "`{word}` is not an option: `{}` before it takes no value; remove `{word}`",
                self.raw(flag.span)
            ),
            None => format!(
                "`{word}` is not an option: QEMU options start with `-` (a disk image or other \
                 bare argument is not needed to plan memory; remove it)"
            ),
        };
        self.err(tok.span, message)
    }

    pub(super) fn missing_value(&self, opt: &Text, next: Option<&Text>) -> QemuError {
        let o = self.raw(opt.span);
        match next {
            Some(n) => self
                .err(opt.span, format!("`{o}` needs a value, but the next word is the option `{}`", self.raw(n.span))),
            None => self.err(opt.span, format!("`{o}` needs a value after it, e.g. {}", example_of(&opt.s))),
        }
    }

    pub(super) fn unknown_option(&self, tok: &Text, name: &str) -> QemuError {
        let word = self.raw(tok.span);
        let squash = |s: &str| s.replace(['-', '_'], "").to_ascii_lowercase();
        let known: Vec<&str> = known_options().collect();
        let hint = known
            .iter()
            .copied()
            .find(|k| squash(k) == squash(name))
            .or_else(|| crate::input::diag::did_you_mean(name, &known))
            .map(|k| format!(" (did you mean `-{k}`?)"))
            .unwrap_or_default();
        let message = if name == "balloon" {
            format!(
                "`{word}` was removed from QEMU; write `-device virtio-balloon-pci` for a balloon, \
                 or leave it out for none"
            )
        } else {
            format!(
                "unknown option `{word}`{hint}: overcommit understands -m, -mem-path, -mem-prealloc, \
                 -object memory-backend-*, -machine, -numa, -device (pc-dimm, nvdimm, virtio-mem, \
                 virtio-balloon) and -overcommit, \
                 and ignores -enable-kvm, -smp, -cpu, -name, -drive, -netdev, -display and the other \
                 options that do not affect memory; check the spelling or remove it"
            )
        };
        self.err(tok.span, message)
    }
}

fn example_of(opt: &str) -> &'static str {
    match option_name(opt).unwrap_or_default() {
        "m" => "-m 4G",
        "mem-path" => "-mem-path /dev/hugepages",
        "object" => "-object memory-backend-ram,id=m0,size=4G",
        "machine" | "M" => "-machine q35,memory-backend=m0",
        "numa" => "-numa node,memdev=m0",
        "device" => "-device virtio-balloon-pci",
        "overcommit" => "-overcommit mem-lock=off",
        _ => "the option's argument",
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::testing::{fails, gib, ok};

    // The program name is argv[0], not an option.
    #[test]
    fn leading_program_name_is_skipped() {
        for prog in ["qemu-system-x86_64", "/usr/bin/qemu-system-x86_64", "qemu-kvm", "/usr/libexec/qemu-kvm", "kvm"] {
            assert_eq!(ok(&format!("{prog} -m 4G")).memory, gib(4), "{prog}");
        }
    }

    // vl.c lookup_opt: "if (r[1] == '-') r++", so every option also takes
    // two dashes.
    #[test]
    fn options_take_one_or_two_dashes() {
        let q = ok("--m 2G --mem-path /dev/hugepages --mem-prealloc --enable-kvm");
        assert_eq!(q.memory, gib(2));
        assert_eq!(q.hugepages, Some(true));
        assert_eq!(q.prealloc, Some(true));
    }

    // QEMU reads a bare word as a disk image; it tells us nothing about
    // memory and is most likely a value given to a flag.
    #[test]
    fn bare_words_are_refused() {
        let e = fails("-m 4G disk.img");
        assert_eq!((e.token.as_str(), e.offset), ("disk.img", 6));
        let e = fails("-enable-kvm yes");
        assert_eq!(e.token, "yes");
        assert!(e.message.contains("`-enable-kvm` before it takes no value"), "{}", e.message);
    }

    // Anything we do not know could be a memory option we would misread.
    #[test]
    fn unknown_options_are_refused_by_name() {
        let e = fails("-m 4G -foo bar");
        assert_eq!((e.token.as_str(), e.offset), ("-foo", 6));
        assert!(e.message.starts_with("unknown option `-foo`: overcommit understands -m"), "{}", e.message);
        assert!(e.message.contains("-enable-kvm, -smp, -cpu, -name"), "{}", e.message);
        let e = fails("-mempath /dev/hugepages");
        assert!(e.message.contains("did you mean `-mem-path`?"), "{}", e.message);
        // qemu-options.hx: option names are case-sensitive (-M is -machine).
        fails("-Enable-kvm");
        // -balloon was removed from QEMU in favour of -device.
        let e = fails("-balloon virtio");
        assert!(e.message.contains("-device virtio-balloon-pci"), "{}", e.message);
    }

    // vl.c: "requires an argument" for HAS_ARG options.
    #[test]
    fn missing_values_are_refused() {
        let e = fails("-enable-kvm -m");
        assert_eq!((e.token.as_str(), e.offset), ("-m", 12));
        assert!(e.message.contains("`-m` needs a value"), "{}", e.message);
        let e = fails("-m -enable-kvm");
        assert!(e.message.contains("next word is the option `-enable-kvm`"), "{}", e.message);
        for opt in ["-mem-path", "-object", "-machine", "-M", "-numa", "-device", "-smp", "-drive"] {
            let e = fails(&format!("-m 1G {opt}"));
            assert_eq!(e.token, opt);
        }
    }

    // qemu-options.hx: these options do not touch guest memory; each is
    // skipped with its argument (HAS_ARG) or alone.
    #[test]
    fn options_irrelevant_to_memory_are_skipped() {
        let line = "qemu-system-x86_64 -enable-kvm -nographic -daemonize -snapshot -no-reboot -no-shutdown -S \
                    -accel kvm -smp 4,sockets=1 -cpu host -name guest=vm1 -display none -vga std \
                    -drive file=/var/lib/a.qcow2,if=virtio -hda a.img -cdrom b.iso -boot order=c \
                    -netdev user,id=n0 -net none -nic user -serial mon:stdio -monitor none -qmp unix:/q,server \
                    -chardev null,id=c0 -vnc :0 -kernel vmlinuz -initrd initrd.img -append 'console=ttyS0 -x' \
                    -pidfile /run/vm.pid -uuid 1-2 -rtc base=utc -global kvm-pit.lost_tick_policy=delay \
                    -bios bios.bin -usb -usbdevice tablet -k en-us -D log -d guest_errors -incoming defer \
                    -trace enable=kvm* -m 3G";
        assert_eq!(ok(line).memory, gib(3));
        // The argument of a skipped option is taken verbatim, even with a dash.
        assert_eq!(ok("-append -m -m 1G").memory, gib(1));
    }

    #[test]
    fn misspelt_option_gets_a_suggestion() {
        // One letter dropped from `-mem-prealloc` (qemu-options.hx): the
        // edit-distance suggestion names the real option.
        let e = parse("-m 4G -mem-prelloc").unwrap_err();
        assert!(e.message.contains("did you mean `-mem-prealloc`?"), "{}", e.message);
        assert_eq!(e.token, "-mem-prelloc");
    }
}
