//! Placeholder: the QEMU command-line reader is being written.
