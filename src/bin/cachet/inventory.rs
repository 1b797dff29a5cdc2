//! `cachet inventory` and the source half of `cachet check`: the cached operations of a
//! program, read from its Rust sources (this tool is not linked into the program, so it
//! cannot read the program's registry; `cachet::declared_caches()` returns the same data
//! from inside it).
//!
//! Every `#[cacheable]`, `#[cache_put]`, `#[cache_evict]` and `#[cacheable_many]` on a
//! function or method, every method a `#[cacheable]` on its `impl` block caches (as the
//! macro picks them, with the block's cache and options; `#[cache_config]` names the cache
//! of both), and every `cachet::caches!` declaration, with the key and value types as
//! written: the key from the signature (the default key, or `key = arg`), `T` for
//! `T`, `Result<T, E>` and `Option<T>`. A key that is another expression, or of a type
//! parameter of the function or of its `impl` block, is shown as `?` and not compared. The
//! types are compared by `cachet::inventory::find_conflicts`, the check a manager runs at
//! startup.

use std::path::{Path, PathBuf};

use cachet::inventory::{find_conflicts, OperationTypes, TypeConflict};
use quote::ToTokens;
use syn::visit::Visit;

/// One annotated function, or one cache it names (an annotation naming two caches is two).
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) function: String,
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) kind: &'static str,
    pub(crate) cache: String,
    /// The typed cache's declaration named (`USERS`), if it is one.
    pub(crate) typed: Option<String>,
    pub(crate) key_type: String,
    pub(crate) value_type: String,
    pub(crate) ttl: Option<String>,
    pub(crate) grace: Option<String>,
    pub(crate) tags: Vec<String>,
}

/// One `caches!` declaration.
#[derive(Debug, Clone)]
struct Declared {
    ident: String,
    name: String,
    key: String,
    value: String,
    ttl: Option<String>,
    grace: Option<String>,
    tags: Vec<String>,
    file: String,
    line: usize,
}

/// Every operation and declaration under `roots` (directories or files), sorted by file and
/// line. An unreadable file is an error; a file that does not parse is skipped with a note.
pub(crate) fn scan(roots: &[PathBuf]) -> Result<(Vec<Found>, Vec<String>), String> {
    let mut files = Vec::new();
    for root in roots {
        collect(root, &mut files).map_err(|e| format!("cannot read {}: {e}", root.display()))?;
    }
    files.sort();
    let mut visitor = Visitor::default();
    let mut skipped = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        match syn::parse_file(&text) {
            Ok(parsed) => {
                visitor.file = file.display().to_string();
                visitor.module.clear();
                visitor.visit_file(&parsed);
            }
            Err(e) => skipped.push(format!("{}: not parsed ({e})", file.display())),
        }
    }
    let Visitor {
        mut found,
        declared,
        ..
    } = visitor;
    // A typed cache's name and types are its declaration's.
    for f in &mut found {
        let Some(path) = &f.typed else { continue };
        let ident = path.rsplit("::").next().unwrap_or(path);
        if let Some(d) = declared.iter().find(|d| d.ident == ident) {
            f.cache = d.name.clone();
            f.key_type = d.key.clone();
            if f.kind != "cache_evict" {
                f.value_type = d.value.clone();
            }
            f.ttl = f.ttl.take().or_else(|| d.ttl.clone());
            f.grace = f.grace.take().or_else(|| d.grace.clone());
            if f.tags.is_empty() {
                f.tags = d.tags.clone();
            }
        }
    }
    for d in &declared {
        found.push(Found {
            function: format!("caches! {}", d.ident),
            file: d.file.clone(),
            line: d.line,
            kind: "declaration",
            cache: d.name.clone(),
            typed: Some(d.ident.clone()),
            key_type: d.key.clone(),
            value_type: d.value.clone(),
            ttl: d.ttl.clone(),
            grace: d.grace.clone(),
            tags: d.tags.clone(),
        });
    }
    found.sort_by(|a, b| (&a.file, a.line, &a.cache).cmp(&(&b.file, b.line, &b.cache)));
    Ok((found, skipped))
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_file() {
        if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_owned());
        }
        return Ok(());
    }
    for entry in std::fs::read_dir(path)? {
        let entry = entry?.path();
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Build output and hidden directories hold no sources of the program.
        if name == "target" || name.starts_with('.') {
            continue;
        }
        collect(&entry, out)?;
    }
    Ok(())
}

