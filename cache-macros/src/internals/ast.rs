//! The model the expansion works from: the annotated function ([`Func`], whose body need
//! not parse) and one validated [`Plan`] per annotation, built from the attribute's
//! options ([`super::attr`]) and the function's signature, with every misuse collected.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Expr, Ident, ItemFn, LitStr, Path, Signature, Visibility};

use super::attr::{Args, Attr, Macro, SettingValue};
use super::check;
use super::ctxt::Ctxt;
use super::scan::find_result;
use super::sig::fn_args;

/// An annotated function: its attributes, visibility and signature, and its body as
/// tokens. A body that `syn` cannot parse is kept as written (tracing-attributes'
/// fallback): the expansion wraps it unchanged, and rustc reports what is wrong with it
/// at its own tokens, once.
pub(crate) struct Func {
    pub attrs: Vec<Attribute>,
    /// The body's inner attributes (`#![allow(..)]`), when the body was parsed.
    pub inner: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    /// The body, braces included.
    pub body: TokenStream,
    /// The type parameters of the `impl` block, when a block's `#[cacheable]` expands the
    /// method (a method's own attribute cannot see them): a key of one has no one type.
    pub impl_generics: Vec<Ident>,
}

impl From<ItemFn> for Func {
    fn from(f: ItemFn) -> Self {
        let (attrs, inner) = f
            .attrs
            .into_iter()
            .partition(|a| matches!(a.style, syn::AttrStyle::Outer));
        Func {
            attrs,
            inner,
            vis: f.vis,
            sig: f.sig,
            body: f.block.to_token_stream(),
            impl_generics: Vec::new(),
        }
    }
}

impl Parse for Func {
    /// A function whose body is only a brace-delimited group of tokens.
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let body: proc_macro2::Group = input.parse()?;
        if body.delimiter() != proc_macro2::Delimiter::Brace {
            return Err(syn::Error::new(body.span(), "expected the function's body"));
        }
        Ok(Func {
            attrs,
            inner: Vec::new(),
            vis,
            sig,
            body: body.into_token_stream(),
            impl_generics: Vec::new(),
        })
    }
}

impl Func {
    /// The function, parsed fully when it can be, else with its body kept as tokens.
    pub fn parse(item: TokenStream) -> syn::Result<Self> {
        match syn::parse2::<ItemFn>(item.clone()) {
            Ok(f) => Ok(f.into()),
            Err(e) => syn::parse2::<Func>(item).map_err(|_| e),
        }
    }

