//! Placeholder: the QEMU command-line reader is being written.
use crate::units::ByteSize;
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QemuMemory {
    pub memory: Option<ByteSize>,
    pub slots: Option<u32>,
    pub maxmem: Option<ByteSize>,
    pub mem_path: Option<String>,
    pub prealloc: Option<bool>,
    pub hugepages: Option<bool>,
    pub hugepage_size: Option<ByteSize>,
    pub share: Option<bool>,
    pub merge: Option<bool>,
    pub balloon: Option<bool>,
}
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct QemuError {
    pub token: String,
    pub offset: usize,
    pub message: String,
}
pub fn parse(_cmdline: &str) -> Result<QemuMemory, QemuError> {
    Ok(QemuMemory::default())
}
