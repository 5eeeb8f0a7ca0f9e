//! Foreign descriptions in: libvirt domain XML and a running host, turned
//! into scenarios. (QEMU command lines are read where scenarios are, in
//! [`crate::scenario::qemu`], since a scenario may carry one.)

pub mod libvirt;
