//! The reader's state: everything the options have said so far, kept
//! with where it was written, and how an error points at the input.

use std::collections::HashMap;

use super::QemuError;
use super::said::{Backend, MemDevice, MemOpts, NumaNode};
use super::words::{Item, Span};
use crate::scenario::guestmem::BalloonDevice;

/// Everything read so far; [`Reader::finish`] turns it into
/// [`QemuMemory`](super::QemuMemory).
pub(super) struct Reader<'a> {
    src: &'a str,
    pub(super) m: MemOpts,
    pub(super) machine_mem: MemOpts,
    pub(super) mem_path: Option<(String, Span)>,
    pub(super) mem_prealloc: bool,
    pub(super) backends: Vec<Backend>,
    /// Ids of every `-object`, memory backend or not, to refuse duplicates.
    pub(super) object_ids: HashMap<String, String>,
    pub(super) memory_backend: Option<(String, Span)>,
    pub(super) mem_merge: Option<bool>,
    /// `-machine [type=]NAME`, the last one given.
    pub(super) machine_type: Option<(String, Span)>,
    /// `-machine nvdimm=on`.
    pub(super) nvdimm: bool,
    pub(super) numa: Vec<NumaNode>,
    /// Memory devices, in command-line order.
    pub(super) devices: Vec<MemDevice>,
    /// Every `memdev=` of a `-device` (memory devices and others such as
    /// ivshmem-plain), in order, with the driver that takes it.
    pub(super) device_memdevs: Vec<(String, Span, String)>,
    pub(super) balloon: Option<BalloonDevice>,
    /// `-overcommit mem-lock=on|on-fault`.
    pub(super) mem_lock: bool,
    /// `-accel`, `-machine accel=` or `-enable-kvm`, the last one said.
    pub(super) accel: Option<crate::scenario::schema::Accel>,
}

impl<'a> Reader<'a> {
    /// `-accel kvm[,...]` / `-accel accel=tcg,...` / `-machine accel=kvm:tcg`:
    /// the first accelerator named (QEMU tries a list in order). Others
    /// (xen, hvf, whpx, qtest) leave it unsaid.
    pub(super) fn opt_accel(&mut self, value: &str) {
        use crate::scenario::schema::Accel;
        let first = value.split(',').next().unwrap_or("");
        let name = first.strip_prefix("accel=").unwrap_or(first);
        let name = name.split(':').next().unwrap_or("");
        match name {
            "kvm" => self.accel = Some(Accel::Kvm),
            "tcg" => self.accel = Some(Accel::Tcg),
            _ => {}
        }
    }

    pub(super) fn new(src: &'a str) -> Self {
        Reader {
            src,
            m: MemOpts::default(),
            machine_mem: MemOpts::default(),
            mem_path: None,
            mem_prealloc: false,
            backends: Vec::new(),
            object_ids: HashMap::new(),
            memory_backend: None,
            mem_merge: None,
            machine_type: None,
            nvdimm: false,
            numa: Vec::new(),
            devices: Vec::new(),
            device_memdevs: Vec::new(),
            balloon: None,
            mem_lock: false,
            accel: None,
        }
    }

    /// The input text at `span`, verbatim.
    pub(super) fn raw(&self, span: Span) -> &'a str {
        self.src.get(span.start..span.end).unwrap_or_default()
    }

    pub(super) fn err(&self, span: Span, message: String) -> QemuError {
        QemuError { token: self.raw(span).to_string(), offset: span.start, message }
    }

    pub(super) fn bare_item(&self, item: &Item, ctx: &str, keys: &str) -> QemuError {
        let word = self.raw(item.whole.span);
        if word.is_empty() {
            self.err(item.whole.span, format!("empty element (two commas?) in {ctx}"))
        } else {
            self.err(item.whole.span, format!("`{word}` in {ctx} needs a key, as in key=value (keys: {keys})"))
        }
    }
}