    /// The function as it was, minus the attributes taken off it.
    pub fn to_tokens_unchanged(&self) -> TokenStream {
        let Func {
            attrs,
            inner,
            vis,
            sig,
            body,
            ..
        } = self;
        if inner.is_empty() {
            return quote::quote!(#(#attrs)* #vis #sig #body);
        }
        // A parsed body lost its inner attributes to `attrs`: put them back inside.
        let stmts = match syn::parse2::<syn::Block>(body.clone()) {
            Ok(block) => block.stmts,
            Err(_) => Vec::new(),
        };
        quote::quote!(#(#attrs)* #vis #sig { #(#inner)* #(#stmts)* })
    }
}

/// Everything one annotation asks for, validated.
pub(crate) struct Plan {
    pub kind: Macro,
    /// The root of the generated paths (`::cachet` unless `crate = ".."`).
    pub krate: Path,
    pub caches: Vec<LitStr>,
    /// Typed caches (`#[cacheable(USERS)]`), in place of `caches`.
    pub typed: Vec<Path>,
    /// The annotation's layer of the runtime's option set: each setting written, checked.
    pub settings: Vec<(&'static str, SettingValue)>,
    /// `tags = [..]`: carried by every entry the function writes.
    pub tags: Vec<LitStr>,
    pub condition: Option<Expr>,
    /// The condition uses `result`: evaluated after the call (an eviction after it only).
    pub condition_after: bool,
    /// `manager = path`: the manager this annotation's caches are resolved in.
    pub manager: Option<Path>,
    /// `cache_name = EXPR`: the cache's name, computed from the arguments (no literal names).
    pub cache_name: Option<Expr>,
    pub action: Action,
    /// `ttl_from = EXPR` (over `result`), in place of a fixed TTL.
    pub ttl_from: Option<Expr>,
    /// Whether the function's future may finish in the background (`#[cacheable]` only).
    pub detachable: bool,
    /// `after_commit` (`cache_put`, `cache_evict`): the write or eviction waits for the
    /// commit of the `cachet::transaction` in effect.
    pub after_commit: bool,
}

/// What the annotation does, with the options that only make sense for it.
pub(crate) enum Action {
    Cacheable {
        key: KeySpec,
        unless: Option<Expr>,
    },
    Put {
        key: KeySource,
        unless: Option<Expr>,
    },
    Evict(EvictTarget),
}

/// A key computed from the arguments, before the function runs.
pub(crate) enum KeySpec {
    /// The default key: these arguments, in order (no argument: the unit key).
    Args(Vec<KeyArg>),
    /// `key = EXPR`.
    Expr(Expr),
}

/// One argument of the default key.
pub(crate) struct KeyArg {
    pub ident: Ident,
    /// Declared as `&T` or `&mut T`: checked and encoded as `T` (which encodes alike), so
    /// an error names `T`, the type that lacks `Serialize`.
    pub is_ref: bool,
}

/// Where a key written after the function ran comes from.
pub(crate) enum KeySource {
    /// From the arguments: computed before the function runs (it may consume them).
    Args(KeySpec),
    /// `key = EXPR` mentioning `result`, the function's value.
    Result(Expr),
}

/// What `#[cache_evict]` evicts, and when.
pub(crate) enum EvictTarget {
    /// `all_entries`: every entry of the caches.
    AllEntries { before_invocation: bool },
    /// `before_invocation`: one key, before the function runs.
    Before(KeySpec),
    /// One key, after the function succeeded.
    After(KeySource),
}

/// The key options of an annotation: `key = ..`, `skip(..)` and `key_generator = ..`.
struct KeyOptions<'a> {
    key: Option<(Span, &'a Expr)>,
    skip: Option<(Span, &'a [Ident])>,
    generator: Option<(Span, &'a Path)>,
}

impl Plan {
    /// Validates one annotation's arguments against the function it is on. `attr` is where
    /// an error about the whole attribute (no cache name) points.
    pub fn new(kind: Macro, args: Args, sig: &Signature, attr: &TokenStream) -> syn::Result<Plan> {
        let mut cx = Ctxt::default();
        let opts = Attr::new(kind, args.options, &mut cx);
        let cache_name = opts.expr("cache_name");
        match cache_name {
            Some((span, expr)) => {
                if !args.names.is_empty() || !args.typed.is_empty() {
                    cx.at(
                        span,
                        "`cache_name` cannot be used with cache names: it computes the one \
                         cache's name from the arguments; drop the names or the option",
                    );
                }
                check::no_result(
                    sig,
                    expr,
                    "`result` cannot be used in `cache_name`: the cache is chosen before the \
                     function runs",
                    &mut cx,
                );
            }
            None => check::fn_names(kind, &args.names, &args.typed, attr, &mut cx),
        }
        let krate = match opts.str("crate") {
            Some(lit) => lit.parse::<Path>().unwrap_or_else(|_| {
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
        let settings = opts
            .settings()
            .filter_map(|(name, setting, lit)| Some((name, setting.parse(name, lit, &mut cx)?)))
            .collect();
        let tags = match opts.strs("tags") {
            Some((span, tags)) => {
                check::tags(span, tags, &mut cx);
                tags.to_vec()
            }
            None => Vec::new(),
        };
        check::signature(kind, sig, &mut cx);
        let condition = opts.expr("condition").map(|(_, e)| e.clone());
        // After the call, an eviction's condition may look at the result (Spring's
        // `#result` in `@CacheEvict(condition = ..)`).
        let evicts_after = kind == Macro::Evict && opts.flag("before_invocation").is_none();
        let condition_after =
            evicts_after && condition.as_ref().is_some_and(|c| find_result(c).is_some());
        if let (Some(cond), Macro::Evict, false) = (&condition, kind, evicts_after) {
            check::no_result(
                sig,
                cond,
                "`result` cannot be used in `condition` with `before_invocation`: the entries \
                 are evicted before the function runs",
                &mut cx,
            );
        } else if let (Some(cond), false) = (&condition, kind == Macro::Evict) {
            check::no_result(
                sig,
                cond,
                &format!(
                    "`result` cannot be used in `condition`: the condition decides whether the \
                     cache is used before `{}` runs; use `unless = ..` to decide over the result",
                    sig.ident
                ),
                &mut cx,
            );
        }
        let keys = KeyOptions {
            key: opts.expr("key"),
            skip: opts.idents("skip"),
            generator: opts.path("key_generator"),
        };
        let unless = opts.expr("unless").map(|(_, e)| e.clone());
        let action = match kind {
            Macro::Cacheable => {
                if let Some((_, key)) = keys.key {
                    check::no_result(
                        sig,
                        key,
                        "`result` cannot be used in the key of `#[cacheable]`: the key is \
                         needed to look the value up, before the function runs",
                        &mut cx,
                    );
                }
                Action::Cacheable {
                    key: key_spec(sig, &keys, &mut cx),
                    unless: unless.clone(),
                }
            }
            Macro::Put => Action::Put {
                key: key_source(sig, &keys, &mut cx),
                unless: unless.clone(),
            },
            // `cache_config` and `cacheable_many` (`many.rs`) never plan a layer.
            Macro::Evict | Macro::Config | Macro::CacheableMany | Macro::Caches => {
                Action::Evict(evict_target(sig, &opts, &keys, &mut cx))
            }
        };
        let ttl_from = opts.expr("ttl_from").map(|(_, e)| e.clone());
        let attached = check::why_attached(sig, unless.as_ref(), ttl_from.as_ref());
        let detachable = match (opts.bool("detach"), &attached) {
            (Some(lit), _) if !lit.value => false,
            (Some(lit), Some(why)) => {
                cx.at(
                    lit.span,
                    format!(
                        "`detach = true`: `{}` cannot finish in the background: {why}; remove the option",
                        sig.ident
                    ),
                );
                false
            }
            _ => kind == Macro::Cacheable && attached.is_none(),
        };
        cx.check()?;
        Ok(Plan {
            kind,
            krate,
            caches: args.names,
            typed: args.typed,
            settings,
            tags,
            condition,
            condition_after,
            manager: opts.path("manager").map(|(_, p)| p.clone()),
            cache_name: cache_name.map(|(_, e)| e.clone()),
            action,
            ttl_from,
            detachable,
            after_commit: opts.flag("after_commit").is_some(),
        })
    }
}

/// The key of a `cacheable`, or of a `before_invocation` eviction.
fn key_spec(sig: &Signature, keys: &KeyOptions<'_>, cx: &mut Ctxt) -> KeySpec {
    if let Some((gen_span, path)) = keys.generator {
        if keys.key.is_some() {
            cx.at(
                gen_span,
                "`key` and `key_generator` cannot be used together: `key = ..` is the key, \
                 `key_generator = ..` computes it from the arguments; drop one",
            );
        } else {
            let args = default_key(sig, keys.skip.map_or(&[], |s| s.1), cx);
            return KeySpec::Expr(generator_call(path, &args));
        }
    }
    match (keys.key, keys.skip) {
        (Some((_, expr)), Some((skip_span, skip))) => {
            check::skip(sig, skip, cx);
            cx.at(
                skip_span,
                "`key` and `skip` cannot be used together: `skip` leaves arguments out of the \
                 default key, `key = ..` replaces it; drop one",
            );
            KeySpec::Expr(expr.clone())
        }
        (Some((_, expr)), None) => KeySpec::Expr(expr.clone()),
        (None, skip) => KeySpec::Args(default_key(sig, skip.map_or(&[], |s| s.1), cx)),
    }
}

/// `key_generator = path`: the call of `path` with a reference to each argument of the
/// default key (after `skip`), in order, spanned at the path so a wrong signature is
/// reported there.
fn generator_call(path: &Path, args: &[KeyArg]) -> Expr {
    let values = args.iter().map(|KeyArg { ident, is_ref }| {
        if *is_ref {
            quote::quote!(&*#ident)
        } else {
            quote::quote!(&#ident)
        }
    });
    syn::parse_quote_spanned!(syn::spanned::Spanned::span(path)=> #path(#(#values),*))
}

/// The arguments of the default key, after `skip`.
fn default_key(sig: &Signature, skip: &[Ident], cx: &mut Ctxt) -> Vec<KeyArg> {
    check::skip(sig, skip, cx);
    let mut keyed = Vec::new();
    for (ident, pt) in fn_args(sig) {
        match ident {
            Some(ident) if skip.contains(ident) => {}
            Some(ident) => keyed.push(KeyArg {
                ident: ident.clone(),
                is_ref: matches!(&*pt.ty, syn::Type::Reference(_)),
            }),
            None => cx.spanned(
                &pt.pat,
                format!(
                    "the argument `{}` is a pattern, not a name, so it cannot be part of the \
                     default key of `{}`: bind it to a name and leave it out with `skip(..)`, \
                     or name the key with `key = ..`",
                    pt.pat.to_token_stream(),
                    sig.ident
                ),
            ),
        }
    }
    keyed
}

/// The key of a `cache_put`, or of an eviction after the function ran.
fn key_source(sig: &Signature, keys: &KeyOptions<'_>, cx: &mut Ctxt) -> KeySource {
    if let (Some((_, expr)), None, None) = (keys.key, keys.skip, keys.generator) {
        if find_result(expr).is_some() {
            return KeySource::Result(expr.clone());
        }
    }
    KeySource::Args(key_spec(sig, keys, cx))
}

fn evict_target(sig: &Signature, opts: &Attr, keys: &KeyOptions<'_>, cx: &mut Ctxt) -> EvictTarget {
    let before_invocation = opts.flag("before_invocation").is_some();
    if opts.flag("all_entries").is_some() {
        if let Some((key_span, _)) = keys.key {
            cx.at(
                key_span,
                "`key` cannot be used with `all_entries`: every entry is evicted",
            );
        }
        if let Some((skip_span, _)) = keys.skip {
            cx.at(
                skip_span,
                "`skip` cannot be used with `all_entries`: every entry is evicted",
            );
        }
        if let Some((gen_span, _)) = keys.generator {
            cx.at(
                gen_span,
                "`key_generator` cannot be used with `all_entries`: every entry is evicted",
            );
        }
        return EvictTarget::AllEntries { before_invocation };
    }
    if before_invocation {
        if let Some((_, key)) = keys.key {
            check::no_result(
                sig,
                key,
                "`result` cannot be used in the key with `before_invocation`: the entry is \
                 evicted before the function runs",
                cx,
            );
        }
        return EvictTarget::Before(key_spec(sig, keys, cx));
    }
    EvictTarget::After(key_source(sig, keys, cx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn try_plan(kind: Macro, args: &str, sig: Signature) -> Result<Plan, Vec<String>> {
        let args: Args = syn::parse_str(args).map_err(|e| vec![e.to_string()])?;
        Plan::new(kind, args, &sig, &TokenStream::new())
            .map_err(|e| e.into_iter().map(|e| e.to_string()).collect())
    }

    fn setting(p: &Option<Plan>, name: &str) -> Option<SettingValue> {
        p.as_ref()?
            .settings
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    fn errors(kind: Macro, args: &str, sig: Signature) -> Vec<String> {
        match try_plan(kind, args, sig) {
            Ok(_) => Vec::new(),
            Err(e) => e,
        }
    }

    fn sig() -> Signature {
        parse_quote!(fn find(&self, db: &Db, id: u64, name: String) -> Result<User, E>)
    }

    #[test]
    fn default_key_excludes_self_and_skipped() {
        let p = try_plan(Macro::Cacheable, r#""users", skip(db)"#, sig());
        match p.map(|p| p.action) {
            Ok(Action::Cacheable {
                key: KeySpec::Args(args),
                ..
            }) => {
                let args: Vec<_> = args.iter().map(|a| a.ident.to_string()).collect();
                assert_eq!(args, ["id", "name"]);
            }
            _ => panic!("unexpected plan"),
        }
    }

    #[test]
    fn every_error_is_reported() {
        let e = errors(
            Macro::Cacheable,
            r#""", "a b", bogus, key = result.id, skip(nope), ttl = "soon", ttl = "1s""#,
            sig(),
        );
        assert_eq!(e.len(), 8, "{e:#?}");
        assert!(e[0].starts_with("unknown option `bogus` of `#[cacheable]`; expected one of"));
        assert_eq!(e[1], "duplicate option `ttl`");
        assert_eq!(e[2], "cache name is empty");
        assert!(e[3].starts_with("cache name `a b` contains ' '"));
        assert!(e[4].starts_with("invalid `ttl` \"soon\""));
        assert!(e[5].starts_with("`result` cannot be used in the key of `#[cacheable]`"));
        assert!(e[6].starts_with("`skip(nope)`: `find` has no argument `nope`"));
        assert!(e[7].starts_with("`key` and `skip` cannot be used together"));
    }

    #[test]
    fn missing_name() {
        let e = errors(Macro::Put, "key = 1", sig());
        assert!(
            e[0].starts_with("`#[cache_put]` needs a cache name"),
            "{e:?}"
        );
    }

    #[test]
    fn put_key_from_result_or_args() {
        let p = try_plan(Macro::Put, r#""u", key = result.id"#, sig());
        assert!(matches!(
            p.map(|p| p.action),
            Ok(Action::Put {
                key: KeySource::Result(_),
                ..
            })
        ));
        let p = try_plan(Macro::Put, r#""u", key = id"#, sig());
        assert!(matches!(
            p.map(|p| p.action),
            Ok(Action::Put {
                key: KeySource::Args(KeySpec::Expr(_)),
                ..
            })
        ));
    }

    #[test]
    fn evict_options() {
        let p = try_plan(
            Macro::Evict,
            r#""u", all_entries, before_invocation"#,
            sig(),
        );
        assert!(matches!(
            p.map(|p| p.action),
            Ok(Action::Evict(EvictTarget::AllEntries {
                before_invocation: true
            }))
        ));
        let p = try_plan(Macro::Evict, r#""u", key = id, before_invocation"#, sig());
        assert!(matches!(
            p.map(|p| p.action),
            Ok(Action::Evict(EvictTarget::Before(KeySpec::Expr(_))))
        ));
        let e = errors(
            Macro::Evict,
            r#""u", unless = true, ttl = "1s", all_entries, key = id"#,
            sig(),
        );
        assert_eq!(e.len(), 3, "{e:#?}");
        assert!(e[0].starts_with("`unless` is not an option of `#[cache_evict]`"));
        assert!(e[1].starts_with("`ttl` is not an option of `#[cache_evict]`"));
        assert!(e[2].starts_with("`key` cannot be used with `all_entries`"));
        let e = errors(
            Macro::Evict,
            r#""u", key = result.id, before_invocation"#,
            sig(),
        );
        assert!(e[0].starts_with("`result` cannot be used in the key with `before_invocation`"));
    }

    #[test]
    fn condition_cannot_use_result() {
        let e = errors(Macro::Put, r#""u", condition = result.ok"#, sig());
        assert!(e[0].starts_with("`result` cannot be used in `condition`"));
    }

    #[test]
    fn patterns_and_impl_trait_returns() {
        let s: Signature = parse_quote!(fn f((a, b): (u8, u8)) -> impl Clone);
        let e = errors(Macro::Cacheable, r#""u""#, s.clone());
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(e[0].contains("returning `impl Trait`"));
        assert!(e[1].contains("the argument `(a , b)` is a pattern"));
        let s: Signature = parse_quote!(fn f((a, b): (u8, u8)) -> u8);
        assert!(errors(Macro::Cacheable, r#""u", key = a"#, s).is_empty());
    }

    #[test]
    fn ttl_and_crate() {
        let p = try_plan(
            Macro::Cacheable,
            r#""u", ttl = "1m 30s", crate = "my::cachet""#,
            sig(),
        );
        let p = p.ok();
        assert_eq!(setting(&p, "ttl"), Some(SettingValue::Millis(90_000)));
        assert_eq!(
            p.map(|p| p.krate.to_token_stream().to_string()),
            Some("my :: cachet".into())
        );
        let e = errors(Macro::Cacheable, r#""u", crate = "1 +""#, sig());
        assert!(e[0].contains("is not a path"));
    }

    #[test]
    fn ttl_from_and_grace() {
        let p = try_plan(
            Macro::Put,
            r#""u", ttl_from = result.expires_in, grace = "1h""#,
            sig(),
        )
        .ok();
        assert!(p.as_ref().is_some_and(|p| p.ttl_from.is_some()));
        assert_eq!(setting(&p, "grace"), Some(SettingValue::Millis(3_600_000)));
        let p = try_plan(Macro::Cacheable, r#""u", grace = "0s""#, sig()).ok();
        assert_eq!(setting(&p, "grace"), Some(SettingValue::Millis(0)));
        let e = errors(
            Macro::Cacheable,
            r#""u", ttl_from = result.ttl, ttl = "1s", grace = "later""#,
            sig(),
        );
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(e[0].starts_with("`ttl` cannot be used with `ttl_from`"));
        assert!(e[1].starts_with("invalid `grace` \"later\""));
        let e = errors(Macro::Evict, r#""u", ttl_from = 1, grace = "1s""#, sig());
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(
            e[0].starts_with("`ttl_from` is not an option of `#[cache_evict]` (it stores nothing)")
        );
        assert!(e[1].starts_with("`grace` is not an option of `#[cache_evict]`"));
    }

    #[test]
    fn tags() {
        let p = try_plan(Macro::Put, r#""u", tags = ["a", "b"]"#, sig()).ok();
        let tags: Option<Vec<String>> = p.map(|p| p.tags.iter().map(LitStr::value).collect());
        assert_eq!(tags, Some(vec!["a".to_string(), "b".to_string()]));
        let e = errors(Macro::Cacheable, r#""u", tags = ["a", "", "a"]"#, sig());
        assert_eq!(e, ["tag is empty", "tag `a` is listed twice"]);
        let e = errors(Macro::Cacheable, r#""u", tags = []"#, sig());
        assert!(e[0].starts_with("`tags` needs at least one tag"), "{e:?}");
        let e = errors(Macro::Evict, r#""u", tags = ["a"]"#, sig());
        assert!(
            e[0].starts_with("`tags` is not an option of `#[cache_evict]` (it stores nothing)"),
            "{e:?}"
        );
    }

    #[test]
    fn detachable_functions_own_everything_they_use() {
        let detachable = |args: &str, sig: Signature| {
            try_plan(Macro::Cacheable, args, sig).map(|p| p.detachable)
        };
        assert_eq!(
            detachable(r#""u""#, parse_quote!(fn f(id: u64) -> u8)),
            Ok(true)
        );
        assert_eq!(
            detachable(
                r#""u""#,
                parse_quote!(async fn f(id: u64, name: String) -> u8)
            ),
            Ok(true)
        );
        assert_eq!(
            detachable(
                r#""u", unless = *result > 1"#,
                parse_quote!(async fn f(id: u64) -> u8)
            ),
            Ok(true)
        );
        for sig in [
            parse_quote!(async fn f(&self, id: u64) -> u8),
            parse_quote!(async fn f(self: Arc<Self>) -> u8),
            parse_quote!(async fn f<T: Clone>(t: T) -> u8),
            parse_quote!(async fn f(name: &str) -> u8),
            parse_quote!(async fn f(name: Cow<'static, str>) -> u8),
            parse_quote!(async fn f(names: Vec<&'static str>) -> u8),
            parse_quote!(async fn f(g: impl Fn() -> u8) -> u8),
        ] {
            let shown = quote::quote!(#sig).to_string();
            assert_eq!(detachable(r#""u""#, sig), Ok(false), "{shown}");
        }
        let uses_arg = detachable(
            r#""u", unless = *result > limit"#,
            parse_quote!(async fn f(limit: u8) -> u8),
        );
        assert_eq!(uses_arg, Ok(false));
        let field_named_like_arg = detachable(
            r#""u", unless = result.limit"#,
            parse_quote!(async fn f(limit: u8) -> S),
        );
        assert_eq!(field_named_like_arg, Ok(true));
        let opted_out = detachable(
            r#""u", detach = false"#,
            parse_quote!(async fn f(id: u64) -> u8),
        );
        assert_eq!(opted_out, Ok(false));
        let method: Signature = parse_quote!(async fn find(&self, id: u64) -> u8);
        let e = errors(Macro::Cacheable, r#""u", detach = true"#, method);
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(e[0].contains("a method's future borrows `self`"), "{e:?}");
    }

    #[test]
    fn timing_options() {
        let p = try_plan(
            Macro::Cacheable,
            r#""u", timeout = "200ms", hard_timeout = "2s", eager_refresh = 0.75"#,
            sig(),
        )
        .ok();
        assert_eq!(setting(&p, "timeout"), Some(SettingValue::Millis(200)));
        assert_eq!(
            setting(&p, "hard_timeout"),
            Some(SettingValue::Millis(2000))
        );
        assert_eq!(
            setting(&p, "eager_refresh"),
            Some(SettingValue::Ratio(0.75))
        );
        for bad in ["0.0", "1.0", "1", "\"0.8\"", "-0.5"] {
            let e = errors(
                Macro::Cacheable,
                &format!(r#""u", eager_refresh = {bad}"#),
                sig(),
            );
            assert!(
                !e.is_empty()
                    && e.iter().all(
                        |e| e.contains("strictly between 0 and 1") || e.starts_with("expected")
                    ),
                "{bad}: {e:?}"
            );
        }
    }
}
