//! The one token scanner: where an expression uses a variable, found in its tokens (so uses
//! inside macro calls count), skipping field accesses and path segments (`x.result`,
//! `std::result`), which are not variables.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Expr, Ident};

/// The first identifier of `expr` used as a variable that `wanted` accepts.
pub(crate) fn find_var(expr: &Expr, wanted: &dyn Fn(&Ident) -> bool) -> Option<Ident> {
    fn scan(tokens: TokenStream, wanted: &dyn Fn(&Ident) -> bool) -> Option<Ident> {
        let mut after_dot_or_colon = false;
        for tt in tokens {
            match &tt {
                TokenTree::Ident(i) if !after_dot_or_colon && wanted(i) => return Some(i.clone()),
                TokenTree::Group(g) => {
                    if let Some(found) = scan(g.stream(), wanted) {
                        return Some(found);
                    }
                }
                _ => {}
            }
            after_dot_or_colon =
                matches!(&tt, TokenTree::Punct(p) if p.as_char() == '.' || p.as_char() == ':');
        }
        None
    }
    scan(expr.to_token_stream(), wanted)
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
}
