//! Parsing of the attribute arguments, as written: cache names, then options.
//!
//! Nothing here knows which macro it parses for; whether an option applies, appears twice
//! or clashes with another is decided by `plan.rs`, in one place for all three macros.

use proc_macro2::{Span, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{bracketed, parenthesized, Expr, Ident, Lit, LitBool, LitStr, Token};

pub(crate) mod kw {
    syn::custom_keyword!(key);
    syn::custom_keyword!(skip);
    syn::custom_keyword!(condition);
    syn::custom_keyword!(unless);
    syn::custom_keyword!(ttl);
    syn::custom_keyword!(all_entries);
    syn::custom_keyword!(before_invocation);
    syn::custom_keyword!(cache);
    syn::custom_keyword!(ttl_from);
    syn::custom_keyword!(grace);
    syn::custom_keyword!(tags);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(hard_timeout);
    syn::custom_keyword!(eager_refresh);
    syn::custom_keyword!(detach);
}

/// The arguments of `#[cacheable(..)]`, `#[cache_put(..)]` or `#[cache_evict(..)]`.
pub(crate) struct AttrArgs {
    /// The leading string literals.
    pub names: Vec<LitStr>,
    /// The options after them, in order, duplicates and unknown ones included.
    pub options: Vec<Opt>,
}

/// One option, as written.
pub(crate) enum Opt {
    Key(kw::key, Expr),
    Skip(kw::skip, Vec<Ident>),
    Condition(kw::condition, Expr),
    Unless(kw::unless, Expr),
    Ttl(kw::ttl, LitStr),
    /// `tags = ["a", "b"]`.
    Tags(kw::tags, Vec<LitStr>),
    Crate(Token![crate], LitStr),
    AllEntries(kw::all_entries),
    BeforeInvocation(kw::before_invocation),
    Timeout(kw::timeout, LitStr),
    HardTimeout(kw::hard_timeout, LitStr),
    /// `eager_refresh = 0.8`: any literal, checked to be a float in range by the plan.
    EagerRefresh(kw::eager_refresh, Lit),
    Detach(kw::detach, LitBool),
    /// Not an option of any cachet macro; its value (if any) was skipped.
    Unknown(Ident),
    /// `ttl_from = EXPR` over `result`: a `Duration` or an `Option<Duration>` per value.
    TtlFrom(kw::ttl_from, Expr),
    /// `grace = ".."`: the grace period of the entries the function writes.
    Grace(kw::grace, LitStr),
}

impl Opt {
    /// The option's name, as written by users.
    pub fn name(&self) -> String {
        match self {
            Opt::Key(..) => "key".into(),
            Opt::Skip(..) => "skip".into(),
            Opt::Condition(..) => "condition".into(),
            Opt::Unless(..) => "unless".into(),
            Opt::Ttl(..) => "ttl".into(),
            Opt::Tags(..) => "tags".into(),
            Opt::Crate(..) => "crate".into(),
            Opt::AllEntries(..) => "all_entries".into(),
            Opt::BeforeInvocation(..) => "before_invocation".into(),
            Opt::Timeout(..) => "timeout".into(),
            Opt::HardTimeout(..) => "hard_timeout".into(),
            Opt::EagerRefresh(..) => "eager_refresh".into(),
            Opt::Detach(..) => "detach".into(),
            Opt::Unknown(ident) => ident.unraw().to_string(),
            Opt::TtlFrom(..) => "ttl_from".into(),
            Opt::Grace(..) => "grace".into(),
        }
    }

    /// The span of the option's name, where errors about the option point.
    pub fn span(&self) -> Span {
        match self {
            Opt::Key(k, _) => k.span,
            Opt::Skip(k, _) => k.span,
            Opt::Condition(k, _) => k.span,
            Opt::Unless(k, _) => k.span,
            Opt::Ttl(k, _) => k.span,
            Opt::Tags(k, _) => k.span,
            Opt::Crate(k, _) => k.span,
            Opt::AllEntries(k) => k.span,
            Opt::BeforeInvocation(k) => k.span,
            Opt::Timeout(k, _) => k.span,
            Opt::HardTimeout(k, _) => k.span,
            Opt::EagerRefresh(k, _) => k.span,
            Opt::Detach(k, _) => k.span,
            Opt::Unknown(ident) => ident.span(),
            Opt::TtlFrom(k, _) => k.span,
            Opt::Grace(k, _) => k.span,
        }
    }
}

impl Parse for AttrArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut names = Vec::new();
        let mut options = Vec::new();
        while !input.is_empty() {
            if input.peek(LitStr) {
                let name: LitStr = input.parse()?;
                if !options.is_empty() {
                    return Err(syn::Error::new(
                        name.span(),
                        "cache names come first, before any option",
                    ));
                }
                names.push(name);
            } else {
                options.push(input.parse()?);
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(AttrArgs { names, options })
    }
}

impl Parse for Opt {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let look = input.lookahead1();
        if look.peek(kw::key) {
            let k: kw::key = input.parse()?;
            equals(input, "key", k.span)?;
            Ok(Opt::Key(k, input.parse()?))
        } else if look.peek(kw::skip) {
            let k = input.parse()?;
            let content;
            parenthesized!(content in input);
            let idents =
                Punctuated::<Ident, Token![,]>::parse_terminated_with(&content, Ident::parse_any)?;
            Ok(Opt::Skip(k, idents.into_iter().collect()))
        } else if look.peek(kw::condition) {
            let k: kw::condition = input.parse()?;
            equals(input, "condition", k.span)?;
            Ok(Opt::Condition(k, input.parse()?))
        } else if look.peek(kw::unless) {
            let k: kw::unless = input.parse()?;
            equals(input, "unless", k.span)?;
            Ok(Opt::Unless(k, input.parse()?))
        } else if look.peek(kw::ttl) {
            let k: kw::ttl = input.parse()?;
            equals(input, "ttl", k.span)?;
            Ok(Opt::Ttl(k, input.parse()?))
        } else if look.peek(kw::tags) {
            let k: kw::tags = input.parse()?;
            equals(input, "tags", k.span)?;
            if !input.peek(syn::token::Bracket) {
                return Err(input.error(
                    "expected a bracketed list of string literals, as in `tags = [\"catalog\"]`",
                ));
            }
            let content;
            bracketed!(content in input);
            let tags = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
            Ok(Opt::Tags(k, tags.into_iter().collect()))
        } else if look.peek(Token![crate]) {
            let k: Token![crate] = input.parse()?;
            equals(input, "crate", k.span)?;
            Ok(Opt::Crate(k, input.parse()?))
        } else if look.peek(kw::all_entries) {
            Ok(Opt::AllEntries(input.parse()?))
        } else if look.peek(kw::before_invocation) {
            Ok(Opt::BeforeInvocation(input.parse()?))
        } else if look.peek(kw::ttl_from) {
            let k: kw::ttl_from = input.parse()?;
            equals(input, "ttl_from", k.span)?;
            Ok(Opt::TtlFrom(k, input.parse()?))
        } else if look.peek(kw::grace) {
            let k: kw::grace = input.parse()?;
            equals(input, "grace", k.span)?;
            Ok(Opt::Grace(k, input.parse()?))
        } else if look.peek(kw::timeout) {
            let k: kw::timeout = input.parse()?;
            equals(input, "timeout", k.span)?;
            Ok(Opt::Timeout(k, input.parse()?))
        } else if look.peek(kw::hard_timeout) {
            let k: kw::hard_timeout = input.parse()?;
            equals(input, "hard_timeout", k.span)?;
            Ok(Opt::HardTimeout(k, input.parse()?))
        } else if look.peek(kw::eager_refresh) {
            let k: kw::eager_refresh = input.parse()?;
            equals(input, "eager_refresh", k.span)?;
            Ok(Opt::EagerRefresh(k, input.parse()?))
        } else if look.peek(kw::detach) {
            let k: kw::detach = input.parse()?;
            equals(input, "detach", k.span)?;
            Ok(Opt::Detach(k, input.parse()?))
        } else if input.peek(Ident::peek_any) {
            let ident = Ident::parse_any(input)?;
            skip_to_comma(input)?;
            Ok(Opt::Unknown(ident))
        } else {
            Err(look.error())
        }
    }
}

