//! The options of the four attributes, in one table ([`OPTIONS`]), and the parsing of an
//! attribute's arguments against it: cache names first, then options, each parsed by its
//! kind. Unknown, misplaced and duplicate options are reported here, once each, at the
//! option's name (serde_derive's `attr.rs`).
//!
//! Adding an option of the runtime's option set (`CacheOptions`) that annotations may set
//! is one row of [`OPTIONS`] with a [`Kind::Setting`]: it is parsed, checked and passed to
//! the generated `CacheOptions` by its kind, with no other change here.

use proc_macro2::{Span, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{bracketed, parenthesized, Expr, Ident, Lit, LitBool, LitStr, Token};

use super::ctxt::Ctxt;

/// Which attribute is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Macro {
    Cacheable,
    Put,
    Evict,
    /// `#[cache_config]` on an impl block.
    Config,
    /// `#[cacheable_many]` on an `async fn` loading many keys (`many.rs`).
    CacheableMany,
    /// A declaration's options in `cachet::caches!` (`caches.rs`).
    Caches,
}

impl Macro {
    /// The attribute's name, as users write it.
    pub fn attr(self) -> &'static str {
        match self {
            Macro::Cacheable => "cacheable",
            Macro::Put => "cache_put",
            Macro::Evict => "cache_evict",
            Macro::Config => "cache_config",
            Macro::CacheableMany => "cacheable_many",
            Macro::Caches => "caches",
        }
    }

    /// How users write it, for messages: `#[cacheable]`, `cachet::caches!`.
    pub fn written(self) -> String {
        match self {
            Macro::Caches => "a declaration of `cachet::caches!`".to_owned(),
            other => format!("`#[{}]`", other.attr()),
        }
    }

    /// The function attribute named so (by the last segment of its path).
    pub fn of_fn_attr(name: &str) -> Option<Self> {
        match name {
            "cacheable" => Some(Macro::Cacheable),
            "cache_put" => Some(Macro::Put),
            "cache_evict" => Some(Macro::Evict),
            _ => None,
        }
    }

    /// The options it accepts, in the table's (the docs') order.
    fn options(self) -> impl Iterator<Item = &'static OptionDef> {
        OPTIONS.iter().filter(move |o| o.on.contains(&self))
    }
}

/// How an option is written and what its value is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// A bare flag: `all_entries`.
    Flag,
    /// `name = EXPR`.
    Expr,
    /// `name = path::to::item`: a path, kept as written (errors point at it).
    Path,
    /// `name(a, b)`: argument names.
    Idents,
    /// `name = ["a", "b"]`.
    Tags,
    /// `name = "..."`, used as written (`crate = "::cachet"`).
    Str,
    /// `name = true`.
    Bool,
    /// `cache = "a"` or `cache = ["a", "b"]`.
    Names,
    /// An option of the runtime's option set (`CacheOptions`), set by the generated code
    /// with the setter of the same name.
    Setting(Setting),
}

/// The value kinds of the runtime's option set, checked at compile time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Setting {
    /// A duration literal (`"5m"`): `examples` in the error message; `zero` says what a
    /// zero duration means when allowed (else it is refused).
    Duration {
        examples: &'static str,
        zero: Option<&'static str>,
    },
    /// A fraction strictly between 0 and 1 (`0.8`); `meaning` opens the error message.
    Ratio { meaning: &'static str },
    /// `true` or `false`.
    Bool,
}

/// One row of the table.
#[derive(Debug)]
pub(crate) struct OptionDef {
    pub name: &'static str,
    pub kind: Kind,
    /// The attributes that accept it.
    pub on: &'static [Macro],
    /// Why the others do not, when there is a short reason (`it stores nothing`).
    pub why_not: Option<&'static str>,
}

use Macro::{Cacheable, CacheableMany, Caches, Config, Evict, Put};

const STORES_NOTHING: Option<&str> = Some("it stores nothing");
const EVICTS_NOTHING: Option<&str> = Some("it evicts nothing");
const DURATION: &str = "\"30s\", \"5m\" or \"1h 30m\"";

