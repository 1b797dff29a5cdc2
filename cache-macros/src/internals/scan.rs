//! The one token scanner: walks tokens into every group and finds identifiers. Where an
//! expression uses a variable ([`find_var`]: so uses inside macro calls count), skipping
//! field accesses and path segments (`x.result`, `std::result`), which are not variables;
//! whether a type mentions a name anywhere ([`mentions`]: a type parameter, `impl`).

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Expr, Ident};

/// The first identifier of `tokens` (groups included) for which `visit` says something;
/// `visit` also learns whether the identifier follows a `.` or a `:` (a field or a path
/// segment).
fn walk<T>(tokens: TokenStream, visit: &mut dyn FnMut(&Ident, bool) -> Option<T>) -> Option<T> {
    let mut after_dot_or_colon = false;
    for tt in tokens {
        let found = match &tt {
            TokenTree::Ident(i) => visit(i, after_dot_or_colon),
            TokenTree::Group(g) => walk(g.stream(), visit),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
        after_dot_or_colon =
            matches!(&tt, TokenTree::Punct(p) if p.as_char() == '.' || p.as_char() == ':');
    }
    None
}

/// The first identifier of `expr` used as a variable that `wanted` accepts.
pub(crate) fn find_var(expr: &Expr, wanted: &dyn Fn(&Ident) -> bool) -> Option<Ident> {
    walk(expr.to_token_stream(), &mut |i, after_dot_or_colon| {
        (!after_dot_or_colon && wanted(i)).then(|| i.clone())
    })
}

/// Whether any identifier of `tokens` (a type: path segments count) is one `wanted`
/// accepts.
pub(crate) fn mentions(tokens: TokenStream, wanted: &dyn Fn(&Ident) -> bool) -> bool {
    walk(tokens, &mut |i, _| wanted(i).then_some(())).is_some()
}

/// Where an expression uses `result` (the function's value), if it does.
pub(crate) fn find_result(expr: &Expr) -> Option<proc_macro2::Span> {
    find_var(expr, &|i| i == "result").map(|i| i.span())
}

/// The first of `names` used as a variable in `expr`.
pub(crate) fn find_ident(expr: &Expr, names: &[&Ident]) -> Option<Ident> {
    find_var(expr, &|i| names.contains(&i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn finds_variables_not_fields_or_paths() {
        let at = |e: Expr| find_result(&e).is_some();
        assert!(at(parse_quote!(result.id)));
        assert!(at(parse_quote!((tenant, result.id))));
        assert!(at(parse_quote!(format!("{}", result))));
        assert!(!at(parse_quote!(x.result)));
        assert!(!at(parse_quote!(std::result::Result::Ok(1))));
        let limit: Ident = parse_quote!(limit);
        let names = [&limit];
        assert!(find_ident(&parse_quote!(*result > limit), &names).is_some());
        assert!(find_ident(&parse_quote!(result.limit), &names).is_none());
    }

    #[test]
    fn mentions_finds_names_anywhere_in_a_type() {
        let t = |ty: syn::Type| mentions(ty.to_token_stream(), &|i| i == "T");
        assert!(t(parse_quote!(T)));
        assert!(t(parse_quote!(Vec<(u8, T)>)));
        assert!(t(parse_quote!(<T as Tr>::Out)));
        assert!(t(parse_quote!(T::Out)));
        assert!(!t(parse_quote!(Vec<u8>)));
    }
}
