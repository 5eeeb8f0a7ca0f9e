//! Memory backends (`-object memory-backend-ram|file|memfd|shm`): the
//! properties each type takes, with their types, how one is read and
//! checked, looking one up by id, the region of guest memory it makes
//! with the defaults it inherits, and whether a file path lies on
//! hugetlbfs and with which page size.

use super::QemuError;
use super::properties::{Prop, Val};
use super::reader::Reader;
use super::said::{Backend, BackendKind};
use super::words::{Span, Text, split_items};
use crate::scenario::guestmem::{Pages, Region, RegionKind, Source};
use crate::units::ByteSize;

/// Property types of memory backends, for checking values the way QEMU's
/// visitors do even where the value does not matter to memory accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PropKind {
    Bool,
    Size,
    Str,
    Uint,
}

/// Properties every `memory-backend-*` has (`backends/hostmem.c`).
const COMMON_PROPS: &[(&str, PropKind)] = &[
    ("id", PropKind::Str),
    ("size", PropKind::Size),
    ("share", PropKind::Bool),
    ("merge", PropKind::Bool),
    ("dump", PropKind::Bool),
    ("prealloc", PropKind::Bool),
    ("prealloc-threads", PropKind::Uint),
    ("prealloc-context", PropKind::Str),
    ("host-nodes", PropKind::Str),
    ("policy", PropKind::Str),
    ("reserve", PropKind::Bool),
    ("x-use-canonical-path-for-ramblock-id", PropKind::Bool),
];

/// memory-backend-file's own properties (`backends/hostmem-file.c`).
const FILE_PROPS: &[(&str, PropKind)] = &[
    ("mem-path", PropKind::Str),
    ("discard-data", PropKind::Bool),
    ("align", PropKind::Size),
    ("offset", PropKind::Size),
    ("pmem", PropKind::Bool),
    ("readonly", PropKind::Bool),
    ("rom", PropKind::Str),
];

/// memory-backend-memfd's own properties (`backends/hostmem-memfd.c`).
const MEMFD_PROPS: &[(&str, PropKind)] =
    &[("hugetlb", PropKind::Bool), ("hugetlbsize", PropKind::Size), ("seal", PropKind::Bool)];

impl BackendKind {
    fn from_type(qom_type: &str) -> Option<Self> {
        match qom_type {
            "memory-backend-ram" => Some(Self::Ram),
            "memory-backend-file" => Some(Self::File),
            "memory-backend-memfd" => Some(Self::Memfd),
            "memory-backend-shm" => Some(Self::Shm),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Ram => "memory-backend-ram",
            Self::File => "memory-backend-file",
            Self::Memfd => "memory-backend-memfd",
            Self::Shm => "memory-backend-shm",
        }
    }

    fn own_props(self) -> &'static [(&'static str, PropKind)] {
        match self {
            Self::File => FILE_PROPS,
            Self::Memfd => MEMFD_PROPS,
            Self::Ram | Self::Shm => &[],
        }
    }

    fn prop(self, key: &str) -> Option<PropKind> {
        // host-nodes may also be written as a keyval list: host-nodes.0=1.
        if key.starts_with("host-nodes.") {
            return Some(PropKind::Str);
        }
        COMMON_PROPS.iter().chain(self.own_props()).find(|(k, _)| *k == key).map(|&(_, kind)| kind)
    }
}