/// Every option of every attribute, in the order the docs list them.
pub(crate) const OPTIONS: &[OptionDef] = &[
    def("key", Kind::Expr, &[Cacheable, Put, Evict], None),
    def(
        "skip",
        Kind::Idents,
        &[Cacheable, Put, Evict, CacheableMany],
        None,
    ),
    def("condition", Kind::Expr, &[Cacheable, Put, Evict], None),
    def("unless", Kind::Expr, &[Cacheable, Put], STORES_NOTHING),
    def(
        "ttl",
        duration(DURATION, None),
        &[Cacheable, Put, CacheableMany, Caches],
        STORES_NOTHING,
    ),
    def("ttl_from", Kind::Expr, &[Cacheable, Put], STORES_NOTHING),
    def(
        "grace",
        duration("\"30s\", \"6h\" or \"1h 30m\"", Some("none")),
        &[Cacheable, Put, CacheableMany, Caches],
        STORES_NOTHING,
    ),
    def(
        "tags",
        Kind::Tags,
        &[Cacheable, Put, Caches],
        STORES_NOTHING,
    ),
    def(
        "timeout",
        duration(DURATION, None),
        &[Cacheable, Caches],
        None,
    ),
    def(
        "hard_timeout",
        duration(DURATION, None),
        &[Cacheable, Caches],
        None,
    ),
    def(
        "eager_refresh",
        Kind::Setting(Setting::Ratio {
            meaning: "the fraction of the TTL after which a hit refreshes the entry in the \
                      background",
        }),
        &[Cacheable, Caches],
        None,
    ),
    def(
        "tti",
        duration(DURATION, None),
        &[Cacheable, Put, Caches],
        STORES_NOTHING,
    ),
    def(
        "jitter",
        duration(DURATION, Some("no jitter")),
        &[Cacheable, Put, Caches],
        STORES_NOTHING,
    ),
    def(
        "l1_ttl",
        duration(DURATION, None),
        &[Cacheable, Put, Caches],
        STORES_NOTHING,
    ),
    def(
        "wait_timeout",
        duration(DURATION, None),
        &[Cacheable, Caches],
        None,
    ),
    def(
        "background_l2_writes",
        Kind::Setting(Setting::Bool),
        &[Cacheable, Put, Caches],
        STORES_NOTHING,
    ),
    def(
        "skip_l2_read",
        Kind::Setting(Setting::Bool),
        &[Cacheable, Caches],
        None,
    ),
    def(
        "skip_l2_write",
        Kind::Setting(Setting::Bool),
        &[Cacheable, Put, Evict, Caches],
        None,
    ),
    def(
        "skip_bus",
        Kind::Setting(Setting::Bool),
        &[Cacheable, Put, Evict, Caches],
        None,
    ),
    def("detach", Kind::Bool, &[Cacheable], None),
    def("key_generator", Kind::Path, &[Cacheable, Put, Evict], None),
    def("manager", Kind::Path, &[Cacheable, Put, Evict], None),
    def("cache_name", Kind::Expr, &[Cacheable, Put, Evict], None),
    def(
        "after_commit",
        Kind::Flag,
        &[Put, Evict],
        Some("only writes and evictions wait for a commit"),
    ),
    def("all_entries", Kind::Flag, &[Evict], EVICTS_NOTHING),
    def("before_invocation", Kind::Flag, &[Evict], EVICTS_NOTHING),
    def("cache", Kind::Names, &[Config], None),
    def(
        "crate",
        Kind::Str,
        &[Cacheable, Put, Evict, Config, CacheableMany, Caches],
        None,
    ),
];

const fn def(
    name: &'static str,
    kind: Kind,
    on: &'static [Macro],
    why_not: Option<&'static str>,
) -> OptionDef {
    OptionDef {
        name,
        kind,
        on,
        why_not,
    }
}

const fn duration(examples: &'static str, zero: Option<&'static str>) -> Kind {
    Kind::Setting(Setting::Duration { examples, zero })
}

/// An option's value, as written.
pub(crate) enum Value {
    Flag,
    Expr(Expr),
    Path(syn::Path),
    Idents(Vec<Ident>),
    /// Tags or cache names: string literals.
    Strs(Vec<LitStr>),
    Str(LitStr),
    Bool(LitBool),
    /// A setting's literal, checked by its kind later (so a wrong literal is reported at
    /// the literal, in the option's own words).
    Lit(Lit),
    /// Not an option of any attribute: its value was skipped.
    Unknown,
}

/// One option as written: its name (where errors about it point) and value.
pub(crate) struct Written {
    pub name: Ident,
    pub def: Option<&'static OptionDef>,
    pub value: Value,
}

impl Written {
    /// The option's name as users write it (`crate`, `r#type` → `type`).
    pub fn name(&self) -> String {
        self.name.unraw().to_string()
    }

    pub fn span(&self) -> Span {
        self.name.span()
    }
}

