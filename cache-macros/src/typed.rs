//! Annotations naming typed caches (`#[cacheable(USERS)]`, declared with `cachet::caches!`):
//! recognising the path among an attribute's arguments, and the compile-time checks of the
//! key and the cached value against the declaration.
//!
//! Each check is a local trait whose `#[diagnostic::on_unimplemented]` names the function
//! and the declaration, implemented for exactly what the declaration accepts: a key that
//! encodes as the declared key (the runtime's `KeyOf`), a value of the declared type. An
//! unmet bound is then reported at the key part or the return type, in those words. A
//! misspelled declaration is rustc's own "cannot find value" at the path.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{Ident, Path};

use crate::type_text::path_text as shown;

/// The typed caches of one annotation, and what their checks need.
pub(crate) struct Typed<'a> {
    pub paths: &'a [Path],
    pub p: &'a TokenStream,
    /// The annotated function's name, for messages.
    pub function: &'a str,
}

impl Typed<'_> {
    /// The operation's cache names and declarations: `(&[names], .with_typed(&[..]))`.
    pub fn operation(&self) -> (TokenStream, TokenStream) {
        let p = self.p;
        let paths = self.paths;
        (
            quote!(&[#(#p::TypedCache::name(&#paths)),*]),
            quote!(.with_typed(&[#(#p::TypedCache::declaration(&#paths)),*])),
        )
    }

    /// Checks that the function's cached value (`shape`'s) is each declaration's value type,
    /// reported at the return type.
    pub fn value_checks(&self, shape: &Ident, ret_span: Span) -> TokenStream {
        let p = self.p;
        let f = self.function;
        let checks = self.paths.iter().enumerate().map(|(i, path)| {
            let decl = shown(path);
            let message = format!(
                "`{f}` caches `{{Self}}` values, but the typed cache `{decl}` holds `{{V}}` values"
            );
            let label =
                format!("the cached value is a `{{Self}}`; `{decl}` is declared with `{{V}}`");
            let note = format!(
                "the cached value of a function returning `T`, `Result<T, E>` or `Option<T>` is \
                 `T`: return the type `{decl}` is declared with in `cachet::caches!`, or use \
                 another cache"
            );
            let check = format_ident!("__CachetTypedValue{i}");
            let func = format_ident!("__cachet_typed_value{i}");
            let call = quote_spanned!(ret_span=> #func(&#shape, &#path));
            quote! {
                #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
                trait #check<V> {}
                impl<V> #check<V> for V {}
                impl<V> #check<#p::Unmatched<V>> for V {}
                fn #func<S: #p::DeclaredValue, K: ?::core::marker::Sized, V>(
                    _: &S,
                    _: &#p::TypedCache<K, V>,
                ) where
                    S::Value: #check<V>,
                {
                }
                #call;
            }
        });
        quote!(#(#checks)*)
    }

    /// `#[cacheable_many(USERS)]`: the keys argument's key type (`K` of `Vec<K>`), checked
    /// at that type, and the loaded values' type (the result's `ManyOutput::Value`), at the
    /// return type.
    pub fn many_checks(&self, key: &syn::Type, ret: &TokenStream, ret_span: Span) -> TokenStream {
        let p = self.p;
        let f = self.function;
        let checks = self.paths.iter().enumerate().map(|(i, path)| {
            let decl = shown(path);
            let key_check = format_ident!("__CachetTypedKey{i}");
            let value_check = format_ident!("__CachetTypedValue{i}");
            let func = format_ident!("__cachet_typed_many{i}");
            let key_message = format!(
                "the keys of `{f}` do not match the typed cache `{decl}`: `{{Self}}` is not its \
                 key type `{{K}}`"
            );
            let key_label = format!("keys of type `{{Self}}`; `{decl}` has `{{K}}` keys");
            let value_message = format!(
                "`{f}` loads `{{Self}}` values, but the typed cache `{decl}` holds `{{V}}` values"
            );
            let value_label =
                format!("the loaded values are `{{Self}}`; `{decl}` is declared with `{{V}}`");
            let key_at = quote_spanned!(syn::spanned::Spanned::span(key)=> #key);
            let ret_at = quote_spanned!(ret_span=> #ret);
            quote! {
                #[diagnostic::on_unimplemented(message = #key_message, label = #key_label)]
                trait #key_check<K: ?::core::marker::Sized> {}
                impl<K: ?::core::marker::Sized, A: ?::core::marker::Sized + #p::KeyOf<K>>
                    #key_check<K> for A {}
                #[diagnostic::on_unimplemented(message = #value_message, label = #value_label)]
                trait #value_check<V> {}
                impl<V> #value_check<V> for V {}
                impl<V> #value_check<#p::Unmatched<V>> for V {}
                #[allow(dead_code)]
                fn #func<K: ?::core::marker::Sized, V>(_: &#p::TypedCache<K, V>)
                where
                    #key_at: #key_check<K>,
                    <#ret_at as #p::ManyOutput<#key>>::Value: #value_check<V>,
                {
                }
                #func(&#path);
            }
        });
        quote!(#(#checks)*)
    }

    /// What the key function of [`crate::expand`] adds so each key part is checked against
    /// each declaration's key type: generic parameters, parameters, bounds, and the
    /// arguments to pass. `parts` are the key's parts as the function names them (`id`,
    /// `user.id`) with the span of each; none for the unit key.
    pub fn key_bounds(&self, parts: &[(String, Span)]) -> KeyBounds {
        let p = self.p;
        let f = self.function;
        let mut out = KeyBounds::default();
        for (j, path) in self.paths.iter().enumerate() {
            let decl = shown(path);
            let (dk, dv, d) = (
                format_ident!("D{j}K"),
                format_ident!("D{j}V"),
                format_ident!("d{j}"),
            );
            out.generics.push(quote!(#dk: ?::core::marker::Sized, #dv));
            out.params.push(quote!(#d: &#p::TypedCache<#dk, #dv>));
            // At the first part (or the declaration when there is none): an arity error is
            // about the key as a whole.
            let at = parts
                .first()
                .map_or_else(|| path_span(path), |(_, span)| *span);
            out.args.push(quote_spanned!(at=> &#path));
            let key_check = format_ident!("__CachetTypedKey{j}");
            let message = format!(
                "the key of `{f}` does not match the typed cache `{decl}`: `{{Self}}` is not its \
                 key type `{{K}}`"
            );
            let label = format!("this key is a `{{Self}}`; `{decl}` has `{{K}}` keys");
            out.items.push(quote! {
                #[diagnostic::on_unimplemented(
                    message = #message,
                    label = #label,
                    note = "a key may be the declared type, a reference to it, or its borrowed \
                            form (`&str` for `String`, `&[T]` for `Vec<T>`), which encode alike"
                )]
                trait #key_check<K: ?::core::marker::Sized> {}
                impl<K: ?::core::marker::Sized, A: ?::core::marker::Sized + #p::KeyOf<K>>
                    #key_check<K> for A {}
            });
            match parts.len() {
                0 => {
                    let unit = format_ident!("__CachetTypedUnit{j}");
                    let message = format!(
                        "`{f}` has no key (no argument), but the typed cache `{decl}` is declared \
                         with key type `{{Self}}`"
                    );
                    out.items.push(quote! {
                        #[diagnostic::on_unimplemented(
                            message = #message,
                            label = "a function without arguments has the unit key `()`",
                            note = "name the key with `key = ..`"
                        )]
                        trait #unit {}
                        impl #unit for () {}
                        impl #unit for #p::Unmatched<()> {}
                    });
                    out.bounds.push(quote!(#dk: #unit));
                }
                1 => {
                    out.bounds.push(quote!(A0: #key_check<#dk>));
                }
                n => {
                    let tuple = format_ident!("__CachetTypedTuple{j}");
                    let names = parts
                        .iter()
                        .map(|(name, _)| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let message = format!(
                        "the key of `{f}` has {n} parts ({names}), but the typed cache `{decl}` \
                         is declared with key type `{{Self}}`"
                    );
                    let label = format!("a key of {n} parts");
                    let assoc: Vec<Ident> = (0..n).map(|i| format_ident!("P{i}")).collect();
                    let params: Vec<Ident> = (0..n).map(|i| format_ident!("T{i}")).collect();
                    out.items.push(quote! {
                        #[diagnostic::on_unimplemented(
                            message = #message,
                            label = #label,
                            note = "declare a tuple key of as many parts in `cachet::caches!`, \
                                    or name the key with `key = ..`"
                        )]
                        trait #tuple { #(type #assoc: ?::core::marker::Sized;)* }
                        impl<#(#params,)*> #tuple for (#(#params,)*) {
                            #(type #assoc = #params;)*
                        }
                    });
                    out.bounds.push(quote!(#dk: #tuple));
                    for (i, pi) in assoc.iter().enumerate() {
                        let a = format_ident!("A{i}");
                        out.bounds
                            .push(quote!(#a: #key_check<<#dk as #tuple>::#pi>));
                    }
                }
            }
        }
        out
    }
}

/// The span of a path's last segment (the declaration's name).
fn path_span(path: &Path) -> Span {
    path.segments
        .last()
        .map_or_else(Span::call_site, |s| s.ident.span())
}

/// What the key function adds for typed caches (see [`Typed::key_bounds`]).
#[derive(Default)]
pub(crate) struct KeyBounds {
    /// Local traits, next to the key function.
    pub items: Vec<TokenStream>,
    /// Its extra generic parameters.
    pub generics: Vec<TokenStream>,
    /// Its extra parameters.
    pub params: Vec<TokenStream>,
    /// Its `where` bounds.
    pub bounds: Vec<TokenStream>,
    /// The extra arguments of its call.
    pub args: Vec<TokenStream>,
}
