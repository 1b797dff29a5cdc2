//! `cachet::caches! { .. }`: typed cache declarations, one `static` each (a
//! `TypedCache<K, V>`), registered with `inventory` so building a manager checks they resolve
//! and the inventory lists them.
//!
//! ```text
//! /// Users by id.
//! pub USERS: u64 => User = "users";
//! pub ORDERS: (u64, String) => Order = "orders", ttl = "5m", tags = ["orders"];
//! ```
//!
//! Options after the name come from the one option table (`internals::attr`, rows marked
//! `Caches`), parsed and checked as an annotation's are.

use crate::type_text::tidy;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Attribute, Ident, LitStr, Path, Token, Type, Visibility};

use crate::expand::setters;
use crate::internals::attr::{Attr, Macro, Written};
use crate::internals::check;
use crate::internals::ctxt::Ctxt;

/// One declaration, as written.
struct Declaration {
    attrs: Vec<Attribute>,
    vis: Visibility,
    ident: Ident,
    key: Type,
    value: Type,
    name: LitStr,
    options: Vec<Written>,
}

/// Every declaration of one `caches!`.
struct Declarations(Vec<Declaration>);

impl Parse for Declarations {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut all = Vec::new();
        while !input.is_empty() {
            all.push(input.parse()?);
        }
        Ok(Declarations(all))
    }
}

impl Parse for Declaration {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let ident: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        let key: Type = input.parse()?;
        if !input.peek(Token![=>]) {
            return Err(input.error(
                "expected `=>` and the value type after the key type, as in \
                 `pub USERS: u64 => User = \"users\";`",
            ));
        }
        input.parse::<Token![=>]>()?;
        let value: Type = input.parse()?;
        if !input.peek(Token![=]) {
            return Err(input.error(
                "expected `=` and the cache's name after the value type, as in \
                 `pub USERS: u64 => User = \"users\";`",
            ));
        }
        input.parse::<Token![=]>()?;
        let name: LitStr = input.parse()?;
        let mut options = Vec::new();
        while input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
            if input.peek(Token![;]) {
                break;
            }
            options.push(input.parse()?);
        }
        input.parse::<Token![;]>()?;
        Ok(Declaration {
            attrs,
            vis,
            ident,
            key,
            value,
            name,
            options,
        })
    }
}

/// Entry point of `caches!`.
pub(crate) fn expand_caches(input: TokenStream) -> TokenStream {
    match syn::parse2::<Declarations>(input).and_then(expand) {
        Ok(tokens) => tokens,
        Err(e) => e.into_compile_error(),
    }
}

fn expand(declarations: Declarations) -> syn::Result<TokenStream> {
    let mut cx = Ctxt::default();
    let mut out = TokenStream::new();
    let mut seen: Vec<(String, Ident)> = Vec::new();
    for d in declarations.0 {
        let name = d.name.value();
        if let Err(message) = check::validate_name(&name) {
            cx.at(d.name.span(), message);
        }
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            cx.at(
                d.name.span(),
                format!(
                    "cache `{name}` is already declared, as `{first}`: one declaration per cache"
                ),
            );
        }
        seen.push((name, d.ident.clone()));
        if let Some(tokens) = declaration(d, &mut cx) {
            out.extend(tokens);
        }
    }
    cx.check()?;
    Ok(out)
}

/// One declaration's `static` and registration (`None` when an option is invalid: reported).
fn declaration(d: Declaration, cx: &mut Ctxt) -> Option<TokenStream> {
    let opts = Attr::new(Macro::Caches, d.options, cx);
    let krate: Path = match opts.str("crate") {
        Some(lit) => match lit.parse() {
            Ok(path) => path,
            Err(_) => {
                cx.at(lit.span(), "`crate = \"..\"` is not a path to cachet");
                return None;
            }
        },
        None => syn::parse_quote!(::cachet),
    };
    let mut settings = Vec::new();
    for (name, setting, lit) in opts.settings() {
        settings.push((name, setting.parse(name, lit, cx)?));
    }
    let tags = match opts.strs("tags") {
        Some((span, tags)) => {
            check::tags(span, tags, cx);
            tags.to_vec()
        }
        None => Vec::new(),
    };
    let Declaration {
        attrs,
        vis,
        ident,
        key,
        value,
        name,
        ..
    } = d;
    let p = quote!(#krate::__private);
    let doc = attrs
        .iter()
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) if nv.path.is_ident("doc") => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let shown = |t: &Type| tidy(&t.to_token_stream().to_string());
    let (key_shown, value_shown) = (shown(&key), shown(&value));
    let ident_shown = ident.to_string();
    let line = quote_spanned!(ident.span()=> ::core::line!());
    let settings = setters(&settings);
    // The key and value types must be usable as a cache's: checked here, at the types,
    // rather than at each use.
    let key_check = quote_spanned!(key.span()=> #p::assert_typed_key::<#key>);
    let value_check = quote_spanned!(value.span()=> #p::assert_typed_value::<#value>);
    Some(quote! {
        #(#attrs)*
        #vis static #ident: #p::TypedCache<#key, #value> = #p::TypedCache::new(
            #p::CacheDeclaration::new(
                #name,
                #ident_shown,
                ::core::module_path!(),
                ::core::file!(),
                #line,
                #key_shown,
                #value_shown,
            )
            .with_doc(#doc)
            .with_options(#p::CacheOptions::new() #settings)
            .with_tags(&[#(#tags),*]),
        );
        const _: () = {
            #[allow(dead_code)]
            fn __cachet_types() {
                #key_check();
                #value_check();
            }
            #p::inventory::submit! {
                #p::TypedDeclaration(#p::TypedCache::declaration(&#ident))
            }
        };
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(input: TokenStream) -> Vec<String> {
        match syn::parse2::<Declarations>(input).and_then(expand) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn declarations_expand_to_statics() -> syn::Result<()> {
        let out = expand(syn::parse2(quote! {
            /// Users.
            pub USERS: u64 => User = "users";
            ORDERS: (u64, String) => Vec<Order> = "orders", ttl = "5m", tags = ["o"],;
        })?)?
        .to_string();
        assert!(out.contains("pub static USERS"), "{out}");
        assert!(out.contains("static ORDERS"), "{out}");
        assert!(out.contains("\"(u64, String)\""), "{out}");
        assert!(out.contains("\"Vec<Order>\""), "{out}");
        assert!(out.contains("from_millis (300000u64)"), "{out}");
        Ok(())
    }

    #[test]
    fn misuse_is_reported() {
        let e = errors(quote! {
            pub A: u64 => u8 = "a b", bogus = 1, ttl = "soon";
            pub B: u64 => u8 = "c";
            pub C: u64 => u8 = "c";
        });
        assert_eq!(e.len(), 4, "{e:#?}");
        assert!(e[0].starts_with("cache name `a b` contains ' '"), "{e:?}");
        assert!(
            e[1].starts_with("unknown option `bogus` of a declaration of `cachet::caches!`"),
            "{e:?}"
        );
        assert!(e[2].starts_with("invalid `ttl` \"soon\""), "{e:?}");
        assert!(
            e[3].starts_with("cache `c` is already declared, as `B`"),
            "{e:?}"
        );
        let e = errors(quote!(pub A: u64 = "a";));
        assert!(e[0].starts_with("expected `=>`"), "{e:?}");
    }
}
