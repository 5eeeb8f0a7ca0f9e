//! Placeholder: host inspection is being written.
