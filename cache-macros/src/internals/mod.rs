//! What the expansion needs to know, read and checked (serde_derive's `internals`):
//!
//! - [`ctxt`]: errors collected, so one build reports them all;
//! - [`attr`]: every option of the four attributes in one table, parsed by kind, with
//!   unknown, misplaced and duplicate options reported once at their name; the one
//!   duration parser;
//! - [`check`]: what was written, checked against the rest and the function's signature;
//! - [`ast`]: the annotated function and the typed plan of each annotation;
//! - [`scan`]: the one token scanner (where an expression uses a variable);
//! - [`sig`]: the function's arguments, as the checks and the plan read them.

pub(crate) mod ast;
pub(crate) mod attr;
pub(crate) mod check;
pub(crate) mod ctxt;
pub(crate) mod scan;
pub(crate) mod sig;
