//! Checks of what was written against the rest of the annotation and the function: names,
//! tags, the signature, `skip`, uses of `result`, and whether the function may finish in
//! the background. Each reports into the [`Ctxt`], at the offending tokens.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::visit::Visit;
use syn::{Expr, Ident, LitStr, ReturnType, Signature};

use super::attr::Macro;
use super::ctxt::Ctxt;
use super::scan::{find_ident, find_result};
use super::sig::fn_args;
use crate::type_text::path_text;

/// A cache name must be non-empty, without whitespace or the characters that have a meaning
/// in stored keys and Redis patterns.
pub(crate) fn validate_name(name: &str) -> Result<(), String> {
    const FORBIDDEN: &[char] = &[':', '#', '*', '?', '[', ']', '\\'];
    if name.is_empty() {
        return Err("cache name is empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || FORBIDDEN.contains(c))
    {
        return Err(format!(
            "cache name `{}` contains {:?}; names must not contain whitespace or any of \
             `: # * ? [ ] \\`",
            name.escape_default(),
            c
        ));
    }
    Ok(())
}

/// The valid names of a list, each once; the others are reported.
pub(crate) fn names(names: &[LitStr], cx: &mut Ctxt) -> Vec<LitStr> {
    let mut valid: Vec<LitStr> = Vec::with_capacity(names.len());
    for name in names {
        if let Err(msg) = validate_name(&name.value()) {
            cx.at(name.span(), msg);
        } else if valid.iter().any(|n| n.value() == name.value()) {
            cx.at(
                name.span(),
                format!("cache `{}` is named twice", name.value()),
            );
        } else {
            valid.push(name.clone());
        }
    }
    valid
}

/// A function attribute's cache names: at least one. `attr` is where an error about the
/// whole attribute points (its tokens, or none for the one being expanded: its call site).
pub(crate) fn fn_names(
    which: Macro,
    list: &[LitStr],
    typed: &[syn::Path],
    attr: &TokenStream,
    cx: &mut Ctxt,
) {
    if let (Some(name), Some(path)) = (list.first(), typed.first()) {
        cx.spanned(
            name,
            format!(
                "`#[{}]` names typed caches (`{}`) and string-named ones (`\"{}\"`): use one \
                 kind; declare this cache with `cachet::caches!` too",
                which.attr(),
                path_text(path),
                name.value()
            ),
        );
    }
    if list.is_empty() && typed.is_empty() {
        cx.spanned(
            attr,
            format!(
                "`#[{0}]` needs a cache name, as in `#[{0}(\"users\")]`, or \
                 `#[cache_config(cache = \"users\")]` on the impl block",
                which.attr()
            ),
        );
    }
    names(list, cx);
}

/// `tags = [..]`: at least one tag, none empty, none twice. `span` is the option's.
pub(crate) fn tags(span: Span, tags: &[LitStr], cx: &mut Ctxt) {
    if tags.is_empty() {
        cx.at(
            span,
            "`tags` needs at least one tag, as in `tags = [\"catalog\"]`; or leave the option out",
        );
    }
    for (i, tag) in tags.iter().enumerate() {
        if tag.value().is_empty() {
            cx.at(tag.span(), "tag is empty");
        } else if tags[..i].iter().any(|t| t.value() == tag.value()) {
            cx.at(tag.span(), format!("tag `{}` is listed twice", tag.value()));
        }
    }
}

/// A `const fn` cannot call the runtime; an `impl Trait` return type cannot be named in the
/// generated code.
pub(crate) fn signature(which: Macro, sig: &Signature, cx: &mut Ctxt) {
    if let Some(c) = &sig.constness {
        cx.at(
            c.span,
            format!(
                "`#[{}]` cannot be used on a `const fn`: caching happens at run time",
                which.attr()
            ),
        );
    }
    struct FindImpl(bool);
    impl Visit<'_> for FindImpl {
        fn visit_type_impl_trait(&mut self, _: &syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        let mut find = FindImpl(false);
        find.visit_type(ty);
        if find.0 {
            cx.spanned(
                ty,
                format!(
                    "`#[{}]` cannot be used on a function returning `impl Trait`: the cached \
                     value needs a type that can be named; return a concrete type",
                    which.attr()
                ),
            );
        }
    }
}

/// Each name in `skip(..)` must be an argument, once.
pub(crate) fn skip(sig: &Signature, skip: &[Ident], cx: &mut Ctxt) {
    for (i, s) in skip.iter().enumerate() {
        if s == "self" {
            cx.at(
                s.span(),
                "`self` is never part of the default key; remove it from `skip`",
            );
        } else if skip[..i].contains(s) {
            cx.at(s.span(), format!("`{s}` is skipped twice"));
        } else if !fn_args(sig).any(|(ident, _)| ident == Some(s)) {
            let names: Vec<String> = fn_args(sig)
                .filter_map(|(ident, _)| ident.map(|i| format!("`{i}`")))
                .collect();
            let hint = if names.is_empty() {
                format!("`{}` has no named arguments", sig.ident)
            } else {
                format!("its arguments are {}", names.join(", "))
            };
            cx.at(
                s.span(),
                format!("`skip({s})`: `{}` has no argument `{s}`; {hint}", sig.ident),
            );
        }
    }
}

/// `result` where the function's value does not exist yet: `message` at its use. An
/// argument named `result` is that argument, not the value.
pub(crate) fn no_result(sig: &Signature, expr: &Expr, message: &str, cx: &mut Ctxt) {
    let arg_named_result = fn_args(sig).any(|(ident, _)| ident.is_some_and(|i| i == "result"));
    if let (Some(span), false) = (find_result(expr), arg_named_result) {
        cx.at(span, message);
    }
}

/// Why a function's future cannot outlive its call, if it cannot: decided by its
/// signature, since `'static` and `Send` cannot be probed from the generated code.
pub(crate) fn why_attached(
    sig: &Signature,
    unless: Option<&Expr>,
    ttl_from: Option<&Expr>,
) -> Option<String> {
    if sig.receiver().is_some() {
        return Some("a method's future borrows `self`".into());
    }
    if !sig.generics.params.is_empty() {
        return Some("it has generic parameters".into());
    }
    struct Borrows(bool);
    impl Visit<'_> for Borrows {
        fn visit_type_reference(&mut self, _: &syn::TypeReference) {
            self.0 = true;
        }
        fn visit_lifetime(&mut self, _: &syn::Lifetime) {
            self.0 = true;
        }
        fn visit_type_impl_trait(&mut self, _: &syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    for (ident, pt) in fn_args(sig) {
        let mut borrows = Borrows(false);
        borrows.visit_type(&pt.ty);
        if borrows.0 {
            let name = ident.map_or_else(|| pt.pat.to_token_stream().to_string(), Ident::to_string);
            return Some(format!(
                "its argument `{name}` is borrowed or has a lifetime or `impl Trait` type"
            ));
        }
    }
    let names: Vec<&Ident> = fn_args(sig).filter_map(|(ident, _)| ident).collect();
    if let Some(arg) = unless.and_then(|u| find_ident(u, &names)) {
        return Some(format!(
            "its `unless` uses the argument `{arg}`, which the function's future owns"
        ));
    }
    if let Some(arg) = ttl_from.and_then(|t| find_ident(t, &names)) {
        return Some(format!(
            "its `ttl_from` uses the argument `{arg}`, which the function's future owns"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("users").is_ok());
        assert!(validate_name("user-profiles.v2").is_ok());
        for bad in ["", "a:b", "a#", "*", "a?", "[a]", "a\\b", "a\tb"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
