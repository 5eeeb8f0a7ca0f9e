//! How the host reclaims and shares memory, the way Linux and KVM do it.
//! Each policy is one file and sees the model through [`Memory`]:
//!
//! - [`reclaim`]: kswapd and direct reclaim, a CLOCK (second-chance) scan
//!   of resident pages between the kernel's watermarks;
//! - [`oom`]: the OOM killer's choice of victim;
//! - [`hugepages`]: the hugetlb pool's rules;
//! - [`ksm`]: ksmd merging identical pages, and copy-on-write breaks;
//! - [`ksmtune`]: what sets KSM's knobs (ksmtuned, MoM, the kernel's advisor);
//! - [`balloon`]: how much each guest's virtio balloon takes (MoM, Proxmox).
//!
//! [`Memory`]: crate::model::Memory

pub mod balloon;
pub mod hugepages;
pub mod ksm;
pub mod ksmtune;
pub mod oom;
pub mod reclaim;
pub mod swap;