/// Rows under a header, each column as wide as its widest cell.
pub(crate) fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Every disagreement between operations on one cache; the first is the one the startup
/// check reports.
pub(crate) fn conflicts(found: &[Found]) -> Vec<TypeConflict> {
    let ops: Vec<OperationTypes<'_>> = found
        .iter()
        .map(|f| OperationTypes {
            cache: &f.cache,
            function: &f.function,
            file: &f.file,
            line: f.line as u32,
            // `?`: a key of no one type, not compared.
            key_type: if f.key_type == "?" { "" } else { &f.key_type },
            value_type: if f.kind == "cache_evict" {
                ""
            } else {
                &f.value_type
            },
        })
        .collect();
    find_conflicts(&ops)
}

#[derive(Default)]
struct Visitor {
    file: String,
    module: Vec<String>,
    /// The type parameters of the `impl` block being read: a method's key of one of them has
    /// no one type.
    impl_generics: Vec<String>,
    found: Vec<Found>,
    declared: Vec<Declared>,
}

impl<'ast> Visit<'ast> for Visitor {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.module.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.module.pop();
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        // An item inside a method cannot use its `impl`'s type parameters.
        let outer = std::mem::take(&mut self.impl_generics);
        self.function(&f.attrs, &f.sig, &[]);
        syn::visit::visit_item_fn(self, f);
        self.impl_generics = outer;
    }

    fn visit_item_impl(&mut self, imp: &'ast syn::ItemImpl) {
        let generics = imp.generics.type_params().map(|p| p.ident.to_string());
        let outer = std::mem::replace(&mut self.impl_generics, generics.collect());
        // `#[cache_config(cache = "..")]`: the default names of the methods' annotations,
        // and of the block's own `#[cacheable]`.
        let defaults: Vec<String> = imp
            .attrs
            .iter()
            .filter(|a| last_segment(a.path()) == "cache_config")
            .flat_map(config_names)
            .collect();
        // `#[cacheable(..)]` on the block: each method that can be cached is, as if annotated
        // with it (`cache-macros/src/impl_block.rs`); one with a per-method option is a
        // compile error, and caches nothing.
        let block: Vec<Args> = imp
            .attrs
            .iter()
            .filter(|a| last_segment(a.path()) == "cacheable")
            .map(attr_args)
            .filter(|args| {
                !args
                    .written
                    .iter()
                    .any(|o| PER_METHOD.contains(&o.as_str()))
            })
            .collect();
        for item in &imp.items {
            if let syn::ImplItem::Fn(f) = item {
                self.function(&f.attrs, &f.sig, &defaults);
                if cached_by_block(f) {
                    for args in &block {
                        self.operation("cacheable", args, &f.sig, &defaults);
                    }
                }
            }
        }
        syn::visit::visit_item_impl(self, imp);
        self.impl_generics = outer;
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        if last_segment(&mac.path) == "caches" {
            if let Ok(decls) = mac.parse_body_with(parse_declarations) {
                for (d, line) in decls {
                    self.declared.push(Declared {
                        file: self.file.clone(),
                        line,
                        ..d
                    });
                }
            }
        }
        syn::visit::visit_macro(self, mac);
    }
}

impl Visitor {
    /// The operations of a function's own annotations.
    fn function(&mut self, attrs: &[syn::Attribute], sig: &syn::Signature, defaults: &[String]) {
        for attr in attrs {
            if let Some(kind) = annotation_kind(attr) {
                self.operation(kind, &attr_args(attr), sig, defaults);
            }
        }
    }

    /// One annotation of `kind` with `args` on the function `sig`: one operation per cache
    /// it names (`defaults`, a `#[cache_config]`'s, when it names none).
    fn operation(
        &mut self,
        kind: &'static str,
        args: &Args,
        sig: &syn::Signature,
        defaults: &[String],
    ) {
        let mut function = self.module.clone();
        function.push(sig.ident.to_string());
        let generics = Generics {
            sig,
            outer: &self.impl_generics,
        };
        let (key_type, value_type) = if kind == "cacheable_many" {
            many_types(sig, args)
        } else {
            (key_type(&generics, args), value_type(&sig.output))
        };
        let line = sig.ident.span().start().line;
        let base = Found {
            function: function.join("::"),
            file: self.file.clone(),
            line,
            kind,
            cache: String::new(),
            typed: None,
            key_type,
            value_type,
            ttl: args.ttl.clone(),
            grace: args.grace.clone(),
            tags: args.tags.clone(),
        };
        let names = if args.names.is_empty() && args.typed.is_empty() {
            defaults.to_vec()
        } else {
            args.names.clone()
        };
        for name in names {
            self.found.push(Found {
                cache: name,
                ..base.clone()
            });
        }
        for path in &args.typed {
            self.found.push(Found {
                cache: path.clone(),
                typed: Some(path.clone()),
                ..base.clone()
            });
        }
    }
}

