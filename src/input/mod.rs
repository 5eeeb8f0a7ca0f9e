//! Reading YAML input with positions: the tree (`node`), messages that
//! name file, line, column, field path and bad value (`diag`), the checked
//! reading of mappings and fields (`reader`) and the readers of single
//! values (`values`). The scenario's decoder and the policies' knobs use
//! it; it knows nothing of either.

pub mod diag;
pub mod node;
pub mod reader;
pub mod values;
