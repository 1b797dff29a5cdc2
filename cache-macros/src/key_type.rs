//! The key type of an annotation as its signature shows it, for the inventory and the
//! startup check of string-named caches (`cachet::inventory::find_conflict`): the default
//! key's argument types, or those of a `key = arg` / `key = (a, b)` over arguments; empty
//! when the key is another expression (it is then not compared).

use crate::type_text::tidy;
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Expr, Ident, Signature, Type};

use crate::internals::ast::{Action, EvictTarget, KeySource, KeySpec};
use crate::internals::scan::mentions;
use crate::internals::sig::fn_args;

/// The key type of `action` over `sig`, as written (references dropped: `&str` → `str`).
/// `impl_generics`: the type parameters of the method's `impl` block, when known.
pub(crate) fn key_type(action: &Action, sig: &Signature, impl_generics: &[Ident]) -> String {
    let spec = match action {
        Action::Cacheable { key, .. }
        | Action::Put {
            key: KeySource::Args(key),
            ..
        }
        | Action::Evict(EvictTarget::Before(key))
        | Action::Evict(EvictTarget::After(KeySource::Args(key))) => key,
        Action::Put {
            key: KeySource::Result(_),
            ..
        }
        | Action::Evict(EvictTarget::After(KeySource::Result(_)))
        | Action::Evict(EvictTarget::AllEntries { .. }) => return String::new(),
    };
    // A generic or `impl Trait` key has no one type to compare: unknown.
    let type_of = |name: &str| {
        fn_args(sig)
            .find(|(ident, _)| ident.is_some_and(|i| i == name))
            .filter(|(_, pt)| !is_generic(pt.ty.to_token_stream(), sig, impl_generics))
            .map(|(_, pt)| shown(&pt.ty))
    };
    let parts: Option<Vec<String>> = match spec {
        KeySpec::Args(args) => args.iter().map(|a| type_of(&a.ident.to_string())).collect(),
        KeySpec::Expr(Expr::Path(p)) => p
            .path
            .get_ident()
            .and_then(|i| type_of(&i.to_string()))
            .map(|t| vec![t]),
        KeySpec::Expr(Expr::Tuple(t)) => t
            .elems
            .iter()
            .map(|e| match e {
                Expr::Path(p) => p.path.get_ident().and_then(|i| type_of(&i.to_string())),
                _ => None,
            })
            .collect(),
        KeySpec::Expr(_) => None,
    };
    match parts.as_deref() {
        None => String::new(),
        Some([]) => "()".into(),
        Some([one]) => one.clone(),
        Some(many) => format!("({})", many.join(", ")),
    }
}

/// Whether `tokens` (a type) name one of `sig`'s or `outer`'s type parameters or an `impl
/// Trait`.
fn is_generic(tokens: TokenStream, sig: &Signature, outer: &[Ident]) -> bool {
    mentions(tokens, &|ident| {
        ident == "impl"
            || sig.generics.type_params().any(|p| p.ident == *ident)
            || outer.contains(ident)
    })
}

/// A type as written, without an outer reference.
fn shown(ty: &Type) -> String {
    let ty = match ty {
        Type::Reference(r) => &*r.elem,
        other => other,
    };
    tidy(&ty.to_token_stream().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internals::ast::Plan;
    use crate::internals::attr::{Args, Macro};
    use syn::parse_quote;

    fn of(kind: Macro, args: &str, sig: Signature) -> String {
        in_impl(kind, args, sig, &[])
    }

    fn in_impl(kind: Macro, args: &str, sig: Signature, impl_generics: &[Ident]) -> String {
        let args: Args = syn::parse_str(args).expect("args");
        let plan = Plan::new(kind, args, &sig, &proc_macro2::TokenStream::new())
            .map_err(|e| e.to_string())
            .expect("plan");
        key_type(&plan.action, &sig, impl_generics)
    }

    #[test]
    fn key_types_from_the_signature() {
        let sig: Signature = parse_quote!(fn f(&self, db: &Db, id: u64, name: &str) -> u8);
        assert_eq!(
            of(Macro::Cacheable, r#""a", skip(db)"#, sig.clone()),
            "(u64, str)"
        );
        assert_eq!(of(Macro::Cacheable, r#""a", key = id"#, sig.clone()), "u64");
        assert_eq!(
            of(Macro::Cacheable, r#""a", key = (name, id)"#, sig.clone()),
            "(str, u64)"
        );
        assert_eq!(
            of(Macro::Cacheable, r#""a", key = id + 1"#, sig.clone()),
            ""
        );
        assert_eq!(of(Macro::Put, r#""a", key = result"#, sig.clone()), "");
        assert_eq!(of(Macro::Evict, r#""a", all_entries"#, sig.clone()), "");
        let none: Signature = parse_quote!(fn f() -> u8);
        assert_eq!(of(Macro::Cacheable, r#""a""#, none), "()");
        // A generic key has no one type: unknown, not compared.
        let generic: Signature = parse_quote!(fn f<K: Serialize>(id: &K, n: Vec<impl Ord>) -> u8);
        assert_eq!(
            of(Macro::Cacheable, r#""a", key = id"#, generic.clone()),
            ""
        );
        assert_eq!(of(Macro::Cacheable, r#""a", key = n"#, generic), "");
        // So has a key of the `impl` block's type parameter, when the block is known.
        let method: Signature = parse_quote!(fn f(&self, id: &K, n: u64) -> u8);
        let k: Ident = parse_quote!(K);
        assert_eq!(
            in_impl(
                Macro::Cacheable,
                r#""a""#,
                method.clone(),
                std::slice::from_ref(&k)
            ),
            ""
        );
        assert_eq!(
            in_impl(Macro::Cacheable, r#""a", key = n"#, method.clone(), &[k]),
            "u64"
        );
        assert_eq!(of(Macro::Cacheable, r#""a""#, method), "(K, u64)");
    }
}
