//! The state of a simulated host and its guests: pages, frames, the hugetlb
//! pool, and the swap device with its slots and queue. No policy lives here: the engine and the policies
//! read and change it through these types.

pub mod eventset;
pub mod frames;
pub mod guest;
pub mod host;
pub mod ksmpage;
pub mod page;
pub mod pagemem;
pub mod swap;
pub mod swapcache;
pub mod wbt;
pub mod workload;

pub use frames::{Frames, Unit};
pub use guest::{Backing, Guest, Status};
pub use host::{Memory, Watermarks};
