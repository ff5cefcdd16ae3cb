//! Turning results into something a person reads. Today: the terminal comparison table.

pub mod table;