/// The cachet annotation an attribute is, by its last path segment.
fn annotation_kind(attr: &syn::Attribute) -> Option<&'static str> {
    match last_segment(attr.path()).as_str() {
        "cacheable" => Some("cacheable"),
        "cache_put" => Some("cache_put"),
        "cache_evict" => Some("cache_evict"),
        "cacheable_many" => Some("cacheable_many"),
        _ => None,
    }
}

/// An attribute's arguments (none for `#[cacheable]`; an unreadable list reads as none).
fn attr_args(attr: &syn::Attribute) -> Args {
    match &attr.meta {
        syn::Meta::List(list) => list.parse_args_with(parse_args).unwrap_or_default(),
        _ => Args::default(),
    }
}

/// The options a block's `#[cacheable]` refuses: they depend on a method's arguments or
/// value (`cache-macros/src/impl_block.rs`).
const PER_METHOD: &[&str] = &[
    "key",
    "key_generator",
    "skip",
    "condition",
    "unless",
    "ttl_from",
];

/// Whether a block's `#[cacheable]` caches `method`, as the macro decides: a method with a
/// non-mutable `self` receiver, returning a value (not `()`, a reference or `impl Trait`),
/// not a `const fn`, and without a `#[cacheable]`, `#[cache_put]` or `#[cache_evict]` of its
/// own (which wins).
fn cached_by_block(method: &syn::ImplItemFn) -> bool {
    let sig = &method.sig;
    let Some(syn::FnArg::Receiver(receiver)) = sig.inputs.first() else {
        return false;
    };
    let mutable = receiver.mutability.is_some()
        || matches!(&*receiver.ty, syn::Type::Reference(r) if r.mutability.is_some());
    let returns_value = match &sig.output {
        syn::ReturnType::Default => false,
        syn::ReturnType::Type(_, ty) => match &**ty {
            syn::Type::Tuple(t) => !t.elems.is_empty(),
            syn::Type::Reference(_) | syn::Type::ImplTrait(_) => false,
            _ => true,
        },
    };
    let annotated = method.attrs.iter().any(|a| {
        matches!(
            annotation_kind(a),
            Some("cacheable" | "cache_put" | "cache_evict")
        )
    });
    !mutable && returns_value && sig.constness.is_none() && !annotated
}

/// An annotation's arguments, as far as the inventory needs them.
#[derive(Default)]
struct Args {
    names: Vec<String>,
    typed: Vec<String>,
    key: Option<syn::Expr>,
    skip: Vec<String>,
    /// `all_entries`: an eviction of the whole cache, with no key.
    all_entries: bool,
    /// The name of every option written (`key`, `skip`, `ttl`, ...).
    written: Vec<String>,
    ttl: Option<String>,
    grace: Option<String>,
    tags: Vec<String>,
}

fn parse_args(input: syn::parse::ParseStream<'_>) -> syn::Result<Args> {
    let mut args = Args::default();
    while !input.is_empty() {
        if input.peek(syn::LitStr) {
            args.names.push(input.parse::<syn::LitStr>()?.value());
        } else {
            let path: syn::Path = input.call(syn::Path::parse_mod_style)?;
            let name = path.to_token_stream().to_string().replace(' ', "");
            if input.peek(syn::Token![=]) || input.peek(syn::token::Paren) {
                args.written.push(name.clone());
            }
            if input.peek(syn::Token![=]) {
                input.parse::<syn::Token![=]>()?;
                let value: syn::Expr = input.parse()?;
                match name.as_str() {
                    "key" => args.key = Some(value),
                    "ttl" => args.ttl = lit_str(&value),
                    "grace" => args.grace = lit_str(&value),
                    "tags" => {
                        if let syn::Expr::Array(a) = &value {
                            args.tags = a.elems.iter().filter_map(lit_str).collect();
                        }
                    }
                    _ => {}
                }
            } else if input.peek(syn::token::Paren) {
                let content;
                syn::parenthesized!(content in input);
                let idents = content.parse_terminated(syn::Ident::parse_any, syn::Token![,])?;
                if name == "skip" {
                    args.skip = idents.iter().map(ToString::to_string).collect();
                }
            } else if name == "all_entries" {
                args.all_entries = true;
            } else if args.key.is_none()
                && args.ttl.is_none()
                && !is_flag(&name)
                && (name.contains("::") || name.chars().any(|c| c.is_uppercase()))
            {
                args.typed.push(name);
            }
        }
        if input.is_empty() {
            break;
        }
        input.parse::<syn::Token![,]>()?;
    }
    Ok(args)
}

