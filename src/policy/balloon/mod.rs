//! Balloon controllers: who decides how much memory each guest's virtio
//! balloon takes back. Each is one file with its knobs (decoding, defaults,
//! checks), its rule and its tests, following its published source quoted
//! in docs/sources/ksm-balloon-policies.md:
//!
//! - [`mom`]: oVirt's Memory Overcommitment Manager (section 1.2);
//! - [`proxmox`]: Proxmox VE's auto-ballooning (PVE::AutoBalloon).
//!
//! A controller sees the host and each guest in bytes and answers a new
//! `balloon_cur` (the memory the guest keeps) per guest, or nothing. The
//! engine moves the balloon: inflating takes the guest's highest addresses
//! first (free memory, then the coldest working-set pages, which go to the
//! guest's swap or cost a guest process), frees their host frames (not for
//! hugetlb memory, see the engine), and deflating gives them back.
//! `policy::resolve` maps `host.balloon.policy` to a controller.

pub mod mom;
pub mod proxmox;

/// One guest as a balloon controller sees it, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct GuestView {
    /// Alive, with a balloon device.
    pub managed: bool,
    /// Its driver reports statistics (virtio `stats-polling-interval`).
    pub has_stats: bool,
    /// Configured memory: the balloon's maximum `balloon_cur`.
    pub memory: u64,
    /// Memory the guest has now (memory minus the balloon).
    pub cur: u64,
    /// The guest's free memory (virtio stat-free-memory).
    pub unused: u64,
    /// The least it may keep.
    pub min: u64,
    /// Proxmox's weight.
    pub shares: u32,
}

/// The host as a balloon controller sees it, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct HostView {
    /// MemTotal.
    pub total: u64,
    /// Free memory (the model has no page cache).
    pub free: u64,
}

/// A guest's balloon configuration, for a controller's checks.
#[derive(Debug, Clone, Copy)]
pub struct GuestConfig {
    pub balloon: bool,
    pub balloon_stats: bool,
    pub balloon_min: u64,
}

/// A balloon controller's round.
pub trait BalloonController: std::fmt::Debug + Send {
    /// Its name in events ("MoM", "Proxmox").
    fn name(&self) -> &'static str;
    /// One round: a new `balloon_cur` per guest, or `None` to leave it.
    fn tick(&mut self, host: HostView, guests: &[GuestView]) -> Vec<Option<u64>>;
}
