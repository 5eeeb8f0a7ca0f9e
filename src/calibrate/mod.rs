//! Everything that looks at the real machine: host inspection (`host`) and,
//! later, fault-cost measurement. The only module allowed unsafe code.

pub mod host;