use syn::ext::IdentExt;

fn is_flag(name: &str) -> bool {
    matches!(name, "all_entries" | "before_invocation" | "after_commit")
}

fn lit_str(e: &syn::Expr) -> Option<String> {
    match e {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Some(s.value()),
        _ => None,
    }
}

fn config_names(attr: &syn::Attribute) -> Vec<String> {
    let mut names = Vec::new();
    let _ = attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("cache") {
            let value: syn::Expr = meta.value()?.parse()?;
            match &value {
                syn::Expr::Array(a) => names.extend(a.elems.iter().filter_map(lit_str)),
                other => names.extend(lit_str(other)),
            }
        } else if meta.input.peek(syn::Token![=]) {
            let _: syn::Expr = meta.value()?.parse()?;
        }
        Ok(())
    });
    names
}

fn parse_declarations(input: syn::parse::ParseStream<'_>) -> syn::Result<Vec<(Declared, usize)>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let _ = input.call(syn::Attribute::parse_outer)?;
        let _: syn::Visibility = input.parse()?;
        let ident: syn::Ident = input.parse()?;
        input.parse::<syn::Token![:]>()?;
        let key: syn::Type = input.parse()?;
        input.parse::<syn::Token![=>]>()?;
        let value: syn::Type = input.parse()?;
        input.parse::<syn::Token![=]>()?;
        let name: syn::LitStr = input.parse()?;
        let mut args = Args::default();
        if input.peek(syn::Token![,]) {
            input.parse::<syn::Token![,]>()?;
            let rest: proc_macro2::TokenStream = {
                let mut tokens = proc_macro2::TokenStream::new();
                while !input.is_empty() && !input.peek(syn::Token![;]) {
                    tokens.extend([input.parse::<proc_macro2::TokenTree>()?]);
                }
                tokens
            };
            args = syn::parse::Parser::parse2(parse_args, rest)?;
        }
        input.parse::<syn::Token![;]>()?;
        out.push((
            Declared {
                ident: ident.to_string(),
                name: name.value(),
                key: shown(&key),
                value: shown(&value),
                ttl: args.ttl,
                grace: args.grace,
                tags: args.tags,
                file: String::new(),
                line: 0,
            },
            ident.span().start().line,
        ));
    }
    Ok(out)
}

fn last_segment(path: &syn::Path) -> String {
    path.segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default()
}

/// A type as written, tidied: `Vec < u8 >` → `Vec<u8>`.
fn shown(ty: &impl ToTokens) -> String {
    let s = ty.to_token_stream().to_string();
    s.replace(" < ", "<")
        .replace("< ", "<")
        .replace(" <", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace("& ", "&")
}

/// A function's signature and the type parameters of its `impl` block: what a type in it
/// may be generic over.
struct Generics<'a> {
    sig: &'a syn::Signature,
    outer: &'a [String],
}

/// The arguments other than `self`, by name, with their types (a reference's referent).
fn args_of(generics: &Generics<'_>) -> Vec<(String, String)> {
    let sig = generics.sig;
    sig.inputs
        .iter()
        .filter_map(|arg| match arg {
            syn::FnArg::Typed(t) => {
                let name = match &*t.pat {
                    syn::Pat::Ident(p) => p.ident.to_string(),
                    other => shown(other),
                };
                let ty = match &*t.ty {
                    syn::Type::Reference(r) => &*r.elem,
                    other => other,
                };
                // A generic or `impl Trait` argument has no one type.
                let generic = is_generic(&ty.to_token_stream(), generics);
                Some((name, if generic { "?".into() } else { shown(ty) }))
            }
            syn::FnArg::Receiver(_) => None,
        })
        .collect()
}