impl Reader<'_> {
    /// `-object TYPE,id=ID,...` in keyval or JSON form. Memory backends are
    /// read in full; other objects only register their id.
    pub(super) fn opt_object(&mut self, opt: &Text, arg: &Text) -> Result<(), QemuError> {
        let (qom_type, type_span, props) = if arg.s.trim_start().starts_with('{') {
            let map = self.json_object(opt, arg)?;
            let Some(t) = map.get("qom-type").and_then(|v| v.as_str()) else {
                return Err(self.err(arg.span, format!("`{}` JSON has no \"qom-type\"", self.raw(opt.span))));
            };
            let props = map
                .iter()
                .filter(|(k, _)| k.as_str() != "qom-type")
                .map(|(k, v)| Prop { key: k.clone(), val: Val::Json(v.clone()), span: arg.span })
                .collect();
            (t.to_string(), arg.span, props)
        } else {
            let ctx = format!("`{} {}`", self.raw(opt.span), self.raw(arg.span));
            let mut qom_type = None;
            let mut props = Vec::new();
            for (i, item) in split_items(arg).into_iter().enumerate() {
                match item.key {
                    None if i == 0 => qom_type = Some((item.value.s.clone(), item.value.span)),
                    Some(k) if k.s == "qom-type" => qom_type = Some((item.value.s.clone(), item.value.span)),
                    Some(k) => props.push(Prop { key: k.s, val: Val::Text(item.value), span: item.whole.span }),
                    None => return Err(self.bare_item(&item, &ctx, "id, size, ...")),
                }
            }
            let Some((t, span)) = qom_type.filter(|(t, _)| !t.is_empty()) else {
                return Err(self.err(
                    arg.span,
                    format!("{ctx} does not say what to create: start it with a type, e.g. memory-backend-ram"),
                ));
            };
            (t, span, props)
        };
        let ctx = format!("{} {qom_type}", self.raw(opt.span));
        let id_prop = props.iter().rev().find(|p| p.key == "id").cloned();
        let id = match &id_prop {
            Some(p) => Some((self.prop_str(&ctx, p)?, p.span)),
            None => None,
        };
        if let Some((id, span)) = &id {
            if !id_wellformed(id) {
                return Err(self.err(
                    *span,
                    format!(
                        "`{}` in {ctx}: an id starts with a letter and has only letters, digits, `-`, `.` and `_`",
                        self.raw(*span)
                    ),
                ));
            }
            if let Some(earlier) = self.object_ids.get(id) {
                return Err(self.err(
                    *span,
                    format!(
                        "`{}` in {ctx}: id `{id}` is already taken by an earlier -object {earlier}",
                        self.raw(*span)
                    ),
                ));
            }
            self.object_ids.insert(id.clone(), qom_type.clone());
        }
        let Some(kind) = BackendKind::from_type(&qom_type) else {
            if qom_type.starts_with("memory-backend") {
                return Err(self.err(
                    type_span,
                    format!(
                        "`{qom_type}` is not a memory backend overcommit can model: use memory-backend-ram, \
                         memory-backend-file, memory-backend-memfd or memory-backend-shm"
                    ),
                ));
            }
            return Ok(());
        };
        let Some((id, _)) = id else {
            return Err(self.err(
                arg.span,
                format!("{ctx} has no id=: QEMU needs one to create an object (and to use it as guest RAM)"),
            ));
        };
        let backend = self.backend(kind, id, &ctx, &props, arg.span)?;
        self.backends.push(backend);
        Ok(())
    }

    /// Read a memory backend's properties with QEMU's types and defaults
    /// for this backend type; later keys win, as in keyval.
    fn backend(
        &self,
        kind: BackendKind,
        id: String,
        ctx: &str,
        props: &[Prop],
        span: Span,
    ) -> Result<Backend, QemuError> {
        let mut b = Backend {
            id,
            kind,
            size: ByteSize(0),
            share: None,
            merge: None,
            prealloc: None,
            mem_path: None,
            hugetlb: false,
            hugetlbsize: None,
            discard_data: false,
            readonly: false,
            span,
        };
        let mut size_given = false;
        let mut reserve = None;
        for p in props {
            let Some(pk) = kind.prop(&p.key) else {
                return Err(self.unknown_prop(kind, ctx, p));
            };
            match p.key.as_str() {
                "id" => {}
                "size" => {
                    let size = self.prop_size(ctx, p)?;
                    if size.bytes() == 0 {
                        return Err(self.err(
                            p.span,
                            format!("`{}` in {ctx}: a memory backend cannot be empty", self.raw(p.span)),
                        ));
                    }
                    b.size = size;
                    size_given = true;
                }
                "share" => b.share = Some(self.prop_bool(ctx, p)?),
                "merge" => b.merge = Some(self.prop_bool(ctx, p)?),
                "prealloc" => b.prealloc = Some(self.prop_bool(ctx, p)?),
                "reserve" => reserve = Some((self.prop_bool(ctx, p)?, p.span)),
                "mem-path" => {
                    let path = self.prop_str(ctx, p)?;
                    if path.is_empty() {
                        return Err(self.err(p.span, format!("`{}` in {ctx}: the path is empty", self.raw(p.span))));
                    }
                    b.mem_path = Some(path);
                }
                "hugetlb" => b.hugetlb = self.prop_bool(ctx, p)?,
                "discard-data" => b.discard_data = self.prop_bool(ctx, p)?,
                "readonly" => b.readonly = self.prop_bool(ctx, p)?,
                "hugetlbsize" => {
                    let size = self.prop_size(ctx, p)?;
                    // util/memfd.c: "Hugepage size must be a power of 2";
                    // hostmem-memfd.c refuses 0.
                    if !size.bytes().is_power_of_two() {
                        return Err(self.err(
                            p.span,
                            format!(
                                "`{}` in {ctx}: a huge page size is a power of two (2M or 1G on x86-64)",
                                self.raw(p.span)
                            ),
                        ));
                    }
                    b.hugetlbsize = Some(size);
                }
                // Accepted and checked for type, but they do not change how
                // much memory the guest takes or where it comes from.
                _ => match pk {
                    PropKind::Bool => {
                        self.prop_bool(ctx, p)?;
                    }
                    PropKind::Size => {
                        self.prop_size(ctx, p)?;
                    }
                    PropKind::Str => {
                        self.prop_str(ctx, p)?;
                    }
                    PropKind::Uint => {
                        self.prop_uint(ctx, p)?;
                    }
                },
            }
        }
        if !size_given {
            return Err(self.err(
                span,
                format!("{ctx} has no size=: QEMU cannot create a memory backend without one (e.g. size=4G)"),
            ));
        }
        if kind == BackendKind::File && b.mem_path.is_none() {
            return Err(self.err(
                span,
                format!(
                    "{ctx} has no mem-path=: QEMU says \"mem-path property not set\" (e.g. mem-path=/dev/hugepages)"
                ),
            ));
        }
        if let Some((false, rspan)) = reserve
            && b.prealloc == Some(true)
        {
            return Err(self.err(rspan, format!("{ctx}: QEMU refuses prealloc=on together with reserve=off")));
        }
        if kind == BackendKind::Shm && b.share == Some(false) {
            return Err(self.err(span, format!("{ctx}: POSIX shared memory is always shared; remove share=off")));
        }
        Ok(b)
    }

    fn unknown_prop(&self, kind: BackendKind, ctx: &str, p: &Prop) -> QemuError {
        let owner = [BackendKind::File, BackendKind::Memfd]
            .into_iter()
            .find(|k| k.own_props().iter().any(|(n, _)| *n == p.key));
        let message = match owner {
            Some(owner) => format!(
                "`{}` in {ctx}: {} is a property of {}, not of {}",
                self.raw(p.span),
                p.key,
                owner.name(),
                kind.name()
            ),
            None => {
                let known: Vec<&str> = COMMON_PROPS.iter().chain(kind.own_props()).map(|(k, _)| *k).collect();
                format!(
                    "`{}` in {ctx}: {} has no property `{}`; it takes {}",
                    self.raw(p.span),
                    kind.name(),
                    p.key,
                    known.join(", ")
                )
            }
        };
        self.err(p.span, message)
    }

    pub(super) fn lookup_backend(&self, id: &str, span: Span, via: &str) -> Result<&Backend, QemuError> {
        if let Some(b) = self.backends.iter().find(|b| b.id == id) {
            return Ok(b);
        }
        let message = match self.object_ids.get(id) {
            Some(t) => format!("{via}=`{id}` names an -object {t}, which is not a memory backend"),
            None => format!(
                "{via}=`{id}`: there is no -object memory-backend-* with id={id} (QEMU: \"Memory backend \
                 '{id}' not found\")"
            ),
        };
        Err(self.err(span, message))
    }

    /// A region backed by `b`, with the backend's facts and the defaults it
    /// inherits (`-mem-prealloc`, `-machine mem-merge`; hostmem.c
    /// host_memory_backend_init).
    pub(super) fn backend_region(
        &self,
        b: &Backend,
        kind: RegionKind,
        node: Option<u32>,
        size: ByteSize,
        capacity: ByteSize,
    ) -> Region {
        let (source, pages) = match b.kind {
            BackendKind::Ram => (Source::Anonymous, Pages::Small),
            BackendKind::File => (Source::File, file_pages(b.mem_path.as_deref().unwrap_or_default())),
            // hugetlbsize= without hugetlb=on is ignored by QEMU
            // (util/memfd.c only encodes the size with MFD_HUGETLB).
            BackendKind::Memfd => (Source::Memfd, if b.hugetlb { Pages::Huge(b.hugetlbsize) } else { Pages::Small }),
            // memory-backend-shm (shm_open) is shared tmpfs memory with no
            // file of the user's, as a memfd is; guestmem has no source of
            // its own for it, and libvirt does not write it.
            BackendKind::Shm => (Source::Memfd, Pages::Small),
        };
        Region {
            kind,
            node,
            size,
            capacity,
            source,
            pages,
            prealloc: b.prealloc.unwrap_or(self.mem_prealloc),
            // hostmem-memfd.c memfd_backend_instance_init sets share = true;
            // a POSIX shm object is always shared.
            share: b.share.unwrap_or(matches!(b.kind, BackendKind::Memfd | BackendKind::Shm)),
            merge: b.merge.or(self.mem_merge).unwrap_or(true),
            discard: b.discard_data,
            readonly: b.readonly,
        }
    }
}

