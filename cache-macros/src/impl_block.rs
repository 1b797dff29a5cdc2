//! `#[cacheable]` on an `impl` block: every method that can be cached is, with the block's
//! cache names and options (Spring's `@Cacheable` on a class).
//!
//! Left as written (a documented skip, not an error): methods without a `self` receiver
//! (constructors and other associated functions), `&mut self` methods (they change the
//! value they would be cached for), methods returning nothing (`()`), a reference or
//! `impl Trait`, `const fn`s, and methods carrying a cachet attribute of their own (which
//! wins). Options that differ per method by nature (`key`, `key_generator`, `skip`,
//! `condition`, `unless`, `ttl_from`) are refused on the block: they belong on a method.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, ReturnType, Type};

use crate::function::{self, cachet_kind};
use crate::internals::ast::Func;
use crate::internals::attr::{Args, Macro};
use crate::internals::ctxt::Ctxt;

/// The options refused on an impl block: they depend on a method's arguments or value.
const PER_METHOD: &[&str] = &[
    "key",
    "key_generator",
    "skip",
    "condition",
    "unless",
    "ttl_from",
];

/// Entry point of `#[cacheable]` on an `impl` block. On error: the errors and the block
/// unchanged.
pub(crate) fn expand_impl(args: TokenStream, imp: ItemImpl) -> TokenStream {
    match expand(args, imp.clone()) {
        Ok(tokens) => tokens,
        Err(e) => {
            let e = e.into_compile_error();
            quote!(#e #imp)
        }
    }
}

fn expand(args: TokenStream, mut imp: ItemImpl) -> syn::Result<TokenStream> {
    let parsed: Args = syn::parse2(args.clone())?;
    let mut cx = Ctxt::default();
    for opt in &parsed.options {
        let name = opt.name();
        if PER_METHOD.contains(&name.as_str()) {
            cx.at(
                opt.span(),
                format!(
                    "`{name}` cannot be used in `#[cacheable]` on an `impl` block: its methods \
                     take different arguments and return different values; annotate the \
                     method itself with `#[cacheable(.., {name} = ..)]`"
                ),
            );
        }
    }
    cx.check()?;
    for item in &mut imp.items {
        let ImplItem::Fn(method) = item else { continue };
        if !cacheable(method) {
            continue;
        }
        let mut func = Func::from(syn::ItemFn {
            attrs: method.attrs.clone(),
            vis: method.vis.clone(),
            sig: method.sig.clone(),
            block: Box::new(method.block.clone()),
        });
        func.impl_generics = imp
            .generics
            .type_params()
            .map(|p| p.ident.clone())
            .collect();
        let expanded = function::expand(
            Macro::Cacheable,
            args.clone(),
            &func,
            &[],
            &TokenStream::new(),
        )?;
        let mut new: ImplItemFn = syn::parse2(expanded)?;
        new.defaultness = method.defaultness;
        *method = new;
    }
    Ok(imp.into_token_stream())
}

/// Whether the block's `#[cacheable]` applies to `method` (see the module's docs).
fn cacheable(method: &ImplItemFn) -> bool {
    let sig = &method.sig;
    let receiver = match sig.inputs.first() {
        Some(FnArg::Receiver(r)) => r,
        _ => return false,
    };
    // `&mut self`, `mut self`, `self: &mut Self`.
    let mutable = receiver.mutability.is_some()
        || matches!(&*receiver.ty, Type::Reference(r) if r.mutability.is_some());
    let returns_value = match &sig.output {
        ReturnType::Default => false,
        ReturnType::Type(_, ty) => match &**ty {
            Type::Tuple(t) => !t.elems.is_empty(),
            Type::Reference(_) | Type::ImplTrait(_) => false,
            _ => true,
        },
    };
    let annotated = method.attrs.iter().any(|a| cachet_kind(a).is_some());
    !mutable && returns_value && sig.constness.is_none() && !annotated
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn caches_the_methods_that_can_be_and_skips_the_others() {
        let imp: ItemImpl = parse_quote! {
            impl Repo {
                fn new() -> Self { Repo }
                fn find(&self, id: u64) -> Option<u64> { Some(id) }
                async fn count(&self) -> u64 { 1 }
                fn set(&mut self, id: u64) -> u64 { id }
                fn log(&self, id: u64) { let _ = id; }
                fn unit(&self) -> () {}
                fn name(&self) -> &str { "r" }
                #[cache_evict("other")]
                fn drop_all(&self) -> u64 { 0 }
            }
        };
        let out = expand_impl(quote!("repo", ttl = "1m"), imp).to_string();
        assert!(!out.contains("compile_error"), "{out}");
        assert_eq!(
            out.matches("OperationKind :: Cacheable").count(),
            2,
            "{out}"
        );
        assert!(out.contains("# [cache_evict (\"other\")]"), "{out}");
    }

    #[test]
    fn per_method_options_are_refused_on_the_block() {
        let imp: ItemImpl = parse_quote!(impl Repo {});
        let out = expand_impl(quote!("repo", key = id, skip(db)), imp).to_string();
        assert_eq!(out.matches("compile_error").count(), 2, "{out}");
        assert!(out.ends_with("impl Repo { }"), "{out}");
    }
}
