//! Validation: from parsed arguments and the function's signature to a typed [`Plan`], shared
//! by the three macros. Every misuse found is collected, so one build reports them all.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::visit::Visit;
use syn::{Expr, FnArg, Ident, LitStr, Pat, Path, ReturnType, Signature};

use crate::args::{AttrArgs, Opt};

/// Which macro is being expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MacroKind {
    Cacheable,
    Put,
    Evict,
}

impl MacroKind {
    /// The attribute's name, as users write it.
    pub fn attr(self) -> &'static str {
        match self {
            MacroKind::Cacheable => "cacheable",
            MacroKind::Put => "cache_put",
            MacroKind::Evict => "cache_evict",
        }
    }

    /// The macro for an attribute name (its last path segment).
    pub fn from_attr(name: &str) -> Option<Self> {
        match name {
            "cacheable" => Some(MacroKind::Cacheable),
            "cache_put" => Some(MacroKind::Put),
            "cache_evict" => Some(MacroKind::Evict),
            _ => None,
        }
    }

    /// The options this macro accepts, in the order the docs list them.
    fn options(self) -> &'static [&'static str] {
        match self {
            MacroKind::Cacheable => &[
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
                "detach",
                "crate",
            ],
            MacroKind::Put => &[
                "key",
                "skip",
                "condition",
                "unless",
                "ttl",
                "ttl_from",
                "grace",
                "tags",
                "crate",
            ],
            MacroKind::Evict => &[
                "key",
                "skip",
                "condition",
                "all_entries",
                "before_invocation",
                "crate",
            ],
        }
    }
}