/// The arguments of one attribute, as written: the leading caches (string names, or paths
/// to typed caches declared with `cachet::caches!`), then options.
pub(crate) struct Args {
    pub names: Vec<LitStr>,
    /// `#[cacheable(USERS)]`: paths to typed caches (`crate::typed` reads them).
    pub typed: Vec<syn::Path>,
    pub options: Vec<Written>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut names = Vec::new();
        let mut typed = Vec::new();
        let mut options = Vec::new();
        while !input.is_empty() {
            // Before any option; after a string name only a path with `::` (a bare word
            // there is an option, as it always was).
            if options.is_empty() && peek_cache_path(input, names.is_empty()) {
                typed.push(input.call(syn::Path::parse_mod_style)?);
            } else if input.peek(LitStr) {
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
        Ok(Args {
            names,
            typed,
            options,
        })
    }
}

/// Whether the next argument of an attribute is a path to a typed cache rather than an
/// option: `USERS`, `caches::USERS`, `crate::caches::USERS`. An identifier that is an
/// option's name (`all_entries`), or is followed by `=` or `(` (an option, known or not),
/// is an option; so is any bare identifier when `bare` is false (after a string name).
fn peek_cache_path(input: ParseStream<'_>, bare: bool) -> bool {
    if input.peek(Token![::]) {
        return true;
    }
    let fork = input.fork();
    let Ok(first) = Ident::parse_any(&fork) else {
        return false;
    };
    if fork.peek(Token![::]) {
        return true;
    }
    if !bare {
        return false;
    }
    let name = first.unraw().to_string();
    if matches!(name.as_str(), "crate" | "self" | "super" | "Self") {
        return false;
    }
    if OPTIONS.iter().any(|o| o.name == name) {
        return false;
    }
    fork.is_empty() || fork.peek(Token![,])
}

impl Parse for Written {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if !input.peek(Ident::peek_any) {
            return Err(input.error("expected a cache name (a string literal) or an option"));
        }
        let name = Ident::parse_any(input)?;
        let written = name.unraw().to_string();
        // `r#crate` is not `crate`: only the keyword is the option.
        let def = OPTIONS
            .iter()
            .find(|d| d.name == written && (d.name != "crate" || name == "crate"));
        let Some(def) = def else {
            skip_to_comma(input)?;
            return Ok(Written {
                name,
                def: None,
                value: Value::Unknown,
            });
        };
        let value = match def.kind {
            Kind::Flag => Value::Flag,
            Kind::Idents => {
                let content;
                parenthesized!(content in input);
                let idents = Punctuated::<Ident, Token![,]>::parse_terminated_with(
                    &content,
                    Ident::parse_any,
                )?;
                Value::Idents(idents.into_iter().collect())
            }
            kind => {
                equals(input, def.name, name.span())?;
                match kind {
                    Kind::Expr => Value::Expr(input.parse()?),
                    Kind::Path => {
                        Value::Path(input.call(syn::Path::parse_mod_style).map_err(|_| {
                            input.error(format!(
                                "expected a path after `{} = `, as in `{} = crate::keys::by_id`",
                                def.name, def.name
                            ))
                        })?)
                    }
                    Kind::Str => Value::Str(input.parse()?),
                    Kind::Bool => Value::Bool(input.parse()?),
                    Kind::Tags | Kind::Names if input.peek(syn::token::Bracket) => {
                        Value::Strs(bracketed_strs(input)?)
                    }
                    Kind::Tags => {
                        return Err(input.error(
                            "expected a bracketed list of string literals, as in \
                             `tags = [\"catalog\"]`",
                        ))
                    }
                    Kind::Names => Value::Strs(vec![input.parse()?]),
                    Kind::Setting(Setting::Duration { .. }) => Value::Lit(Lit::Str(input.parse()?)),
                    Kind::Setting(Setting::Ratio { .. } | Setting::Bool) => {
                        Value::Lit(input.parse()?)
                    }
                    Kind::Flag | Kind::Idents => unreachable!("handled above"),
                }
            }
        };
        Ok(Written {
            name,
            def: Some(def),
            value,
        })
    }
}

