//! `#[cacheable_many]`: an `async fn` loading many keys at once, cached one entry per key.
//!
//! The keys argument (the one argument not in `skip(..)`, a `Vec<K>` or a `&[K]`) is looked
//! up key by key; the body runs once with only the missing keys bound to that argument, and
//! its result (`HashMap<K, V>`, `Vec<(K, V)>`, or a `Result` of one: the runtime's
//! `ManyOutput` trait decides) is stored one entry per key and merged with the hits.

use crate::type_text::tidy;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, Pat, PathArguments, ReturnType, Type};

use crate::internals::attr::{Args, Attr, Macro, SettingValue};
use crate::internals::ctxt::Ctxt;

/// How the keys argument holds its keys.
enum Held {
    /// `Vec<K>`: the body gets a `Vec<K>` of the missing keys.
    Owned,
    /// `&[K]`: the body gets a slice of them.
    Slice,
}

/// The one cache: a name, or a typed cache (`crate::typed`).
enum Cache {
    Named(syn::LitStr),
    Typed(syn::Path),
}

/// The keys argument: its pattern, its key type and how it holds the keys.
struct KeysArg {
    pat: Pat,
    ident: syn::Ident,
    key: Type,
    held: Held,
}

/// Entry point of `#[cacheable_many]`.
pub(crate) fn expand_attr(args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let e = syn::Error::new_spanned(
                &item,
                "`#[cacheable_many]` applies to `async fn`s with a body",
            )
            .into_compile_error();
            return quote!(#e #item);
        }
    };
    match expand(args, &func) {
        Ok(tokens) => tokens,
        Err(e) => {
            let e = e.into_compile_error();
            quote!(#e #func)
        }
    }
}

fn expand(args: TokenStream, func: &ItemFn) -> syn::Result<TokenStream> {
    let args: Args = syn::parse2(args)?;
    let mut cx = Ctxt::default();
    let opts = Attr::new(Macro::CacheableMany, args.options, &mut cx);
    let typed = args.typed.clone();
    if let (Some(name), Some(_)) = (args.names.first(), typed.first()) {
        cx.spanned(
            name,
            "`#[cacheable_many]` stores into one cache: name only one",
        );
    }
    if let Some(second) = typed.get(1) {
        cx.spanned(
            second,
            "`#[cacheable_many]` stores into one cache: name only one",
        );
    }
    match args.names.as_slice() {
        [] if !typed.is_empty() => {}
        [] => cx.at(
            Span::call_site(),
            "`#[cacheable_many]` needs the cache's name first, as in `#[cacheable_many(\"users\")]`",
        ),
        [_] => {}
        [_, second, ..] => cx.spanned(
            second,
            "`#[cacheable_many]` stores into one cache: name only one",
        ),
    }
    if func.sig.asyncness.is_none() {
        cx.spanned(
            func.sig.fn_token,
            "`#[cacheable_many]` applies to `async fn`s: the missing keys are loaded in one call",
        );
    }
    let krate: syn::Path = match opts.str("crate") {
        Some(lit) => lit.parse().unwrap_or_else(|_| {
            cx.at(
                lit.span(),
                format!(
                    "`crate = \"{}\"` is not a path; write the path to cachet, as in `crate = \"::cachet\"`",
                    lit.value()
                ),
            );
            syn::parse_quote!(::cachet)
        }),
        None => syn::parse_quote!(::cachet),
    };
    let skipped: Vec<String> = opts
        .idents("skip")
        .map(|(_, ids)| ids.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    let keys = keys_arg(func, &skipped, &mut cx);
    let mut settings = Vec::new();
    for (name, setting, lit) in opts.settings() {
        if let Some(value) = setting.parse(name, lit, &mut cx) {
            settings.push((name, value));
        }
    }
    let cache = match (args.names.first(), typed.first()) {
        (Some(name), _) => Some(Cache::Named(name.clone())),
        (None, Some(path)) => Some(Cache::Typed(path.clone())),
        (None, None) => None,
    };
    cx.check()?;
    let (Some(keys), Some(cache)) = (keys, cache) else {
        // Reported above: `cx.check` returned the error.
        return Err(syn::Error::new(
            Span::call_site(),
            "invalid `#[cacheable_many]`",
        ));
    };
    Ok(generate(func, &krate, &cache, &keys, &settings))
}

/// The one argument holding the keys: every argument but it is in `skip(..)`.
fn keys_arg(func: &ItemFn, skipped: &[String], cx: &mut Ctxt) -> Option<KeysArg> {
    for name in skipped {
        let exists = func.sig.inputs.iter().any(|arg| match arg {
            FnArg::Typed(t) => matches!(&*t.pat, Pat::Ident(p) if p.ident == name.as_str()),
            FnArg::Receiver(_) => name == "self",
        });
        if !exists {
            cx.at(
                Span::call_site(),
                format!(
                    "`skip({name})`: `{}` has no argument `{name}`",
                    func.sig.ident
                ),
            );
        }
    }
    let candidates: Vec<&syn::PatType> = func
        .sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(t) => Some(t),
            FnArg::Receiver(_) => None,
        })
        .filter(|t| !matches!(&*t.pat, Pat::Ident(p) if skipped.contains(&p.ident.to_string())))
        .collect();
    let [arg] = candidates.as_slice() else {
        let message = "`#[cacheable_many]` needs exactly one argument holding the keys, a \
                       `Vec<K>` or a `&[K]`; leave the others out with `skip(..)`";
        match candidates.get(1) {
            Some(extra) => cx.spanned(extra, message),
            None => cx.spanned(&func.sig.inputs, message),
        }
        return None;
    };
    let Pat::Ident(pat_ident) = &*arg.pat else {
        cx.spanned(
            &arg.pat,
            "the keys argument of `#[cacheable_many]` must be a plain name, as in `ids: Vec<u64>`",
        );
        return None;
    };
    let Some((key, held)) = key_type(&arg.ty) else {
        cx.spanned(
            &arg.ty,
            "the keys argument of `#[cacheable_many]` must be a `Vec<K>` or a `&[K]` of keys",
        );
        return None;
    };
    Some(KeysArg {
        pat: (*arg.pat).clone(),
        ident: pat_ident.ident.clone(),
        key,
        held,
    })
}

