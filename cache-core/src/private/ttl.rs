//! The store step of an annotation, decided per value: `unless` (a `bool`) or `ttl_from`
//! (a [`Keep`] made from a `Duration` or an `Option<Duration>`).

use std::time::Duration;

use crate::engine::Lifetime;

/// What `ttl_from = EXPR` may give: a `Duration`, or an `Option<Duration>` where `None`
/// means "do not store". A zero duration is already expired: not stored either.
#[diagnostic::on_unimplemented(
    message = "`ttl_from` must give a `Duration` or an `Option<Duration>`, not `{Self}`",
    label = "not a `Duration` or an `Option<Duration>`",
    note = "`ttl_from` is an expression over `result` (the value to store) telling how long to keep it; `None` means do not store it"
)]
pub trait IntoTtl {
    /// The TTL, or `None` for "do not store".
    fn into_ttl(self) -> Option<Duration>;
}

impl IntoTtl for Duration {
    fn into_ttl(self) -> Option<Duration> {
        Some(self)
    }
}

impl IntoTtl for Option<Duration> {
    fn into_ttl(self) -> Option<Duration> {
        self
    }
}

impl IntoTtl for &Duration {
    fn into_ttl(self) -> Option<Duration> {
        Some(*self)
    }
}

impl IntoTtl for &Option<Duration> {
    fn into_ttl(self) -> Option<Duration> {
        *self
    }
}

/// What an annotation's store step decided for one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Not stored.
    No,
    /// Stored for the view's TTL: the annotation's `ttl`, else the cache's.
    Default,
    /// Stored for this TTL (`ttl_from`).
    For(Duration),
}

/// The decision of `ttl_from = EXPR`.
pub fn ttl_from(ttl: impl IntoTtl) -> Keep {
    match ttl.into_ttl() {
        Some(ttl) if !ttl.is_zero() => Keep::For(ttl),
        _ => Keep::No,
    }
}

/// What the closure of the store step returns: `bool` for `unless` (true: not stored), or
/// a [`Keep`].
pub trait StoreDecision {
    /// As a [`Keep`].
    fn keep(self) -> Keep;
}

impl StoreDecision for bool {
    fn keep(self) -> Keep {
        if self {
            Keep::No
        } else {
            Keep::Default
        }
    }
}

impl StoreDecision for Keep {
    fn keep(self) -> Keep {
        self
    }
}

impl Keep {
    /// The lifetime of a value: the view's TTL (the annotation's over the cache's), or
    /// the one `ttl_from` computed.
    pub(crate) fn lifetime(self) -> Option<Lifetime> {
        match self {
            Keep::No => None,
            Keep::Default => Some(Lifetime::Default),
            Keep::For(ttl) => Some(Lifetime::For(ttl)),
        }
    }
}

/// How long an annotated function's value is kept: not at all when its `unless` holds (or
/// its `ttl_from` says so), else the `ttl_from` TTL, else the view's (the annotation's
/// `ttl` over the cache's).
pub(super) fn store_policy<V, D: StoreDecision>(
    decide: impl FnOnce(&V) -> D,
) -> impl FnOnce(&V) -> Option<Lifetime> {
    move |value| decide(value).keep().lifetime()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        let s = Duration::from_secs(1);
        assert_eq!(ttl_from(s), Keep::For(s));
        // A reference is what `ttl_from = result.field` gives when the field is borrowed.
        let borrowed: &Duration = &s;
        assert_eq!(ttl_from(borrowed), Keep::For(s));
        assert_eq!(ttl_from(Some(s)), Keep::For(s));
        assert_eq!(ttl_from(None::<Duration>), Keep::No);
        assert_eq!(ttl_from(Duration::ZERO), Keep::No);
        assert_eq!(true.keep(), Keep::No);
        assert_eq!(false.keep().lifetime(), Some(Lifetime::Default));
        assert_eq!(Keep::For(s).lifetime(), Some(Lifetime::For(s)));
    }
}
