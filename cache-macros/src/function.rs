//! One annotated function: its cachet attribute, and any stacked under it, become plans,
//! then layers. On error: the errors and the function without its cachet attributes, so
//! the caller sees only what is wrong with the annotations, each error once.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{Attribute, Item, Meta};

use crate::expand::expand_fn;
use crate::internals::ast::{Func, Plan};
use crate::internals::attr::{Args, Macro, SettingValue};
use crate::internals::ctxt::Ctxt;

/// Entry point of `#[cacheable]`, `#[cache_put]` and `#[cache_evict]`.
pub(crate) fn expand_attr(kind: Macro, args: TokenStream, item: TokenStream) -> TokenStream {
    // A body `syn` cannot parse is kept as tokens (tracing-attributes' fallback), so the
    // annotation still expands and rustc reports the body's own error, once.
    let mut func = match Func::parse(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let e = not_a_function(kind, &item).into_compile_error();
            return quote!(#e #item);
        }
    };
    let stacked = take_stacked(&mut func);
    // The stacked attributes are expanded here, never by rustc: name their paths so their
    // imports count as used (and a missing import is still an error).
    let paths = stacked.iter().map(Attribute::path);
    let uses = quote!(#(#[allow(unused_imports)] use #paths as _;)*);
    match expand(kind, args, &func, &stacked, &uses) {
        Ok(tokens) => tokens,
        Err(e) => {
            let e = e.into_compile_error();
            let uses = (!stacked.is_empty()).then(|| quote!(const _: () = { #uses };));
            let func = func.to_tokens_unchanged();
            quote!(#e #uses #func)
        }
    }
}

/// Takes the cachet attributes stacked under the one being expanded off the function.
fn take_stacked(func: &mut Func) -> Vec<Attribute> {
    let (stacked, kept) = std::mem::take(&mut func.attrs)
        .into_iter()
        .partition(|attr| cachet_kind(attr).is_some());
    func.attrs = kept;
    stacked
}

/// Plans this attribute and the stacked ones, and wraps the body in them as one group
/// ([`group`]). `prelude` goes first in the new body.
pub(crate) fn expand(
    kind: Macro,
    args: TokenStream,
    func: &Func,
    stacked: &[Attribute],
    prelude: &TokenStream,
) -> syn::Result<TokenStream> {
    let mut cx = Ctxt::default();
    let mut layers = vec![(kind, args, TokenStream::new())];
    for attr in stacked {
        if let Some(kind) = cachet_kind(attr) {
            match attr_tokens(kind, attr) {
                Ok(tokens) => layers.push((kind, tokens, attr.to_token_stream())),
                Err(e) => cx.push(e),
            }
        }
    }
    let mut plans = Vec::with_capacity(layers.len());
    for (kind, tokens, attr) in layers {
        match syn::parse2::<Args>(tokens).and_then(|args| Plan::new(kind, args, &func.sig, &attr)) {
            Ok(p) => plans.push(p),
            Err(e) => cx.push(e),
        }
    }
    cx.check()?;
    group(&mut plans);
    Ok(expand_fn(func, &plans, prelude))
}

/// Stacked annotations act as one group, as Spring's `@Caching` does: evictions are the
/// outermost layers (so they run on every call, before or after it, hit or not), then the
/// puts, then the lookups innermost; each kind keeps its written order. A `#[cache_put]` in
/// the group makes the function run on every call, so its `#[cacheable]`s do not answer
/// from the cache (`force_fresh`): they store the value the function returned, as the puts do.
fn group(plans: &mut [Plan]) {
    let rank = |plan: &Plan| match plan.kind {
        Macro::Evict => 0,
        Macro::Put => 1,
        _ => 2,
    };
    plans.sort_by_key(rank);
    if plans.iter().any(|p| p.kind == Macro::Put) {
        for plan in plans.iter_mut().filter(|p| p.kind == Macro::Cacheable) {
            plan.settings.retain(|(name, _)| *name != "force_fresh");
            plan.settings
                .push(("force_fresh", SettingValue::Bool(true)));
        }
    }
}

/// The macro an attribute invokes, recognised by its last path segment
/// (`cacheable`, `cachet::cacheable`).
pub(crate) fn cachet_kind(attr: &Attribute) -> Option<Macro> {
    let last = attr.path().segments.last()?;
    Macro::of_fn_attr(&last.ident.to_string())
}

/// The arguments of a stacked attribute: `#[cache_put]` has none, `#[cache_put(..)]` some.
fn attr_tokens(kind: Macro, attr: &Attribute) -> syn::Result<TokenStream> {
    match &attr.meta {
        Meta::Path(_) => Ok(TokenStream::new()),
        Meta::List(list) => Ok(list.tokens.clone()),
        Meta::NameValue(nv) => Err(syn::Error::new_spanned(
            nv,
            format!(
                "expected `#[{0}(\"cache\", ..)]`, not `#[{0} = ..]`",
                kind.attr()
            ),
        )),
    }
}

/// The error for a cachet attribute on something other than a function with a body,
/// pointing at the item's keyword and name when it has them.
fn not_a_function(kind: Macro, item: &TokenStream) -> syn::Error {
    let message = format!(
        "`#[{}]` applies to functions and methods with a body",
        kind.attr()
    );
    let head = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Struct(i)) => Some(span_of(&i.struct_token, &i.ident)),
        Ok(Item::Enum(i)) => Some(span_of(&i.enum_token, &i.ident)),
        Ok(Item::Trait(i)) => Some(span_of(&i.trait_token, &i.ident)),
        Ok(Item::Mod(i)) => Some(span_of(&i.mod_token, &i.ident)),
        Ok(Item::Const(i)) => Some(span_of(&i.const_token, &i.ident)),
        Ok(Item::Static(i)) => Some(span_of(&i.static_token, &i.ident)),
        Ok(Item::Type(i)) => Some(span_of(&i.type_token, &i.ident)),
        Ok(Item::Impl(i)) => Some(span_of(&i.impl_token, &i.self_ty)),
        _ => None,
    };
    match head {
        Some(tokens) => syn::Error::new_spanned(tokens, message),
        None => syn::Error::new_spanned(item, message),
    }
}

fn span_of(a: &impl ToTokens, b: &impl ToTokens) -> TokenStream {
    quote!(#a #b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::ItemFn;

    fn expand(kind: Macro, args: TokenStream, item: TokenStream) -> String {
        expand_attr(kind, args, item).to_string()
    }

    #[test]
    fn keeps_the_function_and_groups_stacked_attributes() -> syn::Result<()> {
        let out = expand_attr(
            Macro::Cacheable,
            quote!("a"),
            quote! {
                /// Docs.
                #[inline]
                #[cachet::cache_put("b", key = result)]
                #[must_use]
                pub(crate) fn f<T: Clone>(id: u64, t: T) -> u64 where T: Copy { let _ = t; id }
            },
        );
        let f: ItemFn = syn::parse2(out)?;
        let attrs: Vec<String> = f.attrs.iter().map(|a| quote!(#a).to_string()).collect();
        assert_eq!(
            attrs,
            ["# [doc = r\" Docs.\"]", "# [inline]", "# [must_use]"]
        );
        let vis = &f.vis;
        assert_eq!(quote!(#vis).to_string(), quote!(pub(crate)).to_string());
        assert!(f.sig.generics.where_clause.is_some());
        let block = &f.block;
        let body = quote!(#block).to_string();
        // The put is the outer layer, whatever the written order, and the cacheable under
        // it runs the function on every call.
        let cacheable = body.find("OperationKind :: Cacheable");
        let put = body.find("OperationKind :: Put");
        assert!(
            cacheable.is_some() && put.is_some() && put < cacheable,
            "{body}"
        );
        assert!(body.contains(". force_fresh (true)"), "{body}");
        assert!(body.contains("use cachet :: cache_put as _ ;"), "{body}");
        Ok(())
    }

    #[test]
    fn on_error_emits_the_errors_and_the_function_without_cachet_attributes() {
        let out = expand(
            Macro::Evict,
            quote!("a", bogus),
            quote!(
                #[cache_put(nope = 1)]
                #[inline]
                fn f() {}
            ),
        );
        // `bogus`, `nope`, and the missing name of the stacked `cache_put`.
        assert_eq!(out.matches("compile_error").count(), 3, "{out}");
        assert!(out.contains("# [inline] fn f () { }"), "{out}");
        assert!(!out.contains("# [cache_put"), "{out}");
        assert!(
            out.contains("const _ : () = { # [allow (unused_imports)] use cache_put as _ ; } ;"),
            "{out}"
        );
    }

    #[test]
    fn other_items_are_an_error_and_kept() {
        let out = expand(
            Macro::Put,
            quote!("a"),
            quote!(
                struct S;
            ),
        );
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.ends_with("struct S ;"), "{out}");
        let out = expand(
            Macro::Put,
            quote!("a"),
            quote!(
                const fn f() -> u8 {
                    1
                }
            ),
        );
        assert!(out.contains("cannot be used on a `const fn`"), "{out}");
    }

    #[test]
    fn a_body_that_does_not_parse_is_kept_as_written_and_still_expanded() {
        // `syn` cannot parse `id +` as an expression: the body is kept as tokens, the
        // annotation still expands, and no error of ours hides rustc's own about the body.
        let out = expand(
            Macro::Cacheable,
            quote!("a"),
            quote!(
                #[inline]
                fn f(id: u64) -> u64 { id + }
            ),
        );
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("OperationKind :: Cacheable"), "{out}");
        assert!(out.contains("{ id + }"), "{out}");
        assert!(
            out.starts_with("# [inline] fn f (id : u64) -> u64"),
            "{out}"
        );
        // With a bad attribute too: its errors, and the function as written.
        let out = expand(
            Macro::Cacheable,
            quote!("a", bogus),
            quote!(
                fn f(id: u64) -> u64 { id + }
            ),
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(out.ends_with("fn f (id : u64) -> u64 { id + }"), "{out}");
    }
}
