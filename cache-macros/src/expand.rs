//! Code generation: a validated [`Plan`] per annotation becomes a layer around the body.
//!
//! The function keeps its attributes, docs, visibility and signature; only its body changes.
//! Every helper (the operation's `static`, the key checks) lives inside the body, and
//! generated paths are absolute (`::core::..`, `#krate::__private::..`).

use crate::type_text::tidy;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Expr, Ident, ReturnType, Type};

use crate::internals::ast::{Action, EvictTarget, Func, KeyArg, KeySource, KeySpec, Plan};
use crate::internals::attr::{Macro, SettingValue};
use crate::internals::scan::find_result;

/// What the layers need to know about the annotated function.
struct FnInfo {
    /// The function's name, for messages and the registration.
    name: String,
    /// The declared return type (`()` when none).
    ret: TokenStream,
    /// The cached value's type as written, for the registration.
    value_type: String,
    is_async: bool,
    ident_span: Span,
    /// Where errors about the cached value's type point: the return type.
    ret_span: Span,
    /// The signature, for the key's type as written.
    sig: syn::Signature,
    /// The type parameters of its `impl` block, when known (a key of one has no one type).
    impl_generics: Vec<Ident>,
}

/// The function with its body wrapped by one layer per plan, the first plan outermost, and
/// `prelude` first in the body.
pub(crate) fn expand_fn(func: &Func, plans: &[Plan], prelude: &TokenStream) -> TokenStream {
    let info = FnInfo {
        name: func
            .sig
            .ident
            .to_string()
            .trim_start_matches("r#")
            .to_owned(),
        ret: match &func.sig.output {
            ReturnType::Default => quote!(()),
            ReturnType::Type(_, ty) => ty.to_token_stream(),
        },
        value_type: value_type(&func.sig.output),
        is_async: func.sig.asyncness.is_some(),
        ident_span: func.sig.ident.span(),
        ret_span: match &func.sig.output {
            ReturnType::Default => func.sig.ident.span(),
            ReturnType::Type(_, ty) => ty.span(),
        },
        sig: func.sig.clone(),
        impl_generics: func.impl_generics.clone(),
    };
    let mut body = func.body.clone();
    for plan in plans.iter().rev() {
        body = layer(plan, &info, body);
    }
    let Func {
        attrs: outer,
        inner,
        vis,
        sig,
        ..
    } = func;
    // The body's inner attributes (`#![allow(..)]`) stay at the top of the body, where they
    // apply to the generated code too.
    quote! {
        #(#outer)*
        #vis #sig {
            #(#inner)*
            #prelude
            #body
        }
    }
}

