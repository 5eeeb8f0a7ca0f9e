//! The options that size and shape the machine's memory: `-m` (size,
//! slots, maxmem), `-mem-path`, the memory keys of `-machine` (type,
//! memory-backend, mem-merge, nvdimm, memory.*) and `-overcommit`'s
//! mem-lock.

use super::reader::Reader;
use super::words::{Text, parse_uint, qapi_bool, split_items, value_span};
use super::{MIB, QemuError};
use crate::units::ByteSize;

impl Reader<'_> {
    /// `-m [size=]megs[,slots=n,maxmem=size]` (qemu-options.hx). Repeated
    /// `-m` options merge key by key, later ones winning, as QemuOpts does
    /// for the "memory" group (`merge_lists = true`).
    pub(super) fn opt_m(&mut self, opt: &Text, arg: &Text) -> Result<(), QemuError> {
        let ctx = format!("`{} {}`", self.raw(opt.span), self.raw(arg.span));
        for (i, item) in split_items(arg).into_iter().enumerate() {
            let key = match &item.key {
                Some(k) => k.s.as_str(),
                None if i == 0 => "size",
                None => return Err(self.bare_item(&item, &ctx, "size, slots and maxmem")),
            };
            let vspan = value_span(&item);
            match key {
                "size" => {
                    // vl.c parse_memory_options: a size ending in a digit
                    // gets an "M" appended, so a bare number is MiB while
                    // `4.` or `4096B` keep their own unit.
                    let unit = if item.value.s.ends_with(|c: char| c.is_ascii_digit()) { MIB } else { 1 };
                    let size = ByteSize::parse_with_default_unit(&item.value.s, unit)
                        .map_err(|e| self.err(vspan, format!("bad size `{}` in {ctx}: {e}", self.raw(vspan))))?;
                    self.m.size = Some((size, vspan));
                }
                "slots" => {
                    let n = parse_uint(&item.value.s).ok_or_else(|| {
                        self.err(
                            vspan,
                            format!("bad slot count `{}` in {ctx}: expected a whole number", self.raw(vspan)),
                        )
                    })?;
                    self.m.slots = Some((n, vspan));
                }
                "maxmem" => {
                    // maxmem reaches the machine's "max-size" verbatim,
                    // parsed by qemu_strtosz: a bare number is bytes.
                    let size = ByteSize::parse_with_default_unit(&item.value.s, 1)
                        .map_err(|e| self.err(vspan, format!("bad maxmem `{}` in {ctx}: {e}", self.raw(vspan))))?;
                    self.m.maxmem = Some((size, vspan));
                    self.m.maxmem_bare = item.value.s.ends_with(|c: char| c.is_ascii_digit());
                }
                other => {
                    return Err(self.err(
                        item.whole.span,
                        format!("unknown key `{other}` in {ctx}: -m takes size, slots and maxmem"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `-mem-path PATH`: back the RAM QEMU creates from `-m` with a file in
    /// PATH. The last one given wins.
    pub(super) fn opt_mem_path(&mut self, opt: &Text, arg: &Text) -> Result<(), QemuError> {
        if arg.s.is_empty() {
            return Err(self.err(
                opt.span,
                format!("`{}` is given an empty path; name a directory such as /dev/hugepages", self.raw(opt.span)),
            ));
        }
        self.mem_path = Some((arg.s.clone(), arg.span));
        Ok(())
    }

    /// `-machine [type=]name[,prop=value...]` (keyval). Only the keys that
    /// decide guest RAM are read; repeated -machine options merge, later
    /// keys winning.
    pub(super) fn opt_machine(&mut self, opt: &Text, arg: &Text) -> Result<(), QemuError> {
        let ctx = format!("`{} {}`", self.raw(opt.span), self.raw(arg.span));
        if arg.s.trim_start().starts_with('{') {
            return Err(
                self.err(arg.span, format!("{ctx}: QEMU does not accept JSON for -machine; write key=value pairs"))
            );
        }
        for (i, item) in split_items(arg).into_iter().enumerate() {
            let Some(key) = &item.key else {
                if i == 0 {
                    // The machine type; later -machine options override it.
                    self.machine_type = Some((item.value.s.clone(), item.value.span));
                    continue;
                }
                return Err(self.bare_item(&item, &ctx, "type, memory-backend, mem-merge, ..."));
            };
            let vspan = value_span(&item);
            match key.s.as_str() {
                "type" => self.machine_type = Some((item.value.s.clone(), vspan)),
                "nvdimm" => {
                    self.nvdimm = qapi_bool(&item.value.s).ok_or_else(|| {
                        self.err(
                            vspan,
                            format!(
                                "`{}` in {ctx}: nvdimm takes on or off (QEMU also accepts yes/no, true/false, y/n)",
                                self.raw(item.whole.span)
                            ),
                        )
                    })?;
                }
                "accel" => self.opt_accel(&item.value.s),
                "memory-backend" => {
                    if item.value.s.is_empty() {
                        return Err(self.err(vspan, format!("{ctx}: memory-backend= needs the id of a memory backend")));
                    }
                    self.memory_backend = Some((item.value.s.clone(), vspan));
                }
                "mem-merge" => {
                    let on = qapi_bool(&item.value.s).ok_or_else(|| {
                        self.err(
                            vspan,
                            format!(
                                "`{}` in {ctx}: mem-merge takes on or off (QEMU also accepts yes/no, true/false, y/n)",
                                self.raw(item.whole.span)
                            ),
                        )
                    })?;
                    self.mem_merge = Some(on);
                }
                // -m is sugar for these machine properties; keyval sizes
                // are bytes when bare.
                "memory.size" | "memory.max-size" => {
                    let size = ByteSize::parse_with_default_unit(&item.value.s, 1)
                        .map_err(|e| self.err(vspan, format!("bad size `{}` in {ctx}: {e}", self.raw(vspan))))?;
                    if key.s == "memory.size" {
                        if size.bytes() == 0 {
                            return Err(self.err(vspan, format!("{ctx}: guest RAM cannot be 0")));
                        }
                        self.machine_mem.size = Some((size, vspan));
                    } else {
                        self.machine_mem.maxmem = Some((size, vspan));
                        self.machine_mem.maxmem_bare = item.value.s.ends_with(|c: char| c.is_ascii_digit());
                    }
                }
                "memory.slots" => {
                    let n = parse_uint(&item.value.s).ok_or_else(|| {
                        self.err(
                            vspan,
                            format!("bad slot count `{}` in {ctx}: expected a whole number", self.raw(vspan)),
                        )
                    })?;
                    self.machine_mem.slots = Some((n, vspan));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `-overcommit [mem-lock=on|off|on-fault][,cpu-pm=on|off]`; the last
    /// mem-lock given wins (vl.c overcommit_parse). libvirt writes
    /// `mem-lock=on` for `<locked/>` and `mem-lock=off` otherwise.
    ///
    /// `on-fault` counts as locked: qemu-options.hx says it makes allocation
    /// lazy "but the pages still get locked in place once faulted", so no
    /// page the guest has touched is ever swapped, which is what
    /// [`GuestMemory::mem_lock`](crate::scenario::guestmem::GuestMemory::mem_lock)
    /// states. (QEMU 10 reads the value with strcmp; older QEMU took a
    /// boolean, so yes/no/true/false are accepted too.)
    pub(super) fn opt_overcommit(&mut self, opt: &Text, arg: &Text) -> Result<(), QemuError> {
        let ctx = format!("`{} {}`", self.raw(opt.span), self.raw(arg.span));
        for item in split_items(arg) {
            let key = item.key.as_ref().map_or("", |k| k.s.as_str());
            match key {
                "mem-lock" => match item.value.s.as_str() {
                    "off" | "no" | "false" | "n" => self.mem_lock = false,
                    "on" | "yes" | "true" | "y" | "on-fault" => self.mem_lock = true,
                    _ => {
                        return Err(self.err(
                            value_span(&item),
                            format!("`{}` in {ctx}: mem-lock takes on, off or on-fault", self.raw(item.whole.span)),
                        ));
                    }
                },
                "cpu-pm" => {}
                _ => {
                    return Err(self.err(
                        item.whole.span,
                        format!("`{}` in {ctx}: -overcommit takes mem-lock= and cpu-pm=", self.raw(item.whole.span)),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{GIB, fails, gib, mib, ok};
    use super::*;

    // qemu-options.hx: -m [size=]megs[,slots=n,maxmem=size]; vl.c
    // parse_memory_options appends "M" to a size ending in a digit.
    #[test]
    fn m_forms() {
        assert_eq!(ok("-m 4G").memory, gib(4));
        assert_eq!(ok("-m 4096").memory, gib(4));
        assert_eq!(ok("-m 1.5G").memory, Some(ByteSize(3 * GIB / 2)));
        assert_eq!(ok("-m 512M").memory, mib(512));
        let q = ok("-m size=4G,slots=4,maxmem=16G");
        assert_eq!((q.memory, q.slots, q.maxmem), (gib(4), Some(4), gib(16)));
        let q = ok("-m 4G,slots=2,maxmem=8G");
        assert_eq!((q.memory, q.slots, q.maxmem), (gib(4), Some(2), gib(8)));
        // A size with its own unit keeps it: 4096B is bytes (then rounded).
        assert_eq!(ok("-m 16384B").memory, Some(ByteSize(16384)));
    }

    // QemuOpts "memory" has merge_lists = true: repeated -m merge key by
    // key, the last value of each key winning.
    #[test]
    fn repeated_m_last_wins_per_key() {
        assert_eq!(ok("-m 2G -m 4G").memory, gib(4));
        let q = ok("-m 4G,slots=2,maxmem=16G -m 6G");
        assert_eq!((q.memory, q.slots, q.maxmem), (gib(6), Some(2), gib(16)));
    }

    // The "memory" QemuOpts accept size, slots and maxmem only ("Invalid
    // parameter").
    #[test]
    fn m_bad_keys_and_values_are_refused() {
        let e = fails("-m 4G,foo=1");
        assert_eq!((e.token.as_str(), e.offset), ("foo=1", 6));
        assert!(e.message.contains("-m takes size, slots and maxmem"), "{}", e.message);
        let e = fails("-m 4Q");
        assert_eq!((e.token.as_str(), e.offset), ("4Q", 3));
        assert!(e.message.starts_with("bad size `4Q` in `-m 4Q`:"), "{}", e.message);
        let e = fails("-m size=");
        assert_eq!(e.token, "size=");
        let e = fails("-m 4G,8G");
        assert_eq!(e.token, "8G");
        fails("-m -4G");
        fails("-m ,4G");
    }

    // qemu-options.hx: -mem-prealloc preallocates guest memory; vl.c keeps
    // the last -mem-path.
    #[test]
    fn mem_prealloc_and_last_mem_path() {
        assert_eq!(ok("-m 1G -mem-prealloc").prealloc, Some(true));
        assert_eq!(ok("-m 1G").prealloc, None);
        let q = ok("-mem-path /srv/a -mem-path /dev/hugepages");
        assert_eq!((q.mem_path.as_deref(), q.hugepages), (Some("/dev/hugepages"), Some(true)));
        let e = fails("-mem-path ''");
        assert_eq!(e.token, "-mem-path");
    }

    // qemu-options.hx: mem-merge=on|off controls memory merge (default on);
    // hostmem.c takes it as every backend's default merge.
    #[test]
    fn machine_mem_merge() {
        assert_eq!(ok("-m 1G -machine mem-merge=off").merge, Some(false));
        assert_eq!(ok("-m 1G -machine pc,mem-merge=on").merge, Some(true));
        assert_eq!(ok("-m 1G").merge, None);
        let base = "-object memory-backend-ram,id=m,size=1G -machine memory-backend=m";
        assert_eq!(ok(&format!("{base} -machine mem-merge=off")).merge, Some(false));
        assert_eq!(
            ok("-object memory-backend-ram,id=m,size=1G,merge=on -machine memory-backend=m,mem-merge=off").merge,
            Some(true)
        );
        let e = fails("-machine mem-merge=sometimes");
        assert_eq!(e.token, "sometimes");
        // keyval: only the first element may omit its key (the type).
        let e = fails("-machine q35,vmport");
        assert_eq!(e.token, "vmport");
        fails("-machine '{\"type\":\"q35\"}'");
    }

    // vl.c parse_memory_options folds -m into the machine's memory.*
    // properties, -m winning; those take keyval sizes (bytes when bare).
    #[test]
    fn machine_memory_properties() {
        assert_eq!(ok("-machine q35,memory.size=2G").memory, gib(2));
        assert_eq!(ok("-machine memory.size=2G -m 1G").memory, gib(1));
        let q = ok("-machine memory.size=2G,memory.slots=2,memory.max-size=8G");
        assert_eq!((q.slots, q.maxmem), (Some(2), gib(8)));
        fails("-machine memory.size=2Q");
    }

    // qemu-options.hx: -overcommit mem-lock=on|off|on-fault, "disabled by
    // default"; on-fault makes allocation lazy "but the pages still get
    // locked in place once faulted", so it locks too. vl.c
    // overcommit_parse: the last mem-lock given wins.
    #[test]
    fn overcommit_mem_lock() {
        let q = ok("-overcommit mem-lock=off -m 1G");
        assert_eq!((q.memory, q.guest.mem_lock), (gib(1), false));
        assert!(!ok("-overcommit cpu-pm=on").guest.mem_lock);
        assert!(!ok("-m 1G").guest.mem_lock);
        assert!(ok("-overcommit mem-lock=on -m 1G").guest.mem_lock);
        assert!(ok("-overcommit mem-lock=on-fault").guest.mem_lock);
        assert!(!ok("-overcommit mem-lock=on -overcommit mem-lock=off").guest.mem_lock);
        assert!(ok("-overcommit mem-lock=on -overcommit cpu-pm=off").guest.mem_lock);
        let e = fails("-overcommit mem-lock=perhaps");
        assert_eq!(e.token, "perhaps");
        fails("-overcommit bogus=1");
    }
}