/// Whether `tokens` (a type) name a type parameter of the function or of its `impl` block,
/// or an `impl Trait`.
fn is_generic(tokens: &proc_macro2::TokenStream, generics: &Generics<'_>) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        proc_macro2::TokenTree::Ident(ident) => {
            ident == "impl"
                || generics
                    .sig
                    .generics
                    .type_params()
                    .any(|p| p.ident == ident)
                || generics.outer.iter().any(|p| ident == p)
        }
        proc_macro2::TokenTree::Group(group) => is_generic(&group.stream(), generics),
        _ => false,
    })
}

/// The key type as the signature shows it: the default key's, or `key = arg` / `key = (a,
/// b)` over arguments; `?` for any other expression.
fn key_type(generics: &Generics<'_>, args: &Args) -> String {
    if args.all_entries {
        return "?".into();
    }
    let all = args_of(generics);
    let type_of = |name: &str| all.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone());
    let parts: Option<Vec<String>> = match &args.key {
        None => Some(
            all.iter()
                .filter(|(n, _)| !args.skip.contains(n))
                .map(|(_, t)| t.clone())
                .collect(),
        ),
        Some(syn::Expr::Path(p)) => p
            .path
            .get_ident()
            .and_then(|i| type_of(&i.to_string()))
            .map(|t| vec![t]),
        Some(syn::Expr::Tuple(t)) => t
            .elems
            .iter()
            .map(|e| match e {
                syn::Expr::Path(p) => p.path.get_ident().and_then(|i| type_of(&i.to_string())),
                _ => None,
            })
            .collect(),
        Some(_) => None,
    };
    match parts.as_deref() {
        None => "?".into(),
        Some(parts) if parts.iter().any(|p| p == "?") => "?".into(),
        Some([]) => "()".into(),
        Some([one]) => one.clone(),
        Some(many) => format!("({})", many.join(", ")),
    }
}

/// `T` of `T`, `Result<T, E>` or `Option<T>`.
fn value_type(output: &syn::ReturnType) -> String {
    match output {
        syn::ReturnType::Default => "()".into(),
        syn::ReturnType::Type(_, ty) => shown(&unwrap_outer(ty, &["Result", "Option"])),
    }
}

fn unwrap_outer(ty: &syn::Type, names: &[&str]) -> syn::Type {
    if let syn::Type::Path(tp) = ty {
        if let Some(last) = tp.path.segments.last() {
            if names.contains(&last.ident.to_string().as_str()) {
                if let syn::PathArguments::AngleBracketed(a) = &last.arguments {
                    if let Some(syn::GenericArgument::Type(t)) = a.args.first() {
                        return t.clone();
                    }
                }
            }
        }
    }
    ty.clone()
}

/// `#[cacheable_many]`: `K` of the keys argument (`Vec<K>`, `&[K]`), `V` of the result
/// (`HashMap<K, V>`, `Vec<(K, V)>`, in a `Result` or not).
fn many_types(sig: &syn::Signature, args: &Args) -> (String, String) {
    let keys = sig.inputs.iter().find_map(|arg| match arg {
        syn::FnArg::Typed(t) => match &*t.pat {
            syn::Pat::Ident(p) if !args.skip.contains(&p.ident.to_string()) => Some(&*t.ty),
            _ => None,
        },
        syn::FnArg::Receiver(_) => None,
    });
    let key = match keys {
        Some(syn::Type::Reference(r)) => match &*r.elem {
            syn::Type::Slice(s) => shown(&*s.elem),
            other => shown(other),
        },
        Some(other) => shown(&unwrap_outer(other, &["Vec"])),
        None => "?".into(),
    };
    let value = match &sig.output {
        syn::ReturnType::Default => "()".into(),
        syn::ReturnType::Type(_, ty) => {
            let inner = unwrap_outer(ty, &["Result"]);
            match &inner {
                syn::Type::Path(tp) => match tp.path.segments.last().map(|s| &s.arguments) {
                    Some(syn::PathArguments::AngleBracketed(a)) => {
                        match a.args.iter().collect::<Vec<_>>().as_slice() {
                            [_, syn::GenericArgument::Type(v)] => shown(v),
                            [syn::GenericArgument::Type(syn::Type::Tuple(t))]
                                if t.elems.len() == 2 =>
                            {
                                shown(&t.elems[1])
                            }
                            _ => shown(&inner),
                        }
                    }
                    _ => shown(&inner),
                },
                _ => shown(&inner),
            }
        }
    };
    (key, value)
}
