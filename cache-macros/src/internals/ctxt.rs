//! Error collection: every misuse found in one annotation (or a stack of them) is kept, and
//! reported together, so one build shows them all (serde_derive's `Ctxt`).

use proc_macro2::Span;
use quote::ToTokens;

/// Collects errors, combined with [`syn::Error::combine`] in the order they were found.
#[derive(Default)]
pub(crate) struct Ctxt(Option<syn::Error>);

impl Ctxt {
    /// Adds an error (which may itself hold several).
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(e) => e.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// An error at `span`.
    pub fn at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    /// An error spanning `tokens`.
    pub fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// `Ok` when nothing was found, else every error found.
    pub fn check(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_error_in_order() {
        let mut cx = Ctxt::default();
        assert!(Ctxt::default().check().is_ok());
        cx.at(Span::call_site(), "one");
        cx.at(Span::call_site(), "two");
        let all: Vec<String> = cx
            .check()
            .err()
            .into_iter()
            .flatten()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(all, ["one", "two"]);
    }
}
