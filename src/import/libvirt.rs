//! libvirt domain XML: what `virsh dumpxml` prints and `/etc/libvirt/qemu/`
//! holds, read into a [`crate::scenario::guestmem::GuestMemory`] and the
//! rest of what a scenario needs.
