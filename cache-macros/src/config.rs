//! `#[cache_config]`: default cache names (and `crate`) for the cachet attributes of the
//! methods of an `impl` block, inserted into those attributes before they expand.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote;
use syn::{ImplItem, ItemImpl, LitStr, Meta};

use crate::function::cachet_kind;
use crate::internals::attr::{Args, Attr, Macro};
use crate::internals::check;
use crate::internals::ctxt::Ctxt;

/// What `#[cache_config]` gives the methods.
struct Defaults {
    names: Vec<LitStr>,
    krate: Option<LitStr>,
}

/// Entry point of `#[cache_config]`.
pub(crate) fn expand_config(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args, item.clone()) {
        Ok(tokens) => tokens,
        Err(e) => {
            let e = e.into_compile_error();
            quote!(#e #item)
        }
    }
}

/// Invalid options are reported with the impl block still rewritten with the valid ones,
/// so its methods do not report a missing name on top.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args: Args = syn::parse2(args)?;
    let mut imp: ItemImpl = syn::parse2(item.clone()).map_err(|_| {
        syn::Error::new_spanned(
            &item,
            "`#[cache_config]` applies to `impl` blocks; it gives their methods' cachet \
             attributes a default cache name",
        )
    })?;
    let mut cx = Ctxt::default();
    let defaults = defaults(args, &mut cx);
    if !defaults.names.is_empty() || defaults.krate.is_some() {
        // A `#[cacheable]` on the block itself (under this attribute) gets them too.
        for attr in &mut imp.attrs {
            if cachet_kind(attr).is_some() {
                apply(&defaults, &mut attr.meta);
            }
        }
        for item in &mut imp.items {
            if let ImplItem::Fn(f) = item {
                for attr in &mut f.attrs {
                    if cachet_kind(attr).is_some() {
                        apply(&defaults, &mut attr.meta);
                    }
                }
            }
        }
    }
    let errors = cx.check().err().map(syn::Error::into_compile_error);
    Ok(quote!(#errors #imp))
}

/// The valid defaults; the invalid ones are reported.
fn defaults(args: Args, cx: &mut Ctxt) -> Defaults {
    for name in &args.names {
        cx.at(
            name.span(),
            "`#[cache_config]` takes `cache = \"name\"`, not a bare cache name",
        );
    }
    let opts = Attr::new(Macro::Config, args.options, cx);
    let names = opts.strs("cache").map(|(span, list)| {
        if list.is_empty() {
            cx.at(span, "`cache = []` names no cache");
        }
        check::names(list, cx)
    });
    let krate = opts.str("crate").cloned();
    if names.is_none() && krate.is_none() {
        cx.at(
            Span::call_site(),
            "`#[cache_config]` needs a default cache name, as in \
             `#[cache_config(cache = \"users\")]`",
        );
    }
    Defaults {
        names: names.unwrap_or_default(),
        krate,
    }
}

/// Adds the default names to an attribute that has none, and `crate` to one without it.
/// Attributes that do not parse are left alone: their own expansion reports why.
fn apply(defaults: &Defaults, meta: &mut Meta) {
    let (path, tokens) = match meta {
        Meta::Path(path) => (path.clone(), TokenStream::new()),
        Meta::List(list) => (list.path.clone(), list.tokens.clone()),
        Meta::NameValue(_) => return,
    };
    let Ok(args) = syn::parse2::<Args>(tokens.clone()) else {
        return;
    };
    let mut parts = Vec::new();
    if args.names.is_empty() && args.typed.is_empty() {
        parts.extend(defaults.names.iter().map(|n| quote!(#n)));
    }
    let rest = strip_trailing_comma(tokens);
    if !rest.is_empty() {
        parts.push(rest);
    }
    let has_crate = args.options.iter().any(|o| o.name() == "crate");
    if let (Some(krate), false) = (&defaults.krate, has_crate) {
        parts.push(quote!(crate = #krate));
    }
    *meta = syn::parse_quote!(#path(#(#parts),*));
}

fn strip_trailing_comma(tokens: TokenStream) -> TokenStream {
    let mut trees: Vec<TokenTree> = tokens.into_iter().collect();
    if matches!(trees.last(), Some(TokenTree::Punct(p)) if p.as_char() == ',') {
        trees.pop();
    }
    trees.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs_of(tokens: TokenStream) -> Vec<String> {
        let imp: ItemImpl = match syn::parse2(tokens) {
            Ok(imp) => imp,
            Err(e) => panic!("{e}"),
        };
        imp.items
            .iter()
            .filter_map(|i| match i {
                ImplItem::Fn(f) => f.attrs.first().map(|a| quote!(#a).to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn inserts_default_names_and_crate() -> syn::Result<()> {
        let out = expand(
            quote!(cache = ["a", "b"], crate = "x"),
            quote! {
                impl S {
                    #[cacheable] fn f(&self) {}
                    #[cachet::cache_put(key = 1,)] fn g(&self) {}
                    #[cache_evict("own", crate = "y")] fn h(&self) {}
                    #[inline] fn i(&self) {}
                }
            },
        )?;
        let attrs = attrs_of(out);
        assert_eq!(
            attrs,
            [
                r#"# [cacheable ("a" , "b" , crate = "x")]"#,
                r#"# [cachet :: cache_put ("a" , "b" , key = 1 , crate = "x")]"#,
                r#"# [cache_evict ("own" , crate = "y")]"#,
                "# [inline]",
            ]
        );
        Ok(())
    }

    #[test]
    fn errors() {
        let errs = |args: TokenStream| -> Vec<String> {
            let mut cx = Ctxt::default();
            let args = syn::parse2(args).map(|args| defaults(args, &mut cx));
            assert!(args.is_ok());
            match cx.check() {
                Ok(()) => Vec::new(),
                Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
            }
        };
        assert_eq!(
            errs(quote!(cache = "a:b", cache = "c", other = 1)),
            [
                "duplicate option `cache`",
                "unknown option `other` of `#[cache_config]`; expected one of: `cache`, `crate`",
                "cache name `a:b` contains ':'; names must not contain whitespace or any of `: # * ? [ ] \\`",
            ]
        );
        assert_eq!(errs(quote!()).len(), 1);
        assert_eq!(
            errs(quote!("users")),
            ["`#[cache_config]` takes `cache = \"name\"`, not a bare cache name", "`#[cache_config]` needs a default cache name, as in `#[cache_config(cache = \"users\")]`"]
        );
        assert!(expand(
            quote!(cache = "a"),
            quote!(
                fn f() {}
            )
        )
        .is_err());
    }
}
