//! The annotated function's signature as the checks and the plan read it.

use syn::{FnArg, Ident, Pat, Signature};

/// The function's arguments other than `self`: their name (if a plain identifier pattern)
/// and the argument itself.
pub(crate) fn fn_args(sig: &Signature) -> impl Iterator<Item = (Option<&Ident>, &syn::PatType)> {
    sig.inputs.iter().filter_map(|arg| match arg {
        FnArg::Receiver(_) => None,
        FnArg::Typed(pt) => Some((
            match &*pt.pat {
                Pat::Ident(pi) => Some(&pi.ident),
                _ => None,
            },
            pt,
        )),
    })
}