/// `K` of `Vec<K>` or `&[K]`.
fn key_type(ty: &Type) -> Option<(Type, Held)> {
    match ty {
        Type::Reference(r) if r.mutability.is_none() => match &*r.elem {
            Type::Slice(s) => Some(((*s.elem).clone(), Held::Slice)),
            _ => None,
        },
        Type::Path(tp) if tp.qself.is_none() => {
            let last = tp.path.segments.last()?;
            if last.ident != "Vec" {
                return None;
            }
            match &last.arguments {
                PathArguments::AngleBracketed(a) if a.args.len() == 1 => match a.args.first()? {
                    GenericArgument::Type(k) => Some((k.clone(), Held::Owned)),
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}

fn generate(
    func: &ItemFn,
    krate: &syn::Path,
    cache: &Cache,
    keys: &KeysArg,
    settings: &[(&str, SettingValue)],
) -> TokenStream {
    let p = quote!(#krate::__private);
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let ret = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    };
    let ret_span = match &sig.output {
        ReturnType::Default => sig.ident.span(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    let name = sig.ident.to_string().trim_start_matches("r#").to_owned();
    let value_type = value_type(&sig.output);
    let line = quote_spanned!(sig.ident.span()=> ::core::line!());
    let settings = crate::expand::setters(settings);
    let (pat, ident, key) = (&keys.pat, &keys.ident, &keys.key);
    let key_shown = tidy(&key.to_token_stream().to_string());
    let (caches, typed, checks) = match cache {
        Cache::Named(name) => (quote!(&[#name]), TokenStream::new(), TokenStream::new()),
        Cache::Typed(path) => {
            let typed = crate::typed::Typed {
                paths: std::slice::from_ref(path),
                p: &p,
                function: &name,
            };
            let (caches, with) = typed.operation();
            (caches, with, typed.many_checks(key, &ret, ret_span))
        }
    };
    let rebind = match keys.held {
        Held::Owned => quote!(),
        Held::Slice => quote!(let #ident: &[#key] = &#ident[..];),
    };
    let out = syn::Ident::new("__cachet_out", Span::mixed_site());
    let all = syn::Ident::new("__cachet_keys", Span::mixed_site());
    // Spanned at the return type: a result that is not a map or list of this key type's
    // entries is reported there.
    let entry = respan(quote!(#p::cacheable_many), ret_span);
    let call = quote_spanned! {ret_span=>
        #entry(&__CACHET_OP, #all, move |#pat: ::std::vec::Vec<#key>| async move {
            #rebind
            #[allow(clippy::diverging_sub_expression)]
            let #out: #ret = #block;
            #[allow(unreachable_code)]
            #out
        })
        .await
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            static __CACHET_OP: #p::Operation = #p::Operation::new(
                #p::OperationKind::CacheableMany,
                #caches,
                #name,
                ::core::module_path!(),
                ::core::file!(),
                #line,
                #value_type,
            )
            .with_options(#p::CacheOptions::new() #settings)
            .with_key_type(#key_shown)
            #typed;
            #checks
            #p::inventory::submit! { #p::Declaration(&__CACHET_OP) }
            let #all: &[#key] = &#ident[..];
            #call
        }
    }
}

/// `tokens` (a path: no groups) placed at `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            token.set_span(span);
            token
        })
        .collect()
}

/// `V` of a `HashMap<K, V>` or `Vec<(K, V)>` result (in a `Result` or not), as written: a
/// label for the inventory and the mixed-types warning, which compare it with the single
/// operations' value types. The whole type when it is not one of those.
fn value_type(output: &ReturnType) -> String {
    let ReturnType::Type(_, ty) = output else {
        return "()".into();
    };
    let args_of = |ty: &Type, name: &str| -> Option<Vec<GenericArgument>> {
        let Type::Path(tp) = ty else { return None };
        let last = tp.path.segments.last()?;
        if last.ident != name {
            return None;
        }
        match &last.arguments {
            PathArguments::AngleBracketed(a) => Some(a.args.iter().cloned().collect()),
            _ => None,
        }
    };
    let inner = match args_of(ty, "Result").as_deref() {
        Some([GenericArgument::Type(ok), ..]) => ok.clone(),
        _ => (**ty).clone(),
    };
    let value = match (
        args_of(&inner, "HashMap").as_deref(),
        args_of(&inner, "Vec").as_deref(),
    ) {
        (Some([_, GenericArgument::Type(v), ..]), _) => Some(v.to_token_stream()),
        (_, Some([GenericArgument::Type(Type::Tuple(t))])) if t.elems.len() == 2 => {
            t.elems.last().map(ToTokens::to_token_stream)
        }
        _ => None,
    };
    tidy(&value.unwrap_or_else(|| ty.to_token_stream()).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn value_types_are_the_cached_values() {
        let t = |o: ReturnType| value_type(&o);
        assert_eq!(t(parse_quote!(-> Result<HashMap<u64, User>, E>)), "User");
        assert_eq!(
            t(parse_quote!(-> std::collections::HashMap<u64, Vec<u8>>)),
            "Vec<u8>"
        );
        assert_eq!(t(parse_quote!(-> Vec<(u64, User)>)), "User");
        assert_eq!(t(parse_quote!(-> Other<u8>)), "Other<u8>");
    }

    #[test]
    fn keys_are_a_vec_or_a_slice() {
        assert!(matches!(
            key_type(&parse_quote!(Vec<u64>)),
            Some((_, Held::Owned))
        ));
        assert!(matches!(
            key_type(&parse_quote!(&[String])),
            Some((_, Held::Slice))
        ));
        assert!(key_type(&parse_quote!(&mut [u64])).is_none());
        assert!(key_type(&parse_quote!(HashSet<u64>)).is_none());
    }

    #[test]
    fn misuse_is_reported() {
        let out = expand_attr(
            quote!(),
            quote!(
                async fn f(ids: Vec<u64>) -> Vec<(u64, u8)> {
                    vec![]
                }
            ),
        )
        .to_string();
        assert!(out.contains("needs the cache's name"), "{out}");
        let out = expand_attr(
            quote!("a"),
            quote!(
                fn f(ids: Vec<u64>) -> Vec<(u64, u8)> {
                    vec![]
                }
            ),
        )
        .to_string();
        assert!(out.contains("applies to `async fn`s"), "{out}");
        let out = expand_attr(
            quote!("a"),
            quote!(
                async fn f(db: &Db, ids: Vec<u64>) -> Vec<(u64, u8)> {
                    vec![]
                }
            ),
        )
        .to_string();
        assert!(out.contains("exactly one argument"), "{out}");
        let out = expand_attr(
            quote!("a", skip(db)),
            quote!(
                async fn f(db: &Db, ids: Vec<u64>) -> Vec<(u64, u8)> {
                    vec![]
                }
            ),
        )
        .to_string();
        assert!(!out.contains("compile_error"), "{out}");
    }
}