/// Everything one annotation asks for, validated.
pub(crate) struct Plan {
    pub kind: MacroKind,
    /// The root of the generated paths (`::cachet` unless `crate = ".."`).
    pub krate: Path,
    pub caches: Vec<LitStr>,
    pub ttl_millis: Option<u64>,
    /// `tags = [..]`: carried by every entry the function writes.
    pub tags: Vec<LitStr>,
    pub condition: Option<Expr>,
    pub action: Action,
    /// `ttl_from = EXPR` (over `result`), in place of a fixed TTL.
    pub ttl_from: Option<Expr>,
    /// `grace = ".."`, in milliseconds (zero: no grace).
    pub grace_millis: Option<u64>,
    /// `timeout = ".."`: the soft timeout override.
    pub timeout_millis: Option<u64>,
    /// `hard_timeout = ".."`: the hard timeout override.
    pub hard_timeout_millis: Option<u64>,
    /// `eager_refresh = 0.8`: the eager refresh override.
    pub eager_refresh: Option<f64>,
    /// Whether the function's future may finish in the background (`#[cacheable]` on an
    /// `async fn` only).
    pub detachable: bool,
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

/// Collects errors so that every misuse is reported at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(e) => e.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The options of one annotation, each at most once, not yet checked against each other.
#[derive(Default)]
struct Options {
    key: Option<(Span, Expr)>,
    skip: Option<(Span, Vec<Ident>)>,
    condition: Option<Expr>,
    unless: Option<Expr>,
    ttl: Option<LitStr>,
    tags: Option<(Span, Vec<LitStr>)>,
    krate: Option<LitStr>,
    all_entries: Option<Span>,
    before_invocation: Option<Span>,
    ttl_from: Option<Expr>,
    grace: Option<LitStr>,
    timeout: Option<LitStr>,
    hard_timeout: Option<LitStr>,
    eager_refresh: Option<syn::Lit>,
    detach: Option<syn::LitBool>,
}

/// Validates one annotation's arguments against the function it is on. `attr` is where an
/// error about the whole attribute (no cache name) points: the attribute's tokens, or none
/// for the attribute being expanded (its call site).
pub(crate) fn plan(
    kind: MacroKind,
    args: AttrArgs,
    sig: &Signature,
    attr: &TokenStream,
) -> syn::Result<Plan> {
    let mut errors = Errors::default();
    let opts = collect_options(kind, args.options, &mut errors);
    let caches = check_names(kind, args.names, attr, &mut errors);
    let krate = match &opts.krate {
        Some(lit) => lit.parse::<Path>().unwrap_or_else(|_| {
            errors.at(
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
    let ttl_millis = opts
        .ttl
        .as_ref()
        .and_then(|lit| parse_ttl(lit, &mut errors));
    let grace_millis = opts
        .grace
        .as_ref()
        .and_then(|lit| parse_grace(lit, &mut errors));
    let tags = opts
        .tags
        .clone()
        .map(|(span, tags)| check_tags(span, tags, &mut errors))
        .unwrap_or_default();
    check_signature(kind, sig, &mut errors);

    let arg_named_result = fn_args(sig).any(|(ident, _)| ident.is_some_and(|i| i == "result"));
    if let Some(cond) = &opts.condition {
        if let (Some(span), false) = (find_result(cond), arg_named_result) {
            errors.at(
                span,
                format!(
                    "`result` cannot be used in `condition`: the condition decides whether the \
                     cache is used before `{}` runs; use `unless = ..` to decide over the result",
                    sig.ident
                ),
            );
        }
    }

    let action = match kind {
        MacroKind::Cacheable => {
            if let (Some((_, key)), false) = (&opts.key, arg_named_result) {
                if let Some(span) = find_result(key) {
                    errors.at(
                        span,
                        "`result` cannot be used in the key of `#[cacheable]`: the key is \
                         needed to look the value up, before the function runs",
                    );
                }
            }
            let key = key_spec(sig, opts.key.clone(), opts.skip.clone(), &mut errors);
            Action::Cacheable {
                key,
                unless: opts.unless.clone(),
            }
        }
        MacroKind::Put => Action::Put {
            key: key_source(sig, &opts, &mut errors),
            unless: opts.unless.clone(),
        },
        MacroKind::Evict => Action::Evict(evict_target(sig, &opts, arg_named_result, &mut errors)),
    };
    let timeout_millis = opts
        .timeout
        .as_ref()
        .and_then(|lit| parse_duration(lit, "timeout", &mut errors));
    let hard_timeout_millis = opts
        .hard_timeout
        .as_ref()
        .and_then(|lit| parse_duration(lit, "hard_timeout", &mut errors));
    let eager_refresh = opts
        .eager_refresh
        .as_ref()
        .and_then(|lit| parse_eager_refresh(lit, &mut errors));
    let attached = why_attached(sig, opts.unless.as_ref(), opts.ttl_from.as_ref());
    let detachable = match (&opts.detach, &attached) {
        (Some(lit), _) if !lit.value => false,
        (Some(lit), Some(why)) => {
            errors.at(
                lit.span,
                format!(
                    "`detach = true`: `{}` cannot finish in the background: {why}; remove the option",
                    sig.ident
                ),
            );
            false
        }
        _ => kind == MacroKind::Cacheable && attached.is_none(),
    };
    errors.finish()?;
    Ok(Plan {
        kind,
        krate,
        caches,
        ttl_millis,
        tags,
        condition: opts.condition,
        action,
        ttl_from: opts.ttl_from,
        grace_millis,
        timeout_millis,
        hard_timeout_millis,
        eager_refresh,
        detachable,
    })
}

/// Why a function's future cannot outlive its call, if it cannot: decided by its
/// signature, since `'static` and `Send` cannot be probed from the generated code.
fn why_attached(sig: &Signature, unless: Option<&Expr>, ttl_from: Option<&Expr>) -> Option<String> {
    if sig.receiver().is_some() {
        return Some("a method's future borrows `self`".into());
    }
    if !sig.generics.params.is_empty() {
        return Some("it has generic parameters".into());
    }
    struct Borrows(bool);
    impl Visit<'_> for Borrows {
        fn visit_type_reference(&mut self, _: &syn::TypeReference) {
            self.0 = true;
        }
        fn visit_lifetime(&mut self, _: &syn::Lifetime) {
            self.0 = true;
        }
        fn visit_type_impl_trait(&mut self, _: &syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    for (ident, pt) in fn_args(sig) {
        let mut borrows = Borrows(false);
        borrows.visit_type(&pt.ty);
        if borrows.0 {
            let name = ident.map_or_else(|| pt.pat.to_token_stream().to_string(), Ident::to_string);
            return Some(format!(
                "its argument `{name}` is borrowed or has a lifetime or `impl Trait` type"
            ));
        }
    }
    let names: Vec<&Ident> = fn_args(sig).filter_map(|(ident, _)| ident).collect();
    if let Some(arg) = unless.and_then(|u| find_ident(u, &names)) {
        return Some(format!(
            "its `unless` uses the argument `{arg}`, which the function's future owns"
        ));
    }
    if let Some(arg) = ttl_from.and_then(|t| find_ident(t, &names)) {
        return Some(format!(
            "its `ttl_from` uses the argument `{arg}`, which the function's future owns"
        ));
    }
    None
}

/// The first of `names` used as a variable in `expr` (token scan, as [`find_result`]).
fn find_ident(expr: &Expr, names: &[&Ident]) -> Option<Ident> {
    fn scan(tokens: TokenStream, names: &[&Ident]) -> Option<Ident> {
        let mut after_dot_or_colon = false;
        for tt in tokens {
            match &tt {
                TokenTree::Ident(i) if !after_dot_or_colon && names.contains(&i) => {
                    return Some(i.clone())
                }
                TokenTree::Group(g) => {
                    if let Some(found) = scan(g.stream(), names) {
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
    scan(expr.to_token_stream(), names)
}

/// Parses `eager_refresh = 0.8`: a float strictly between 0 and 1.
fn parse_eager_refresh(lit: &syn::Lit, errors: &mut Errors) -> Option<f64> {
    let expected = "`eager_refresh` is the fraction of the TTL after which a hit refreshes the \
                    entry in the background: a number strictly between 0 and 1, as in \
                    `eager_refresh = 0.8`";
    let ratio = match lit {
        syn::Lit::Float(f) => f.base10_parse::<f64>().ok(),
        _ => None,
    };
    match ratio {
        Some(r) if r > 0.0 && r < 1.0 => Some(r),
        _ => {
            errors.at(lit.span(), expected);
            None
        }
    }
}

/// Sorts the options into their slots, reporting unknown, misplaced and duplicate ones.
fn collect_options(kind: MacroKind, options: Vec<Opt>, errors: &mut Errors) -> Options {
    let mut out = Options::default();
    let mut seen: Vec<String> = Vec::new();
    for opt in options {
        let name = opt.name();
        let known = kind.options();
        if !known.contains(&name.as_str()) {
            let list = known
                .iter()
                .map(|o| format!("`{o}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let why = match &opt {
                Opt::Unless(..)
                | Opt::Ttl(..)
                | Opt::TtlFrom(..)
                | Opt::Grace(..)
                | Opt::Tags(..) => " (it stores nothing)",
                Opt::AllEntries(..) | Opt::BeforeInvocation(..) => " (it evicts nothing)",
                _ => "",
            };
            let what = if matches!(opt, Opt::Unknown(_)) {
                format!("unknown option `{name}` of `#[{}]`", kind.attr())
            } else {
                format!("`{name}` is not an option of `#[{}]`{why}", kind.attr())
            };
            errors.at(opt.span(), format!("{what}; expected one of: {list}"));
            continue;
        }
        if seen.contains(&name) {
            errors.at(opt.span(), format!("duplicate option `{name}`"));
            continue;
        }
        // One TTL: fixed or computed, not both; reported at whichever comes second.
        let other = match opt {
            Opt::Ttl(..) => Some("ttl_from"),
            Opt::TtlFrom(..) => Some("ttl"),
            _ => None,
        };
        if let Some(other) = other.filter(|o| seen.iter().any(|s| s == o)) {
            errors.at(
                opt.span(),
                format!(
                    "`{name}` cannot be used with `{other}`: `ttl = \"..\"` is one TTL for every \
                     value, `ttl_from = ..` computes each value's own; drop one"
                ),
            );
            continue;
        }
        seen.push(name);
        match opt {
            Opt::Key(k, e) => out.key = Some((k.span, e)),
            Opt::Skip(k, idents) => out.skip = Some((k.span, idents)),
            Opt::Condition(_, e) => out.condition = Some(e),
            Opt::Unless(_, e) => out.unless = Some(e),
            Opt::Ttl(_, lit) => out.ttl = Some(lit),
            Opt::Tags(k, tags) => out.tags = Some((k.span, tags)),
            Opt::Crate(_, lit) => out.krate = Some(lit),
            Opt::AllEntries(k) => out.all_entries = Some(k.span),
            Opt::BeforeInvocation(k) => out.before_invocation = Some(k.span),
            Opt::TtlFrom(_, e) => out.ttl_from = Some(e),
            Opt::Grace(_, lit) => out.grace = Some(lit),
            Opt::Timeout(_, lit) => out.timeout = Some(lit),
            Opt::HardTimeout(_, lit) => out.hard_timeout = Some(lit),
            Opt::EagerRefresh(_, lit) => out.eager_refresh = Some(lit),
            Opt::Detach(_, lit) => out.detach = Some(lit),
            Opt::Unknown(_) => {}
        }
    }
    out
}

/// Checks the cache names: at least one, each non-empty and safe inside a stored key.
fn check_names(
    kind: MacroKind,
    names: Vec<LitStr>,
    attr: &TokenStream,
    errors: &mut Errors,
) -> Vec<LitStr> {
    if names.is_empty() {
        errors.push(syn::Error::new_spanned(
            attr,
            format!(
                "`#[{0}]` needs a cache name, as in `#[{0}(\"users\")]`, or \
                 `#[cache_config(cache = \"users\")]` on the impl block",
                kind.attr()
            ),
        ));
    }
    for (i, name) in names.iter().enumerate() {
        if let Err(msg) = validate_name(&name.value()) {
            errors.at(name.span(), msg);
        } else if names[..i].iter().any(|n| n.value() == name.value()) {
            errors.at(
                name.span(),
                format!("cache `{}` is named twice", name.value()),
            );
        }
    }
    names
}

/// A cache name must be non-empty, without whitespace or the characters that have a meaning
/// in stored keys and Redis patterns.
pub(crate) fn validate_name(name: &str) -> Result<(), String> {
    const FORBIDDEN: &[char] = &[':', '#', '*', '?', '[', ']', '\\'];
    if name.is_empty() {
        return Err("cache name is empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || FORBIDDEN.contains(c))
    {
        return Err(format!(
            "cache name `{}` contains {:?}; names must not contain whitespace or any of \
             `: # * ? [ ] \\`",
            name.escape_default(),
            c
        ));
    }
    Ok(())
}

/// Checks `tags = [..]`: at least one tag, none empty, none twice. `span` is the option's.
fn check_tags(span: Span, tags: Vec<LitStr>, errors: &mut Errors) -> Vec<LitStr> {
    if tags.is_empty() {
        errors.at(
            span,
            "`tags` needs at least one tag, as in `tags = [\"catalog\"]`; or leave the option out",
        );
    }
    for (i, tag) in tags.iter().enumerate() {
        if tag.value().is_empty() {
            errors.at(tag.span(), "tag is empty");
        } else if tags[..i].iter().any(|t| t.value() == tag.value()) {
            errors.at(tag.span(), format!("tag `{}` is listed twice", tag.value()));
        }
    }
    tags
}

/// Parses `ttl = ".."` at compile time.
fn parse_ttl(lit: &LitStr, errors: &mut Errors) -> Option<u64> {
    parse_duration(lit, "ttl", errors)
}

/// Parses a duration option (`ttl`, `timeout`, `hard_timeout`) at compile time.
fn parse_duration(lit: &LitStr, name: &str, errors: &mut Errors) -> Option<u64> {
    match humantime::parse_duration(&lit.value()) {
        Ok(d) if d.as_millis() == 0 => {
            errors.at(lit.span(), format!("`{name}` must be at least 1ms"));
            None
        }
        Ok(d) => Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        Err(e) => {
            errors.at(
                lit.span(),
                format!(
                    "invalid `{name}` \"{}\": {e}; write a duration such as \"30s\", \"5m\" or \"1h 30m\"",
                    lit.value()
                ),
            );
            None
        }
    }
}

/// Parses `grace = ".."` at compile time; `"0s"` turns grace off for the function's entries.
fn parse_grace(lit: &LitStr, errors: &mut Errors) -> Option<u64> {
    match humantime::parse_duration(&lit.value()) {
        Ok(d) => Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        Err(e) => {
            errors.at(
                lit.span(),
                format!(
                    "invalid `grace` \"{}\": {e}; write a duration such as \"30s\", \"6h\" or \"1h 30m\" \
                     (\"0s\" for none)",
                    lit.value()
                ),
            );
            None
        }
    }
}

/// A `const fn` cannot call the runtime; an `impl Trait` return type cannot be named in the
/// generated code.
fn check_signature(kind: MacroKind, sig: &Signature, errors: &mut Errors) {
    if let Some(c) = &sig.constness {
        errors.at(
            c.span,
            format!(
                "`#[{}]` cannot be used on a `const fn`: caching happens at run time",
                kind.attr()
            ),
        );
    }
    struct FindImpl(Option<Span>);
    impl Visit<'_> for FindImpl {
        fn visit_type_impl_trait(&mut self, t: &syn::TypeImplTrait) {
            if self.0.is_none() {
                self.0 = Some(t.impl_token.span);
            }
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        let mut find = FindImpl(None);
        find.visit_type(ty);
        if find.0.is_some() {
            errors.push(syn::Error::new_spanned(
                ty,
                format!(
                    "`#[{}]` cannot be used on a function returning `impl Trait`: the cached \
                     value needs a type that can be named; return a concrete type",
                    kind.attr()
                ),
            ));
        }
    }
}

/// The function's arguments other than `self`: their name (if a plain identifier pattern)
/// and the argument itself.
fn fn_args(sig: &Signature) -> impl Iterator<Item = (Option<&Ident>, &syn::PatType)> {
    sig.inputs.iter().filter_map(|arg| match arg {
        FnArg::Receiver(_) => None,
        FnArg::Typed(pt) => Some((
            match &*pt.pat {
                Pat::Ident(pi) => Some(&pi.ident),
                _ => None,
            },
            pt,
        )),
    })
}

/// The key of a `cacheable`, or of a `before_invocation` eviction.
fn key_spec(
    sig: &Signature,
    key: Option<(Span, Expr)>,
    skip: Option<(Span, Vec<Ident>)>,
    errors: &mut Errors,
) -> KeySpec {
    match (key, skip) {
        (Some((_, expr)), Some((skip_span, skip))) => {
            check_skip(sig, &skip, errors);
            errors.at(
                skip_span,
                "`key` and `skip` cannot be used together: `skip` leaves arguments out of the \
                 default key, `key = ..` replaces it; drop one",
            );
            KeySpec::Expr(expr)
        }
        (Some((_, expr)), None) => KeySpec::Expr(expr),
        (None, skip) => KeySpec::Args(default_key(sig, skip.map(|s| s.1), errors)),
    }
}

/// The arguments of the default key, after `skip`.
fn default_key(sig: &Signature, skip: Option<Vec<Ident>>, errors: &mut Errors) -> Vec<KeyArg> {
    let skip = skip.unwrap_or_default();
    check_skip(sig, &skip, errors);
    let mut keyed = Vec::new();
    for (ident, pt) in fn_args(sig) {
        match ident {
            Some(ident) if skip.contains(ident) => {}
            Some(ident) => keyed.push(KeyArg {
                ident: ident.clone(),
                is_ref: matches!(&*pt.ty, syn::Type::Reference(_)),
            }),
            None => errors.push(syn::Error::new_spanned(
                &pt.pat,
                format!(
                    "the argument `{}` is a pattern, not a name, so it cannot be part of the \
                     default key of `{}`: bind it to a name and leave it out with `skip(..)`, \
                     or name the key with `key = ..`",
                    pt.pat.to_token_stream(),
                    sig.ident
                ),
            )),
        }
    }
    keyed
}

/// Each name in `skip(..)` must be an argument, once.
fn check_skip(sig: &Signature, skip: &[Ident], errors: &mut Errors) {
    for (i, s) in skip.iter().enumerate() {
        if s == "self" {
            errors.at(
                s.span(),
                "`self` is never part of the default key; remove it from `skip`",
            );
        } else if skip[..i].contains(s) {
            errors.at(s.span(), format!("`{s}` is skipped twice"));
        } else if !fn_args(sig).any(|(ident, _)| ident == Some(s)) {
            let names: Vec<String> = fn_args(sig)
                .filter_map(|(ident, _)| ident.map(|i| format!("`{i}`")))
                .collect();
            let hint = if names.is_empty() {
                format!("`{}` has no named arguments", sig.ident)
            } else {
                format!("its arguments are {}", names.join(", "))
            };
            errors.at(
                s.span(),
                format!("`skip({s})`: `{}` has no argument `{s}`; {hint}", sig.ident),
            );
        }
    }
}

/// The key of a `cache_put`, or of an eviction after the function ran.
fn key_source(sig: &Signature, opts: &Options, errors: &mut Errors) -> KeySource {
    if let (Some((_, expr)), None) = (&opts.key, &opts.skip) {
        if find_result(expr).is_some() {
            return KeySource::Result(expr.clone());
        }
    }
    KeySource::Args(key_spec(sig, opts.key.clone(), opts.skip.clone(), errors))
}

fn evict_target(
    sig: &Signature,
    opts: &Options,
    arg_named_result: bool,
    errors: &mut Errors,
) -> EvictTarget {
    if opts.all_entries.is_some() {
        if let Some((key_span, _)) = &opts.key {
            errors.at(
                *key_span,
                "`key` cannot be used with `all_entries`: every entry is evicted",
            );
        }
        if let Some((skip_span, _)) = &opts.skip {
            errors.at(
                *skip_span,
                "`skip` cannot be used with `all_entries`: every entry is evicted",
            );
        }
        return EvictTarget::AllEntries {
            before_invocation: opts.before_invocation.is_some(),
        };
    }
    if opts.before_invocation.is_some() {
        if let (Some((_, key)), false) = (&opts.key, arg_named_result) {
            if let Some(span) = find_result(key) {
                errors.at(
                    span,
                    "`result` cannot be used in the key with `before_invocation`: the entry is \
                     evicted before the function runs",
                );
            }
        }
        return EvictTarget::Before(key_spec(sig, opts.key.clone(), opts.skip.clone(), errors));
    }
    EvictTarget::After(key_source(sig, opts, errors))
}

/// Where an expression uses `result` (the function's value), if it does. Scans tokens, so
/// uses inside macro calls (`format!("{}", result.id)`) count too; `x.result` and
/// `path::result` do not.
pub(crate) fn find_result(expr: &Expr) -> Option<Span> {
    fn scan(tokens: TokenStream) -> Option<Span> {
        let mut after_dot_or_colon = false;
        for tt in tokens {
            match &tt {
                TokenTree::Ident(i) if i == "result" && !after_dot_or_colon => {
                    return Some(i.span())
                }
                TokenTree::Group(g) => {
                    if let Some(span) = scan(g.stream()) {
                        return Some(span);
                    }
                }
                _ => {}
            }
            after_dot_or_colon =
                matches!(&tt, TokenTree::Punct(p) if p.as_char() == '.' || p.as_char() == ':');
        }
        None
    }
    scan(expr.to_token_stream())
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn try_plan(kind: MacroKind, args: &str, sig: Signature) -> Result<Plan, Vec<String>> {
        let args: AttrArgs = syn::parse_str(args).map_err(|e| vec![e.to_string()])?;
        plan(kind, args, &sig, &TokenStream::new())
            .map_err(|e| e.into_iter().map(|e| e.to_string()).collect())
    }

    fn errors(kind: MacroKind, args: &str, sig: Signature) -> Vec<String> {
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
        let p = try_plan(MacroKind::Cacheable, r#""users", skip(db)"#, sig());
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
            MacroKind::Cacheable,
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
        let e = errors(MacroKind::Put, "key = 1", sig());
        assert!(
            e[0].starts_with("`#[cache_put]` needs a cache name"),
            "{e:?}"
        );
    }

    #[test]
    fn put_key_from_result_or_args() {
        let p = try_plan(MacroKind::Put, r#""u", key = result.id"#, sig());
        assert!(matches!(
            p.map(|p| p.action),
            Ok(Action::Put {
                key: KeySource::Result(_),
                ..
            })
        ));
        let p = try_plan(MacroKind::Put, r#""u", key = id"#, sig());
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
            MacroKind::Evict,
            r#""u", all_entries, before_invocation"#,
            sig(),
        );
        assert!(matches!(
            p.map(|p| p.action),
            Ok(Action::Evict(EvictTarget::AllEntries {
                before_invocation: true
            }))
        ));
        let p = try_plan(
            MacroKind::Evict,
            r#""u", key = id, before_invocation"#,
            sig(),
        );
        assert!(matches!(
            p.map(|p| p.action),
            Ok(Action::Evict(EvictTarget::Before(KeySpec::Expr(_))))
        ));
        let e = errors(
            MacroKind::Evict,
            r#""u", unless = true, ttl = "1s", all_entries, key = id"#,
            sig(),
        );
        assert_eq!(e.len(), 3, "{e:#?}");
        assert!(e[0].starts_with("`unless` is not an option of `#[cache_evict]`"));
        assert!(e[1].starts_with("`ttl` is not an option of `#[cache_evict]`"));
        assert!(e[2].starts_with("`key` cannot be used with `all_entries`"));
        let e = errors(
            MacroKind::Evict,
            r#""u", key = result.id, before_invocation"#,
            sig(),
        );
        assert!(e[0].starts_with("`result` cannot be used in the key with `before_invocation`"));
    }

    #[test]
    fn condition_cannot_use_result() {
        let e = errors(MacroKind::Put, r#""u", condition = result.ok"#, sig());
        assert!(e[0].starts_with("`result` cannot be used in `condition`"));
    }

    #[test]
    fn patterns_and_impl_trait_returns() {
        let s: Signature = parse_quote!(fn f((a, b): (u8, u8)) -> impl Clone);
        let e = errors(MacroKind::Cacheable, r#""u""#, s.clone());
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(e[0].contains("returning `impl Trait`"));
        assert!(e[1].contains("the argument `(a , b)` is a pattern"));
        let s: Signature = parse_quote!(fn f((a, b): (u8, u8)) -> u8);
        assert!(errors(MacroKind::Cacheable, r#""u", key = a"#, s).is_empty());
    }

    #[test]
    fn ttl_and_crate() {
        let p = try_plan(
            MacroKind::Cacheable,
            r#""u", ttl = "1m 30s", crate = "my::cachet""#,
            sig(),
        );
        let p = p.ok();
        assert_eq!(p.as_ref().and_then(|p| p.ttl_millis), Some(90_000));
        assert_eq!(
            p.map(|p| p.krate.to_token_stream().to_string()),
            Some("my :: cachet".into())
        );
        let e = errors(MacroKind::Cacheable, r#""u", crate = "1 +""#, sig());
        assert!(e[0].contains("is not a path"));
    }

    #[test]
    fn ttl_from_and_grace() {
        let p = try_plan(
            MacroKind::Put,
            r#""u", ttl_from = result.expires_in, grace = "1h""#,
            sig(),
        )
        .ok();
        assert!(p.as_ref().is_some_and(|p| p.ttl_from.is_some()));
        assert_eq!(p.and_then(|p| p.grace_millis), Some(3_600_000));
        let p = try_plan(MacroKind::Cacheable, r#""u", grace = "0s""#, sig()).ok();
        assert_eq!(p.and_then(|p| p.grace_millis), Some(0));
        let e = errors(
            MacroKind::Cacheable,
            r#""u", ttl_from = result.ttl, ttl = "1s", grace = "later""#,
            sig(),
        );
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(e[0].starts_with("`ttl` cannot be used with `ttl_from`"));
        assert!(e[1].starts_with("invalid `grace` \"later\""));
        let e = errors(
            MacroKind::Evict,
            r#""u", ttl_from = 1, grace = "1s""#,
            sig(),
        );
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(
            e[0].starts_with("`ttl_from` is not an option of `#[cache_evict]` (it stores nothing)")
        );
        assert!(e[1].starts_with("`grace` is not an option of `#[cache_evict]`"));
    }

    #[test]
    fn tags() {
        let p = try_plan(MacroKind::Put, r#""u", tags = ["a", "b"]"#, sig()).ok();
        let tags: Option<Vec<String>> = p.map(|p| p.tags.iter().map(LitStr::value).collect());
        assert_eq!(tags, Some(vec!["a".to_string(), "b".to_string()]));
        let e = errors(MacroKind::Cacheable, r#""u", tags = ["a", "", "a"]"#, sig());
        assert_eq!(e, ["tag is empty", "tag `a` is listed twice"]);
        let e = errors(MacroKind::Cacheable, r#""u", tags = []"#, sig());
        assert!(e[0].starts_with("`tags` needs at least one tag"), "{e:?}");
        let e = errors(MacroKind::Evict, r#""u", tags = ["a"]"#, sig());
        assert!(
            e[0].starts_with("`tags` is not an option of `#[cache_evict]` (it stores nothing)"),
            "{e:?}"
        );
    }

    #[test]
    fn detachable_functions_own_everything_they_use() {
        let detachable = |args: &str, sig: Signature| {
            try_plan(MacroKind::Cacheable, args, sig).map(|p| p.detachable)
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
        let e = errors(MacroKind::Cacheable, r#""u", detach = true"#, method);
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(e[0].contains("a method's future borrows `self`"), "{e:?}");
    }

    #[test]
    fn timing_options() {
        let p = try_plan(
            MacroKind::Cacheable,
            r#""u", timeout = "200ms", hard_timeout = "2s", eager_refresh = 0.75"#,
            sig(),
        )
        .ok();
        assert_eq!(p.as_ref().and_then(|p| p.timeout_millis), Some(200));
        assert_eq!(p.as_ref().and_then(|p| p.hard_timeout_millis), Some(2000));
        assert_eq!(p.as_ref().and_then(|p| p.eager_refresh), Some(0.75));
        for bad in ["0.0", "1.0", "1", "\"0.8\"", "-0.5"] {
            let e = errors(
                MacroKind::Cacheable,
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

    #[test]
    fn names() {
        assert!(validate_name("users").is_ok());
        assert!(validate_name("user-profiles.v2").is_ok());
        for bad in ["", "a:b", "a#", "*", "a?", "[a]", "a\\b", "a\tb"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn finds_result() {
        let at = |e: Expr| find_result(&e).is_some();
        assert!(at(parse_quote!(result.id)));
        assert!(at(parse_quote!((tenant, result.id))));
        assert!(at(parse_quote!(format!("{}", result))));
        assert!(!at(parse_quote!(x.result)));
        assert!(!at(parse_quote!(std::result::Result::Ok(1))));
    }
}