/// QEMU's `id_wellformed`: a letter, then letters, digits, `-`, `.`, `_`.
fn id_wellformed(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// The hugetlbfs mount-point convention (see the module comment for why
/// not statfs()).
pub(super) fn is_hugetlbfs_path(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    ["/dev/hugepages", "/mnt/huge", "/hugepages"].iter().any(|m| p.starts_with(m))
        || p.contains("hugetlbfs")
        || p.contains("hugepages")
}

/// The pages behind a file backend: hugetlbfs by the mount convention,
/// with the size its name carries.
pub(super) fn file_pages(path: &str) -> Pages {
    if is_hugetlbfs_path(path) { Pages::Huge(page_size_from_path(path)) } else { Pages::Small }
}

/// The page size a mount name carries, as in `/dev/hugepages1G`,
/// `/dev/hugepages-1048576kB`, `/mnt/huge_1GB`. A bare number (no unit) says
/// nothing certain and is ignored.
pub(super) fn page_size_from_path(path: &str) -> Option<ByteSize> {
    path.split('/').find_map(|part| {
        let lower = part.to_ascii_lowercase();
        let at = lower.find("huge")?;
        let rest = lower.get(at + "huge".len()..)?;
        let rest = ["pages", "page", "tlbfs"].iter().find_map(|p| rest.strip_prefix(p)).unwrap_or(rest);
        let rest = rest.trim_start_matches(['-', '_', '.', '=']);
        let starts_digit = rest.starts_with(|c: char| c.is_ascii_digit());
        let ends_unit = rest.ends_with(|c: char| c.is_ascii_alphabetic());
        if !(starts_digit && ends_unit) {
            return None;
        }
        ByteSize::parse(rest).ok().filter(|s| s.bytes() != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{GIB, boot, fails, gib, mib, ok};
    use super::*;

    // QEMU checks statfs() for HUGETLBFS_MAGIC; we go by the mount path.
    #[test]
    fn mem_path_hugetlbfs_by_convention() {
        for path in [
            "/dev/hugepages",
            "/dev/hugepages/libvirt/qemu",
            "/dev/hugepages1G",
            "/mnt/huge",
            "/mnt/huge_1GB",
            "/hugepages",
            "/run/hugetlbfs/vm",
            "/srv/HugePages/vm",
        ] {
            let q = ok(&format!("-m 2G -mem-path {path}"));
            assert_eq!(q.hugepages, Some(true), "{path}");
            assert_eq!(q.mem_path.as_deref(), Some(path));
        }
        // A plain file backing is file memory, not huge pages.
        let q = ok("-m 2G -mem-path /var/lib/vm/ram");
        assert_eq!((q.hugepages, q.hugepage_size), (Some(false), None));
        assert_eq!(ok("-m 2G").hugepages, None);
    }

    // hugetlbfs mounts are conventionally named after their page size
    // (systemd's dev-hugepages1G.mount, sysfs hugepages-1048576kB).
    #[test]
    fn mem_path_page_size_from_mount_name() {
        let size = |p: &str| ok(&format!("-mem-path {p}")).hugepage_size;
        assert_eq!(size("/dev/hugepages1G"), gib(1));
        assert_eq!(size("/dev/hugepages1G/libvirt/qemu/1-vm"), gib(1));
        assert_eq!(size("/dev/hugepages-1048576kB"), gib(1));
        assert_eq!(size("/dev/hugepages-2048kB"), mib(2));
        assert_eq!(size("/dev/hugepages-2M"), mib(2));
        assert_eq!(size("/mnt/huge_1GB"), gib(1));
        assert_eq!(size("/dev/hugepages"), None);
        assert_eq!(size("/dev/hugepages2"), None);
        assert_eq!(size("/var/lib/vm/ram1G"), None);
    }

    // hostmem.c: the size property is visited with qemu_strtosz, where a
    // bare number is bytes (qemu_strtosz_MiB is only for -m).
    #[test]
    fn backend_size_bare_number_is_bytes() {
        let q = ok("-object memory-backend-ram,id=m0,size=4294967296 -machine memory-backend=m0");
        assert_eq!(q.memory, gib(4));
        let e = fails("-object memory-backend-ram,id=m0,size=4096 -m 4G -machine memory-backend=m0");
        assert!(e.message.contains("memory-backend `m0` is 4 KiB"), "{}", e.message);
    }

    // qemu-options.hx -machine memory-backend example: a file backend on
    // hugetlbfs, preallocated and shared, with -m equal to its size.
    #[test]
    fn file_backend_on_hugetlbfs() {
        let q = ok("-object memory-backend-file,id=pc.ram,size=512M,mem-path=/dev/hugepages,prealloc=on,share=on \
                    -machine memory-backend=pc.ram -m 512M");
        assert_eq!(q.memory, mib(512));
        assert_eq!(q.mem_path.as_deref(), Some("/dev/hugepages"));
        assert_eq!((q.hugepages, q.prealloc, q.share, q.merge), (Some(true), Some(true), Some(true), None));
        let q = ok("-object memory-backend-file,id=m,size=1G,mem-path=/var/tmp/ram -machine memory-backend=m");
        assert_eq!((q.hugepages, q.share, q.prealloc), (Some(false), None, None));
    }

    // hostmem-memfd.c: hugetlb= and hugetlbsize= choose hugetlbfs pages;
    // instance_init sets share = true and seal = true.
    #[test]
    fn memfd_backend() {
        let q = ok("-object memory-backend-memfd,id=m,size=2G,hugetlb=on,hugetlbsize=2M -machine memory-backend=m");
        assert_eq!((q.memory, q.hugepages, q.hugepage_size), (gib(2), Some(true), mib(2)));
        assert_eq!(q.share, Some(true));
        let q = ok("-object memory-backend-memfd,id=m,size=2G,share=off,seal=off -machine memory-backend=m");
        assert_eq!((q.hugepages, q.share), (Some(false), Some(false)));
        // util/memfd.c only encodes the page size when hugetlb is on.
        let q = ok("-object memory-backend-memfd,id=m,size=2G,hugetlbsize=1G -machine memory-backend=m");
        assert_eq!((q.hugepages, q.hugepage_size), (Some(false), None));
        // Default page size: unknown here.
        let q = ok("-object memory-backend-memfd,id=m,size=2G,hugetlb=yes -machine memory-backend=m");
        assert_eq!((q.hugepages, q.hugepage_size), (Some(true), None));
        // util/memfd.c: "Hugepage size must be a power of 2".
        let e = fails("-object memory-backend-memfd,id=m,size=2G,hugetlb=on,hugetlbsize=3M");
        assert_eq!(e.token, "hugetlbsize=3M");
    }

    // object_property_set fails with "Property 'memory-backend-ram.foo' not
    // found"; each backend type has its own property set.
    #[test]
    fn backend_unknown_properties_are_refused() {
        let e = fails("-object memory-backend-ram,id=m,size=1G,foo=bar");
        assert_eq!(e.token, "foo=bar");
        assert!(e.message.contains("memory-backend-ram has no property `foo`"), "{}", e.message);
        assert!(e.message.contains("id, size, share, merge, dump, prealloc, prealloc-threads"), "{}", e.message);
        let e = fails("-object memory-backend-ram,id=m,size=1G,mem-path=/dev/hugepages");
        assert!(e.message.contains("mem-path is a property of memory-backend-file"), "{}", e.message);
        let e = fails("-object memory-backend-file,id=m,size=1G,mem-path=/x,hugetlb=on");
        assert!(e.message.contains("hugetlb is a property of memory-backend-memfd"), "{}", e.message);
        let e = fails("-object memory-backend-file,id=m,size=1G,mem-path=/x,foo=1");
        assert!(e.message.contains("discard-data, align, offset, pmem, readonly"), "{}", e.message);
    }

    // Properties that do not change memory accounting are accepted (and
    // type-checked as QEMU's visitors would).
    #[test]
    fn backend_irrelevant_properties_are_accepted() {
        let q = ok("-object memory-backend-file,id=m,size=1G,mem-path=/dev/hugepages,dump=off,host-nodes=0-1,\
                    policy=bind,prealloc-threads=4,reserve=on,x-use-canonical-path-for-ramblock-id=off,\
                    discard-data=on,align=2M,pmem=off,readonly=off -machine memory-backend=m");
        assert_eq!(q.memory, gib(1));
        ok("-object memory-backend-memfd,id=m,size=1G,seal=on,host-nodes.0=0,host-nodes.1=1 -machine memory-backend=m");
        let e = fails("-object memory-backend-ram,id=m,size=1G,dump=perhaps");
        assert_eq!(e.token, "dump=perhaps");
        let e = fails("-object memory-backend-ram,id=m,size=1G,prealloc-threads=many");
        assert_eq!(e.token, "prealloc-threads=many");
    }

    // qom: -object needs id; hostmem: "can't create backend with size 0";
    // hostmem-file: "mem-path property not set".
    #[test]
    fn backend_required_properties() {
        let e = fails("-object memory-backend-ram,size=1G");
        assert!(e.message.contains("has no id="), "{}", e.message);
        assert_eq!(e.offset, 8);
        let e = fails("-object memory-backend-ram,id=m");
        assert!(e.message.contains("has no size="), "{}", e.message);
        let e = fails("-object memory-backend-file,id=m,size=1G");
        assert!(e.message.contains("mem-path property not set"), "{}", e.message);
        let e = fails("-object memory-backend-ram,id=m,size=0");
        assert_eq!(e.token, "size=0");
        let e = fails("-object memory-backend-ram,id=m,size=4Q");
        assert!(e.message.starts_with("bad size `size=4Q` in -object memory-backend-ram"), "{}", e.message);
        // hostmem.c: "'prealloc=on' and 'reserve=off' are incompatible".
        let e = fails("-object memory-backend-ram,id=m,size=1G,prealloc=on,reserve=off");
        assert_eq!(e.token, "reserve=off");
        // id_wellformed: a letter first.
        let e = fails("-object memory-backend-ram,id=0m,size=1G");
        assert_eq!(e.token, "id=0m");
        let e = fails("-object id=m,size=1G");
        assert!(e.message.contains("does not say what to create"), "{}", e.message);
        fails("-object ,id=m,size=1G");
    }

    // Objects that are not memory backends do not touch memory.
    #[test]
    fn other_objects_are_ignored() {
        let q = ok("-object rng-random,id=rng0,filename=/dev/urandom -object iothread,id=io1 \
                    -object secret,id=s0,data=x -m 1G");
        assert_eq!(q.memory, gib(1));
        // But they take their id, and a memdev must be a memory backend.
        let e = fails("-object iothread,id=m -object memory-backend-ram,id=m,size=1G");
        assert!(e.message.contains("already taken"), "{}", e.message);
        let e = fails("-object iothread,id=io -machine memory-backend=io");
        assert!(e.message.contains("not a memory backend"), "{}", e.message);
        let e = fails("-object memory-backend-epc,id=e,size=64M");
        assert!(e.message.contains("not a memory backend overcommit can model"), "{}", e.message);
    }

    // The facts of an explicit backend: hostmem-memfd.c instance_init makes
    // a memfd shared; hugetlb=on without hugetlbsize= takes the host's
    // default size; hostmem-file.c discard-data and readonly; a POSIX shm
    // backend is always shared (hostmem-shm.c).
    #[test]
    fn guest_region_facts_of_machine_memory_backend() {
        let region = |obj: &str| ok(&format!("-object {obj} -machine memory-backend=m")).guest.regions[0].clone();
        assert_eq!(
            region("memory-backend-memfd,id=m,size=1G,hugetlb=on"),
            Region { source: Source::Memfd, pages: Pages::Huge(None), share: true, ..boot(None, GIB) }
        );
        assert_eq!(
            region("memory-backend-memfd,id=m,size=1G,hugetlb=on,hugetlbsize=2M,share=off,prealloc=on"),
            Region { source: Source::Memfd, pages: Pages::Huge(mib(2)), prealloc: true, ..boot(None, GIB) }
        );
        assert_eq!(
            region("memory-backend-file,id=m,size=1G,mem-path=/srv/ram,discard-data=on,readonly=on,merge=off"),
            Region { source: Source::File, discard: true, readonly: true, merge: false, ..boot(None, GIB) }
        );
        assert_eq!(
            region("memory-backend-shm,id=m,size=1G"),
            Region { source: Source::Memfd, share: true, ..boot(None, GIB) }
        );
        let q = ok(
            "-mem-prealloc -machine mem-merge=off -object memory-backend-ram,id=m,size=1G -machine memory-backend=m",
        );
        assert_eq!(q.guest.regions, vec![Region { prealloc: true, merge: false, ..boot(None, GIB) }]);
    }
}