fn bracketed_strs(input: ParseStream<'_>) -> syn::Result<Vec<LitStr>> {
    let content;
    bracketed!(content in input);
    let strs = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
    Ok(strs.into_iter().collect())
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

/// The options of one attribute that apply to it, each at most once, by name.
pub(crate) struct Attr {
    options: Vec<Written>,
}

impl Attr {
    /// Keeps the options `which` accepts, reporting unknown, misplaced and duplicate ones,
    /// and the second of two that exclude each other (`ttl` and `ttl_from`).
    pub fn new(which: Macro, written: Vec<Written>, cx: &mut Ctxt) -> Self {
        let mut options: Vec<Written> = Vec::new();
        for opt in written {
            let name = opt.name();
            let accepted = opt.def.is_some_and(|d| d.on.contains(&which));
            if !accepted {
                cx.at(opt.span(), not_accepted(which, &opt, &name));
                continue;
            }
            if options.iter().any(|o| o.name() == name) {
                cx.at(opt.span(), format!("duplicate option `{name}`"));
                continue;
            }
            // One TTL: fixed or computed, not both; reported at whichever comes second.
            let other = match name.as_str() {
                "ttl" => Some("ttl_from"),
                "ttl_from" => Some("ttl"),
                _ => None,
            };
            if let Some(other) = other.filter(|o| options.iter().any(|w| w.name() == *o)) {
                cx.at(
                    opt.span(),
                    format!(
                        "`{name}` cannot be used with `{other}`: `ttl = \"..\"` is one TTL for \
                         every value, `ttl_from = ..` computes each value's own; drop one"
                    ),
                );
                continue;
            }
            options.push(opt);
        }
        Attr { options }
    }

    fn get(&self, name: &str) -> Option<&Written> {
        self.options
            .iter()
            .find(|o| o.def.is_some_and(|d| d.name == name))
    }

    /// The value of option `name` as `pick` takes it (`None`: another kind), with the span
    /// of the option's name.
    fn value<'a, T: ?Sized>(
        &'a self,
        name: &str,
        pick: impl FnOnce(&'a Value) -> Option<&'a T>,
    ) -> Option<(Span, &'a T)> {
        let written = self.get(name)?;
        pick(&written.value).map(|value| (written.span(), value))
    }

    /// `name = EXPR`.
    pub fn expr(&self, name: &str) -> Option<(Span, &Expr)> {
        self.value(name, |v| {
            if let Value::Expr(e) = v {
                Some(e)
            } else {
                None
            }
        })
    }

    /// `name = path`.
    pub fn path(&self, name: &str) -> Option<(Span, &syn::Path)> {
        self.value(name, |v| {
            if let Value::Path(p) = v {
                Some(p)
            } else {
                None
            }
        })
    }

    /// `name(a, b)`.
    pub fn idents(&self, name: &str) -> Option<(Span, &[Ident])> {
        self.value(name, |v| {
            if let Value::Idents(i) = v {
                Some(&i[..])
            } else {
                None
            }
        })
    }

    /// `name = ["a", ..]` (or, for `cache`, a single literal).
    pub fn strs(&self, name: &str) -> Option<(Span, &[LitStr])> {
        self.value(name, |v| {
            if let Value::Strs(s) = v {
                Some(&s[..])
            } else {
                None
            }
        })
    }

    /// `name = "..."`.
    pub fn str(&self, name: &str) -> Option<&LitStr> {
        self.value(name, |v| if let Value::Str(s) = v { Some(s) } else { None })
            .map(|(_, s)| s)
    }

    /// `name = true`.
    pub fn bool(&self, name: &str) -> Option<&LitBool> {
        self.value(name, |v| {
            if let Value::Bool(b) = v {
                Some(b)
            } else {
                None
            }
        })
        .map(|(_, b)| b)
    }

    /// A bare flag: where it is written.
    pub fn flag(&self, name: &str) -> Option<Span> {
        self.get(name)
            .filter(|w| matches!(w.value, Value::Flag))
            .map(Written::span)
    }

    /// The settings written (options of the runtime's option set), in the table's order,
    /// with their literal.
    pub fn settings(&self) -> impl Iterator<Item = (&'static str, Setting, &Lit)> + '_ {
        OPTIONS
            .iter()
            .filter_map(move |def| match (def.kind, self.get(def.name)) {
                (
                    Kind::Setting(setting),
                    Some(Written {
                        value: Value::Lit(lit),
                        ..
                    }),
                ) => Some((def.name, setting, lit)),
                _ => None,
            })
    }
}

/// A setting's value, checked: what the generated code passes to its setter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SettingValue {
    /// A duration, in milliseconds.
    Millis(u64),
    /// A fraction strictly between 0 and 1.
    Ratio(f64),
    /// `true` or `false`.
    Bool(bool),
}

impl Setting {
    /// Checks the literal of the setting `name`, reporting a bad one at the literal.
    pub fn parse(self, name: &str, lit: &Lit, cx: &mut Ctxt) -> Option<SettingValue> {
        match self {
            Setting::Duration { examples, zero } => {
                let Lit::Str(lit) = lit else {
                    cx.spanned(lit, format!("expected a duration string after `{name} = `"));
                    return None;
                };
                parse_duration(lit, name, examples, zero, cx).map(SettingValue::Millis)
            }
            Setting::Bool => match lit {
                Lit::Bool(b) => Some(SettingValue::Bool(b.value)),
                _ => {
                    cx.spanned(lit, format!("expected `true` or `false` after `{name} = `"));
                    None
                }
            },
            Setting::Ratio { meaning } => {
                let ratio = match lit {
                    Lit::Float(f) => f.base10_parse::<f64>().ok(),
                    _ => None,
                };
                match ratio {
                    Some(r) if r > 0.0 && r < 1.0 => Some(SettingValue::Ratio(r)),
                    _ => {
                        cx.spanned(
                            lit,
                            format!(
                                "`{name}` is {meaning}: a number strictly between 0 and 1, as \
                                 in `{name} = 0.8`"
                            ),
                        );
                        None
                    }
                }
            }
        }
    }
}

/// The one duration parser of the macros: `ttl = "5m"` and the like, at compile time, in
/// milliseconds. A zero duration is refused unless `zero` says what it means.
fn parse_duration(
    lit: &LitStr,
    name: &str,
    examples: &str,
    zero: Option<&str>,
    cx: &mut Ctxt,
) -> Option<u64> {
    match humantime::parse_duration(&lit.value()) {
        Ok(d) if d.as_millis() == 0 && zero.is_none() => {
            cx.at(lit.span(), format!("`{name}` must be at least 1ms"));
            None
        }
        Ok(d) => Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        Err(e) => {
            let zero = zero
                .map(|meaning| format!(" (\"0s\" for {meaning})"))
                .unwrap_or_default();
            cx.at(
                lit.span(),
                format!(
                    "invalid `{name}` \"{}\": {e}; write a duration such as {examples}{zero}",
                    lit.value()
                ),
            );
            None
        }
    }
}

/// The message for an option `which` does not accept.
fn not_accepted(which: Macro, opt: &Written, name: &str) -> String {
    let list = which
        .options()
        .map(|o| format!("`{}`", o.name))
        .collect::<Vec<_>>()
        .join(", ");
    let attr = which.written();
    match opt.def {
        // Options of the function attributes are unknown to `#[cache_config]`, which only
        // gives defaults.
        Some(def) if which != Macro::Config => {
            // The reasons are about the three single-key attributes.
            let why = def
                .why_not
                .filter(|_| !matches!(which, Macro::CacheableMany | Macro::Caches))
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            format!("`{name}` is not an option of {attr}{why}; expected one of: {list}")
        }
        _ => format!("unknown option `{name}` of {attr}; expected one of: {list}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> syn::Result<Args> {
        syn::parse_str(s)
    }

    fn names(a: &Args) -> Vec<String> {
        a.options.iter().map(Written::name).collect()
    }

    #[test]
    fn names_then_options() -> syn::Result<()> {
        let a = parse(r#""a", "b", key = user.id, skip(db, self), ttl = "5m", crate = "x""#)?;
        assert_eq!(a.names.len(), 2);
        assert_eq!(names(&a), ["key", "skip", "ttl", "crate"]);
        assert!(matches!(&a.options[1].value, Value::Idents(i) if i.len() == 2));
        let a = parse(r#""a", ttl_from = result.expires_in, grace = "1h""#)?;
        assert_eq!(names(&a), ["ttl_from", "grace"]);
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
        assert_eq!(
            names(&a),
            ["all_entries", "bogus", "before_invocation", "sync"]
        );
        assert!(a.options[1].def.is_none());
        Ok(())
    }

    #[test]
    fn tags_are_a_bracketed_list_of_literals() -> syn::Result<()> {
        let a = parse(r#""a", tags = ["x", "y",], ttl = "1s""#)?;
        match &a.options[0].value {
            Value::Strs(tags) => {
                let tags: Vec<_> = tags.iter().map(LitStr::value).collect();
                assert_eq!(tags, ["x", "y"]);
            }
            _ => panic!("not tags"),
        }
        assert!(
            matches!(&parse(r#""a", tags = []"#)?.options[0].value, Value::Strs(t) if t.is_empty())
        );
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
    fn cache_config_names() -> syn::Result<()> {
        let c = parse(r#"cache = ["a", "b"], crate = "x", other"#)?;
        assert!(matches!(&c.options[0].value, Value::Strs(n) if n.len() == 2));
        assert!(matches!(&c.options[1].value, Value::Str(..)));
        assert!(matches!(&c.options[2].value, Value::Unknown));
        let c = parse(r#"cache = "a""#)?;
        assert!(matches!(&c.options[0].value, Value::Strs(n) if n.len() == 1));
        Ok(())
    }

    #[test]
    fn each_attribute_lists_its_options_in_the_docs_order() {
        let list = |m: Macro| m.options().map(|o| o.name).collect::<Vec<_>>();
        assert_eq!(
            list(Macro::Cacheable),
            [
                "key",
                "skip",
                "condition",
                "unless",
                "ttl",
                "ttl_from",
                "grace",
                "tags",
                "timeout",
                "hard_timeout",
                "eager_refresh",
                "tti",
                "jitter",
                "l1_ttl",
                "wait_timeout",
                "background_l2_writes",
                "skip_l2_read",
                "skip_l2_write",
                "skip_bus",
                "detach",
                "key_generator",
                "manager",
                "cache_name",
                "crate"
            ]
        );
        assert_eq!(
            list(Macro::Put),
            [
                "key",
                "skip",
                "condition",
                "unless",
                "ttl",
                "ttl_from",
                "grace",
                "tags",
                "tti",
                "jitter",
                "l1_ttl",
                "background_l2_writes",
                "skip_l2_write",
                "skip_bus",
                "key_generator",
                "manager",
                "cache_name",
                "after_commit",
                "crate"
            ]
        );
        assert_eq!(
            list(Macro::Evict),
            [
                "key",
                "skip",
                "condition",
                "skip_l2_write",
                "skip_bus",
                "key_generator",
                "manager",
                "cache_name",
                "after_commit",
                "all_entries",
                "before_invocation",
                "crate"
            ]
        );
        assert_eq!(list(Macro::Config), ["cache", "crate"]);
        assert_eq!(
            list(Macro::Caches),
            [
                "ttl",
                "grace",
                "tags",
                "timeout",
                "hard_timeout",
                "eager_refresh",
                "tti",
                "jitter",
                "l1_ttl",
                "wait_timeout",
                "background_l2_writes",
                "skip_l2_read",
                "skip_l2_write",
                "skip_bus",
                "crate"
            ]
        );
    }

    #[test]
    fn misplaced_unknown_and_duplicate_options_are_reported_once_each() {
        let mut cx = Ctxt::default();
        let a = parse(r#""a", ttl = "1s", ttl = "2s", bogus, all_entries"#).unwrap();
        let attr = Attr::new(Macro::Cacheable, a.options, &mut cx);
        assert!(attr.settings().count() == 1);
        let errors: Vec<String> = cx
            .check()
            .err()
            .into_iter()
            .flatten()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert_eq!(errors[0], "duplicate option `ttl`");
        assert!(errors[1].starts_with("unknown option `bogus` of `#[cacheable]`"));
        assert!(errors[2]
            .starts_with("`all_entries` is not an option of `#[cacheable]` (it evicts nothing)"));
    }

    fn typed(s: &str) -> Vec<String> {
        let args: Args = syn::parse_str(s).expect("parses");
        args.typed.iter().map(crate::type_text::path_text).collect()
    }

    #[test]
    fn paths_are_typed_caches_options_are_not() {
        assert_eq!(typed("USERS"), ["USERS"]);
        assert_eq!(typed("USERS, key = id"), ["USERS"]);
        assert_eq!(
            typed("crate::caches::USERS, ORDERS"),
            ["crate::caches::USERS", "ORDERS"]
        );
        assert_eq!(typed("::app::USERS"), ["::app::USERS"]);
        assert!(typed("all_entries").is_empty());
        assert!(typed("\"users\", all_entries").is_empty());
        assert!(typed("\"users\", bogus").is_empty());
        assert_eq!(typed("\"users\", caches::USERS"), ["caches::USERS"]);
        assert!(typed("key = id").is_empty());
        assert!(typed("bogus = 1").is_empty());
        assert!(typed("crate = \"x\"").is_empty());
        // After an option, an identifier is an option (unknown ones are reported as such).
        assert!(typed("key = id, USERS").is_empty());
    }
}
