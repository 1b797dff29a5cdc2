//! The infallible `get_or_set` forms (`get_or_set`, `get_or_set_detached`,
//! `get_or_set_adaptive`): each is its `try_` form with a factory that cannot fail. One
//! signature and one delegation serve them all, so the forms cannot drift apart; each keeps
//! its own doc and example.

/// Declares `pub async fn $name(&self, key, factory) -> Result<V, CacheError>`: `$fallible`
/// with `factory`'s value as its `Ok`. `$out` is what the factory's future gives (`V`,
/// `Adaptive<V>`), and `+ Send + 'static` (after it) what a detachable form's future must
/// be.
macro_rules! infallible_form {
    ($(#[$doc:meta])* $name:ident => $fallible:ident, $out:ty $(, $($bound:tt)+)?) => {
        $(#[$doc])*
        pub async fn $name<V, F, Fut>(
            &self,
            key: &(impl ::serde::Serialize + ?Sized),
            factory: F,
        ) -> Result<V, $crate::CacheError>
        where
            V: $crate::CacheValue,
            F: FnOnce() -> Fut,
            Fut: ::std::future::Future<Output = $out> $($($bound)+)?,
        {
            use ::futures_util::FutureExt as _;
            self.$fallible(key, move || factory().map(Ok::<_, $crate::CacheError>))
                .await
        }
    };
}

pub(crate) use infallible_form;