/// The `=` after an option's name; its absence is reported at the name.
fn equals(input: ParseStream<'_>, name: &str, span: Span) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        Ok(())
    } else {
        Err(syn::Error::new(
            span,
            format!("expected `=` and a value after `{name}`, as in `{name} = ..`"),
        ))
    }
}

/// Skips an unknown option's value (`= expr`, `(..)`), up to the next top-level comma, so
/// the options after it are still checked.
fn skip_to_comma(input: ParseStream<'_>) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// The arguments of `#[cache_config(..)]`.
pub(crate) struct ConfigArgs {
    pub options: Vec<ConfigOpt>,
}

/// One option of `#[cache_config]`.
pub(crate) enum ConfigOpt {
    /// `cache = "a"` or `cache = ["a", "b"]`.
    Cache(kw::cache, Vec<LitStr>),
    Crate(Token![crate], LitStr),
    Unknown(Ident),
}

impl Parse for ConfigArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = Vec::new();
        while !input.is_empty() {
            options.push(input.parse()?);
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(ConfigArgs { options })
    }
}

impl Parse for ConfigOpt {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let look = input.lookahead1();
        if look.peek(kw::cache) {
            let k = input.parse()?;
            input.parse::<Token![=]>()?;
            let names = if input.peek(syn::token::Bracket) {
                let content;
                bracketed!(content in input);
                Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?
                    .into_iter()
                    .collect()
            } else {
                vec![input.parse()?]
            };
            Ok(ConfigOpt::Cache(k, names))
        } else if look.peek(Token![crate]) {
            let k = input.parse()?;
            input.parse::<Token![=]>()?;
            Ok(ConfigOpt::Crate(k, input.parse()?))
        } else if input.peek(Ident::peek_any) {
            let ident = Ident::parse_any(input)?;
            skip_to_comma(input)?;
            Ok(ConfigOpt::Unknown(ident))
        } else {
            Err(look.error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> syn::Result<AttrArgs> {
        syn::parse_str(s)
    }

    #[test]
    fn names_then_options() -> syn::Result<()> {
        let a = parse(r#""a", "b", key = user.id, skip(db, self), ttl = "5m", crate = "x""#)?;
        assert_eq!(a.names.len(), 2);
        let names: Vec<_> = a.options.iter().map(Opt::name).collect();
        assert_eq!(names, ["key", "skip", "ttl", "crate"]);
        match &a.options[1] {
            Opt::Skip(_, idents) => assert_eq!(idents.len(), 2),
            _ => panic!("not skip"),
        }
        let a = parse(r#""a", ttl_from = result.expires_in, grace = "1h""#)?;
        let names: Vec<_> = a.options.iter().map(Opt::name).collect();
        assert_eq!(names, ["ttl_from", "grace"]);
        Ok(())
    }

    #[test]
    fn empty_and_trailing_comma() -> syn::Result<()> {
        assert!(parse("")?.names.is_empty());
        assert_eq!(parse(r#""a","#)?.names.len(), 1);
        Ok(())
    }

    #[test]
    fn flags_and_unknown_options_are_kept() -> syn::Result<()> {
        let a = parse(r#""a", all_entries, bogus = 1 + f(x, y), before_invocation, sync"#)?;
        let names: Vec<_> = a.options.iter().map(Opt::name).collect();
        assert_eq!(names, ["all_entries", "bogus", "before_invocation", "sync"]);
        Ok(())
    }

    #[test]
    fn tags_are_a_bracketed_list_of_literals() -> syn::Result<()> {
        let a = parse(r#""a", tags = ["x", "y",], ttl = "1s""#)?;
        match &a.options[0] {
            Opt::Tags(_, tags) => {
                let tags: Vec<_> = tags.iter().map(LitStr::value).collect();
                assert_eq!(tags, ["x", "y"]);
            }
            _ => panic!("not tags"),
        }
        assert!(matches!(&parse(r#""a", tags = []"#)?.options[0], Opt::Tags(_, t) if t.is_empty()));
        let err = parse(r#""a", tags = "x""#).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("expected a bracketed list of string literals, as in `tags = [\"catalog\"]`")
        );
        assert!(parse(r#""a", tags = [x]"#).is_err());
        Ok(())
    }

    #[test]
    fn names_after_options_are_an_error() {
        let err = parse(r#"key = id, "a""#).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("cache names come first, before any option")
        );
    }

    #[test]
    fn expressions_stop_at_commas() -> syn::Result<()> {
        let a = parse(r#""a", condition = id > 0 && ok(a, b), unless = result.admin"#)?;
        assert_eq!(a.options.len(), 2);
        Ok(())
    }

    #[test]
    fn config_args() -> syn::Result<()> {
        let c: ConfigArgs = syn::parse_str(r#"cache = ["a", "b"], crate = "x", other"#)?;
        assert!(matches!(&c.options[0], ConfigOpt::Cache(_, n) if n.len() == 2));
        assert!(matches!(&c.options[1], ConfigOpt::Crate(..)));
        assert!(matches!(&c.options[2], ConfigOpt::Unknown(..)));
        let c: ConfigArgs = syn::parse_str(r#"cache = "a""#)?;
        assert!(matches!(&c.options[0], ConfigOpt::Cache(_, n) if n.len() == 1));
        Ok(())
    }
}
