//! One annotated function: its cachet attribute, and any stacked under it, become plans,
//! then layers. On error: the errors and the function without its cachet attributes, so
//! the caller sees only what is wrong with the annotations, each error once.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{Attribute, Item, ItemFn, Meta};

use crate::args::AttrArgs;
use crate::expand::expand_fn;
use crate::plan::{plan, Errors, MacroKind};

/// Entry point of `#[cacheable]`, `#[cache_put]` and `#[cache_evict]`.
pub(crate) fn expand_attr(kind: MacroKind, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut func = match syn::parse2::<ItemFn>(item.clone()) {
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
            quote!(#e #uses #func)
        }
    }
}

/// Takes the cachet attributes stacked under the one being expanded off the function.
fn take_stacked(func: &mut ItemFn) -> Vec<Attribute> {
    let (stacked, kept) = std::mem::take(&mut func.attrs)
        .into_iter()
        .partition(|attr| cachet_kind(attr).is_some());
    func.attrs = kept;
    stacked
}

/// Plans this attribute and the stacked ones, and wraps the body, the first attribute
/// outermost. `prelude` goes first in the new body.
pub(crate) fn expand(
    kind: MacroKind,
    args: TokenStream,
    func: &ItemFn,
    stacked: &[Attribute],
    prelude: &TokenStream,
) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let mut layers = vec![(kind, args, TokenStream::new())];
    for attr in stacked {
        if let Some(kind) = cachet_kind(attr) {
            match attr_tokens(kind, attr) {
                Ok(tokens) => layers.push((kind, tokens, attr.to_token_stream())),
                Err(e) => errors.push(e),
            }
        }
    }
    let mut plans = Vec::with_capacity(layers.len());
    for (kind, tokens, attr) in layers {
        match syn::parse2::<AttrArgs>(tokens).and_then(|args| plan(kind, args, &func.sig, &attr)) {
            Ok(p) => plans.push(p),
            Err(e) => errors.push(e),
        }
    }
    errors.finish()?;
    Ok(expand_fn(func, &plans, prelude))
}

/// The macro an attribute invokes, recognised by its last path segment
/// (`cacheable`, `cachet::cacheable`).
pub(crate) fn cachet_kind(attr: &Attribute) -> Option<MacroKind> {
    let last = attr.path().segments.last()?;
    MacroKind::from_attr(&last.ident.to_string())
}

/// The arguments of a stacked attribute: `#[cache_put]` has none, `#[cache_put(..)]` some.
fn attr_tokens(kind: MacroKind, attr: &Attribute) -> syn::Result<TokenStream> {
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
fn not_a_function(kind: MacroKind, item: &TokenStream) -> syn::Error {
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