/// Internal identifiers: invisible to the user's code.
fn internal(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// One annotation's layer around `body` (a block): a block itself.
fn layer(plan: &Plan, info: &FnInfo, body: TokenStream) -> TokenStream {
    let krate = &plan.krate;
    let p = quote!(#krate::__private);
    let op = operation(plan, info, &p);
    // At the return type: an unmet `CacheValue` bound on the shape's value points there.
    let shape = Ident::new(
        "__cachet_shape",
        Span::mixed_site().located_at(info.ret_span),
    );
    let ret = &info.ret;
    let mut checks = KeyChecks::new(&p, &info.name, &plan.typed);
    let Call { lets, entry, args } = call(plan, info, &p, &shape, &mut checks);
    let body = if info.is_async {
        // The typed `let` makes `?` and `return` in the body type-check (async-trait's way);
        // a body that ends in `return` makes it diverge, which is the user's code, not ours.
        let out = internal("__ret");
        quote! {
            async move {
                #[allow(clippy::diverging_sub_expression)]
                let #out: #ret = #body;
                #[allow(unreachable_code)]
                #out
            }
        }
    } else {
        quote!(move || -> #ret #body)
    };
    let items = checks.items;
    // A typed cache's value type, checked at the return type (an eviction stores nothing).
    let value_checks = match plan.action {
        Action::Cacheable { .. } | Action::Put { .. } if !plan.typed.is_empty() => {
            crate::typed::Typed {
                paths: &plan.typed,
                p: &p,
                function: &info.name,
            }
            .value_checks(&shape, info.ret_span)
        }
        _ => TokenStream::new(),
    };
    // Spanned at the return type: an unmet `CacheValue` bound of the runtime points there.
    let op_ref = internal("__cachet_op");
    let call = quote_spanned!(info.ret_span=> #entry(#shape, #op_ref, #args #body));
    let call = if info.is_async {
        quote!(#call.await)
    } else {
        call
    };
    // The call's operation: the annotation's, or, with `cache_name = ..`, the one for the
    // name computed from the arguments (made once per name).
    let pick_op = match &plan.cache_name {
        Some(expr) => {
            let name = quote_spanned!(expr.span()=> #p::cache_name(&(#expr)));
            quote! {
                static __CACHET_NAMED: #p::NamedOps = #p::NamedOps::new();
                let #op_ref: &'static #p::Operation = __CACHET_NAMED.get(&__CACHET_OP, #name);
            }
        }
        None => quote!(let #op_ref: &'static #p::Operation = &__CACHET_OP;),
    };
    quote! {{
        #op
        #(#items)*
        #pick_op
        let #shape = {
            use #p::{ReturnsOption as _, ReturnsResult as _, ReturnsValue as _};
            (&#p::Returns::<#ret>::new()).shape()
        };
        #value_checks
        // What the callers that waited for a failing leader return (single flight).
        let #shape = {
            use #p::{ConvertsError as _, KeepsShape as _, SharesError as _};
            (&&&#p::FailureOf::new(#shape)).failure()
        };
        #lets
        #call
    }}
}

/// The `static` describing the annotation, and its registration.
fn operation(plan: &Plan, info: &FnInfo, p: &TokenStream) -> TokenStream {
    let kind = match &plan.action {
        Action::Cacheable { .. } => quote!(#p::OperationKind::Cacheable),
        Action::Put { .. } => quote!(#p::OperationKind::Put),
        Action::Evict(target) => {
            let (all, before) = match target {
                EvictTarget::AllEntries { before_invocation } => (true, *before_invocation),
                EvictTarget::Before(_) => (false, true),
                EvictTarget::After(_) => (false, false),
            };
            quote!(#p::OperationKind::Evict { all_entries: #all, before_invocation: #before })
        }
    };
    let caches = &plan.caches;
    let (caches, typed) = if plan.typed.is_empty() {
        (quote!(&[#(#caches),*]), TokenStream::new())
    } else {
        crate::typed::Typed {
            paths: &plan.typed,
            p,
            function: &info.name,
        }
        .operation()
    };
    let name = &info.name;
    let after_commit = plan.after_commit.then(|| quote!(.after_commit()));
    let key_type = crate::key_type::key_type(&plan.action, &info.sig, &info.impl_generics);
    let value_type = &info.value_type;
    let line = quote_spanned!(info.ident_span=> ::core::line!());
    let tags = &plan.tags;
    let tags = (!tags.is_empty()).then(|| quote!(.with_tags(&[#(#tags),*])));
    // The annotation's layer of the option set: one `const` setter per setting written.
    let settings = setters(&plan.settings);
    // `manager = path`: a function returning the manager, spanned at the path so a static
    // that is not a manager is reported there.
    let manager = plan.manager.as_ref().map(|path| {
        let name = internal("__cachet_manager");
        let as_manager = quote_spanned!(path.span()=> &#path);
        quote! {
            .with_manager({
                fn #name() -> &'static (dyn ::core::any::Any + ::core::marker::Send + ::core::marker::Sync) {
                    let manager: &'static #p::CacheManager = #as_manager;
                    manager
                }
                #name
            })
        }
    });
    quote! {
        static __CACHET_OP: #p::Operation = #p::Operation::new(
            #kind,
            #caches,
            #name,
            ::core::module_path!(),
            ::core::file!(),
            #line,
            #value_type,
        )
        .with_options(#p::CacheOptions::new() #settings)
        .with_key_type(#key_type)
        #typed
        #after_commit
        #tags
        #manager;
        #p::inventory::submit! { #p::Declaration(&__CACHET_OP) }
    }
}

/// The `const` setter calls of an option set's layer, one per setting written:
/// `.ttl(Duration::from_millis(300000)).grace(..)`.
pub(crate) fn setters(settings: &[(&str, SettingValue)]) -> TokenStream {
    let calls = settings.iter().map(|(name, value)| {
        let setter = format_ident!("{name}");
        match value {
            SettingValue::Millis(ms) => quote!(.#setter(::core::time::Duration::from_millis(#ms))),
            SettingValue::Ratio(ratio) => {
                let ratio = proc_macro2::Literal::f64_suffixed(*ratio);
                quote!(.#setter(#ratio))
            }
            SettingValue::Bool(on) => quote!(.#setter(#on)),
        }
    });
    quote!(#(#calls)*)
}

/// The call of the runtime's entry point: `lets; entry(shape, &OP, args.. body)`.
struct Call {
    /// Statements run before the body: the condition and the key.
    lets: TokenStream,
    /// The entry point's path.
    entry: TokenStream,
    /// Its arguments between the operation and the body, each followed by a comma.
    args: TokenStream,
}

fn call(
    plan: &Plan,
    info: &FnInfo,
    p: &TokenStream,
    shape: &Ident,
    checks: &mut KeyChecks<'_>,
) -> Call {
    let enabled = internal("__cachet_enabled");
    let op_ref = internal("__cachet_op");
    let key = internal("__cachet_key");
    let result = Ident::new("result", Span::call_site());
    let condition = match &plan.condition {
        // Over `result`: evaluated after the call, in the eviction's key step.
        Some(_) if plan.condition_after => quote!(let #enabled: bool = true;),
        Some(cond) => quote!(let #enabled: bool = #cond;),
        None => quote!(let #enabled: bool = true;),
    };
    // A condition over `result` (an eviction after the call): the key step evicts nothing
    // when it is false. `key` is the key's expression in that step.
    let after_condition = plan.condition.as_ref().filter(|_| plan.condition_after);
    let gated = |key: TokenStream| match after_condition {
        Some(cond) => quote!(|#result| if #cond { #key } else { #p::no_key() }),
        None => quote!(|_| #key),
    };
    let every = quote!(#p::every_key());
    // The key, computed from the arguments before the body can take them.
    let key_before = |spec: &KeySpec, checks: &mut KeyChecks<'_>| {
        let k = checks.key_of(spec, &quote!(#p::Encode));
        match &plan.condition {
            Some(_) => quote!(let #key = if #enabled { #k } else { #p::no_key() };),
            None => quote!(let #key = #k;),
        }
    };
    let unless = |unless: &Option<Expr>| match (unless, &plan.ttl_from) {
        (Some(e), None) => quote!(|#result| #e),
        (None, None) => quote!(|_| false),
        (unless, Some(ttl)) => store_decision(p, unless.as_ref(), ttl, &result),
    };
    let entry = |name: &str| {
        let name = if info.is_async {
            format_ident!("{}", name, span = info.ret_span)
        } else {
            format_ident!("{}_blocking", name, span = info.ret_span)
        };
        quote!(#p::#name)
    };
    let no_key = quote!(#p::no_key());
    let on_timeout = internal("__cachet_on_timeout");
    let (lets, args) = match &plan.action {
        Action::Cacheable {
            key: spec,
            unless: u,
        } => {
            // The hit path first, while the key borrows the arguments: a fresh L1 value
            // returns at once (no key `String`, no body built); else the call goes on with
            // the key the probe encoded. The detachable entry points start eager refreshes,
            // so their probe leaves a value past its refresh point to them.
            let eager = plan.detachable;
            let hit = internal("__cachet_hit");
            // A value that is not a `CacheValue` gets a probe that always misses: the entry
            // point reports it, at the return type.
            let probe = quote! {{
                use #p::{ProbesL1 as _, ProbesNothing as _};
                (&#p::ProbeOf::<_, #eager>::new(#shape, #op_ref)).probe()
            }};
            let probe = checks.key_of(spec, &probe);
            let probed = quote! {
                match #probe {
                    #p::Probed::Hit(#hit) => return #hit,
                    #p::Probed::Miss(#key) => #key,
                }
            };
            let lets = match &plan.condition {
                Some(_) => quote!(let #key = if #enabled { #probed } else { #p::no_key() };),
                None => quote!(let #key = #probed;),
            };
            let u = unless(u);
            // No `enabled` argument: a bypassed call has no key.
            let condition = plan.condition.as_ref().map(|_| &condition);
            (quote!(#condition #lets), quote!(#key, #u, #on_timeout,))
        }
        Action::Put {
            key: source,
            unless: u,
        } => {
            let (lets, key_fn) = key_after(source, checks, &key_before, &key, &result);
            let u = unless(u);
            (
                quote!(#condition #lets),
                quote!(#enabled, #key_fn, #u, #on_timeout,),
            )
        }
        Action::Evict(EvictTarget::AllEntries {
            before_invocation: true,
        }) => (
            condition,
            quote!(#enabled, #every, |_| #no_key, #on_timeout,),
        ),
        Action::Evict(EvictTarget::AllEntries { .. }) => {
            let after = gated(every.clone());
            (condition, quote!(#enabled, #no_key, #after, #on_timeout,))
        }
        Action::Evict(EvictTarget::Before(spec)) => {
            let lets = key_before(spec, checks);
            (
                quote!(#condition #lets),
                quote!(#enabled, #key, |_| #no_key, #on_timeout,),
            )
        }
        Action::Evict(EvictTarget::After(source)) => {
            let (lets, key_fn) = match (after_condition, source) {
                (Some(_), KeySource::Args(spec)) => (key_before(spec, checks), gated(quote!(#key))),
                (Some(_), KeySource::Result(expr)) => {
                    let k = checks.key_of(&KeySpec::Expr(expr.clone()), &quote!(#p::Encode));
                    (TokenStream::new(), gated(k))
                }
                (None, source) => key_after(source, checks, &key_before, &key, &result),
            };
            (
                quote!(#condition #lets),
                quote!(#enabled, #no_key, #key_fn, #on_timeout,),
            )
        }
    };
    // What the hard timeout, or a fault the error handler fails, makes the call return:
    // chosen by the resolved return type (an error made from `CacheError`, or nothing).
    let ret = &info.ret;
    let lets = quote! {
        #lets
        let #on_timeout = {
            use #p::{TimesOut as _, WaitsOut as _};
            (&#p::TimeoutProbe::<#ret>::new()).on_timeout()
        };
    };
    let entry = entry(match plan.kind {
        Macro::Cacheable if info.is_async && plan.detachable => "cacheable_detachable",
        Macro::Cacheable if info.is_async => "cacheable_timed",
        Macro::Cacheable if plan.detachable => "cacheable_detachable",
        Macro::Cacheable => "cacheable",
        Macro::Put => "put",
        // `cache_config` and `cacheable_many` (`many.rs`) never plan a layer.
        Macro::Evict | Macro::Config | Macro::CacheableMany | Macro::Caches => "evict",
    });
    Call { lets, entry, args }
}

/// The store step with `ttl_from`: not stored when `unless` holds, else for the TTL the
/// expression gives (a `Duration`, or `None` for not stored).
fn store_decision(
    p: &TokenStream,
    unless: Option<&Expr>,
    ttl: &Expr,
    result: &Ident,
) -> TokenStream {
    // At the expression: a type that is neither `Duration` nor `Option<Duration>` is
    // reported there.
    let keep = quote_spanned!(ttl.span()=> #p::ttl_from(#ttl));
    let uses_result =
        find_result(ttl).is_some() || unless.is_some_and(|u| find_result(u).is_some());
    let param = if uses_result {
        quote!(#result)
    } else {
        quote!(_)
    };
    match unless {
        Some(unless) => quote!(|#param| if #unless { #p::Keep::No } else { #keep }),
        None => quote!(|#param| #keep),
    }
}

/// The key closure of a `cache_put` or of an eviction after the call: over `result` when
/// the key mentions it, else computed before the body and moved in.
fn key_after(
    source: &KeySource,
    checks: &mut KeyChecks<'_>,
    key_before: &dyn Fn(&KeySpec, &mut KeyChecks<'_>) -> TokenStream,
    key: &Ident,
    result: &Ident,
) -> (TokenStream, TokenStream) {
    match source {
        KeySource::Args(spec) => (key_before(spec, checks), quote!(move |_| #key)),
        KeySource::Result(expr) => {
            let p = checks.p;
            let k = checks.key_of(&KeySpec::Expr(expr.clone()), &quote!(#p::Encode));
            (TokenStream::new(), quote!(|#result| #k))
        }
    }
}

/// Builds key expressions, each part checked for `Serialize` by a local trait whose
/// diagnostic names the argument and says how to leave it out.
struct KeyChecks<'a> {
    p: &'a TokenStream,
    function: &'a str,
    items: Vec<TokenStream>,
    /// The typed caches every key is checked against (`crate::typed`).
    typed: &'a [syn::Path],
}

impl<'a> KeyChecks<'a> {
    fn new(p: &'a TokenStream, function: &'a str, typed: &'a [syn::Path]) -> Self {
        KeyChecks {
            p,
            function,
            items: Vec::new(),
            typed,
        }
    }

    /// The key handed to `user` (a `KeyUse`: `Encode` for an `OpKey`, `Probe` for the hit
    /// path): a call of a local generic function whose bounds check each part. The key is
    /// built inside that function, where the bounds are assumed, so an unmet bound is
    /// reported once, at the part, with the check's message.
    fn key_of(&mut self, spec: &KeySpec, user: &TokenStream) -> TokenStream {
        let p = self.p;
        let parts: Vec<(Ident, TokenStream)> = match spec {
            KeySpec::Args(args) if args.is_empty() && self.typed.is_empty() => {
                return quote!(#p::KeyUse::with_key(#user, &()))
            }
            KeySpec::Args(args) => args.iter().map(|a| self.arg(a)).collect(),
            KeySpec::Expr(expr) => self.expr(expr),
        };
        let typed = crate::typed::Typed {
            paths: self.typed,
            p,
            function: self.function,
        }
        .key_bounds(&part_names(spec));
        let crate::typed::KeyBounds {
            items: typed_items,
            generics: typed_generics,
            params: typed_params,
            bounds: typed_bounds,
            args: typed_args,
        } = typed;
        self.items.extend(typed_items);
        let name = format_ident!("__cachet_key_of");
        let params: Vec<Ident> = (0..parts.len()).map(|i| format_ident!("A{i}")).collect();
        let values: Vec<Ident> = (0..parts.len()).map(|i| format_ident!("a{i}")).collect();
        let checks = parts.iter().map(|(check, _)| check);
        let args = parts.iter().map(|(_, arg)| arg);
        let encoded = parts
            .iter()
            .zip(&values)
            .map(|((check, _), v)| quote!(#check::__cachet_key(#v)));
        let key = match parts.len() {
            0 => quote!(#p::KeyUse::with_key(user, &())),
            1 => quote!(#p::KeyUse::with_key(user, #(#encoded)*)),
            _ => quote!(#p::KeyUse::with_key(user, &(#(#encoded),*))),
        };
        self.items.push(quote! {
            fn #name<
                U: #p::KeyUse,
                #(#params: ?::core::marker::Sized + #checks,)*
                #(#typed_generics,)*
            >(
                user: U,
                #(#values: &#params,)*
                #(#typed_params,)*
            ) -> U::Output
            where
                #(#typed_bounds,)*
            {
                #key
            }
        });
        quote!(#name(#user, #(#args,)* #(#typed_args),*))
    }

    /// The checks of a `key = EXPR` (one per element of a tuple, so the error names the
    /// element that is not `Serialize`), and the references to pass to them. `(a, b)` and
    /// `(&a, &b)` encode alike, so splitting does not change the key.
    fn expr(&mut self, expr: &Expr) -> Vec<(Ident, TokenStream)> {
        match expr {
            Expr::Tuple(t) if t.elems.len() > 1 => t.elems.iter().map(|e| self.part(e)).collect(),
            Expr::Paren(p) => self.expr(&p.expr),
            _ => vec![self.part(expr)],
        }
    }

    fn part(&mut self, expr: &Expr) -> (Ident, TokenStream) {
        let f = self.function;
        let text = tidy(&expr.to_token_stream().to_string())
            .replace('{', "{{")
            .replace('}', "}}");
        let check = self.check(
            &format!(
                "`{text}` cannot be part of the cache key of `{f}`: `{{Self}}` does not \
                 implement `serde::Serialize`"
            ),
            "not `Serialize`",
            "a key is encoded with serde: derive or implement `Serialize` for this type, or \
             key on values that are `Serialize`",
        );
        (check, quote_spanned!(expr.span()=> &(#expr)))
    }

    /// The check of one argument of the default key, and the reference to pass to it.
    fn arg(&mut self, arg: &KeyArg) -> (Ident, TokenStream) {
        let KeyArg { ident: arg, is_ref } = arg;
        let f = self.function;
        let name = arg.to_string();
        let name = name.trim_start_matches("r#");
        let check = self.check(
            &format!(
                "argument `{name}` cannot be part of the cache key of `{f}`: `{{Self}}` does not \
                 implement `serde::Serialize`"
            ),
            &format!("`{name}` is in the default key of `{f}`, so it must be `Serialize`"),
            &format!(
                "leave it out of the key with `skip({name})`, or name the key with `key = ..`"
            ),
        );
        let value = if *is_ref {
            quote_spanned!(arg.span()=> &*#arg)
        } else {
            quote_spanned!(arg.span()=> &#arg)
        };
        (check, value)
    }

    /// A local trait, implemented for every `Serialize` type, whose unmet bound reports
    /// `message` (`{Self}` is the type).
    fn check(&mut self, message: &str, label: &str, note: &str) -> Ident {
        let p = self.p;
        let name = format_ident!("__CachetKeyPart{}", self.items.len());
        self.items.push(quote! {
            #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
            trait #name {
                type Key: ?::core::marker::Sized + #p::Serialize;
                fn __cachet_key(&self) -> &Self::Key;
            }
            impl<T: ?::core::marker::Sized + #p::Serialize> #name for T {
                type Key = T;
                fn __cachet_key(&self) -> &T {
                    self
                }
            }
        });
        name
    }
}

/// The parts of a key as the function names them (`id`, `user.id`), with where each is
/// written: what a typed cache's key check reports.
fn part_names(spec: &KeySpec) -> Vec<(String, Span)> {
    fn of_expr(expr: &Expr, out: &mut Vec<(String, Span)>) {
        match expr {
            Expr::Tuple(t) if t.elems.len() > 1 => {
                for e in &t.elems {
                    out.push((tidy(&e.to_token_stream().to_string()), e.span()));
                }
            }
            Expr::Paren(p) => of_expr(&p.expr, out),
            _ => out.push((tidy(&expr.to_token_stream().to_string()), expr.span())),
        }
    }
    match spec {
        KeySpec::Args(args) => args
            .iter()
            .map(|a| {
                let name = a.ident.to_string();
                (name.trim_start_matches("r#").to_owned(), a.ident.span())
            })
            .collect(),
        KeySpec::Expr(expr) => {
            let mut out = Vec::new();
            of_expr(expr, &mut out);
            out
        }
    }
}

/// The cached value's type, as written: `T` for `Result<T, E>` and for `Option<T>`, which is
/// stored unwrapped (by name: this is only a label for the mixed-types warning; the runtime
/// decides the shape by type).
fn value_type(output: &ReturnType) -> String {
    let ty = match output {
        ReturnType::Default => return "()".into(),
        ReturnType::Type(_, ty) => &**ty,
    };
    let shown = match ty {
        Type::Path(tp) => tp
            .path
            .segments
            .last()
            .filter(|seg| seg.ident == "Result" || seg.ident == "Option")
            .and_then(|seg| match &seg.arguments {
                syn::PathArguments::AngleBracketed(a) => a.args.first(),
                _ => None,
            })
            .map(|first| first.to_token_stream()),
        _ => None,
    };
    tidy(&shown.unwrap_or_else(|| ty.to_token_stream()).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn value_types() {
        let t = |o: ReturnType| value_type(&o);
        assert_eq!(t(parse_quote!()), "()");
        assert_eq!(t(parse_quote!(-> Result<User, E>)), "User");
        assert_eq!(
            t(parse_quote!(-> std::io::Result<Vec<Option<u8>>>)),
            "Vec<Option<u8>>"
        );
        assert_eq!(t(parse_quote!(-> Option<&'static str>)), "&'static str");
        assert_eq!(t(parse_quote!(-> R<u8>)), "R<u8>");
    }
}
