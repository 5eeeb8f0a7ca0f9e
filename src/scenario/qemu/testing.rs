//! What the reader's unit tests share: a line read or refused (with the
//! check that an error points at its token), sizes in GiB and MiB, and
//! the boot region QEMU's defaults give.

use super::{MIB, QemuError, QemuMemory, parse};
use crate::scenario::guestmem::{Region, RegionKind};
use crate::units::ByteSize;

pub(super) const GIB: u64 = 1 << 30;

pub(super) fn ok(line: &str) -> QemuMemory {
    parse(line).unwrap_or_else(|e| panic!("{line:?} was refused: {e}"))
}

/// Parse a line that must fail, and check the error points at its token.
pub(super) fn fails(line: &str) -> QemuError {
    let e = parse(line).expect_err(line);
    assert_eq!(
        line.get(e.offset..e.offset + e.token.len()),
        Some(e.token.as_str()),
        "token/offset of {e:?} do not point into {line:?}"
    );
    e
}

pub(super) fn gib(n: u64) -> Option<ByteSize> {
    Some(ByteSize(n * GIB))
}

/// A boot region with the facts of QEMU's defaults: anonymous memory on
/// small pages, allocated on touch, private, open to KSM.
pub(super) fn boot(node: Option<u32>, bytes: u64) -> Region {
    Region::anonymous(RegionKind::Boot, node, ByteSize(bytes))
}

pub(super) fn mib(n: u64) -> Option<ByteSize> {
    Some(ByteSize(n * MIB))
}
