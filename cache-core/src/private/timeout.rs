//! Hard timeouts of annotated functions: which return types can carry the timeout.
//!
//! An annotated `async fn` returning `Result<T, E>` with `E: From<CacheError>` gives up
//! at the hard timeout with `Err(E::from(CacheError::Timeout { .. }))`. Any other return
//! type has no way to say "timed out", so the caller waits for the function. Chosen by
//! autoref specialisation on the resolved return type, as [`super::shape`] does; a generic
//! `E` not known to convert falls back to waiting.

use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::CacheError;

/// What a call does when its hard timeout passes.
pub trait OnTimeout<O>: Copy {
    /// The function's return value for `error`, or `None` to keep waiting.
    fn error(&self, error: CacheError) -> Option<O>;
}

/// `Result<T, E>` with `E: From<CacheError>`: gives up with the error.
pub struct GiveUp<T, E>(PhantomData<fn() -> (T, E)>);
/// Any other return type: waits for the function.
#[derive(Debug, Clone, Copy)]
pub struct Wait;

impl<T, E> Clone for GiveUp<T, E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T, E> Copy for GiveUp<T, E> {}

impl<T, E: From<CacheError>> OnTimeout<Result<T, E>> for GiveUp<T, E> {
    fn error(&self, error: CacheError) -> Option<Result<T, E>> {
        Some(Err(E::from(error)))
    }
}

impl<O> OnTimeout<O> for Wait {
    fn error(&self, _: CacheError) -> Option<O> {
        None
    }
}

/// Probe for the return type `R`: `(&TimeoutProbe::<R>::new()).on_timeout()`.
pub struct TimeoutProbe<R>(PhantomData<fn() -> R>);

impl<R> TimeoutProbe<R> {
    /// The probe.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        TimeoutProbe(PhantomData)
    }
}

crate::shape::rungs! { OnTimeout: Copy, on_timeout;
    /// Picks [`GiveUp`] (found first by method resolution: no autoref needed).
    TimesOut;
    /// Picks [`Wait`] (found only after autoref, so last).
    WaitsOut;
}

impl<T, E: From<CacheError>> TimesOut for TimeoutProbe<Result<T, E>> {
    type OnTimeout = GiveUp<T, E>;
    fn on_timeout(&self) -> GiveUp<T, E> {
        GiveUp(PhantomData)
    }
}
impl<R> WaitsOut for &TimeoutProbe<R> {
    type OnTimeout = Wait;
    fn on_timeout(&self) -> Wait {
        Wait
    }
}

/// `body` bounded by `limit` (timed by the cache's clock) on a tokio runtime: past it,
/// `on_timeout` answers for the function (which is dropped), or the call keeps waiting.
pub(crate) async fn bounded<O, F, T>(
    limit: Option<(Duration, String, Clock)>,
    on_timeout: T,
    body: F,
) -> O
where
    F: Future<Output = O>,
    T: OnTimeout<O>,
{
    let Some((limit, cache, clock)) =
        limit.filter(|_| tokio::runtime::Handle::try_current().is_ok())
    else {
        return body.await;
    };
    let mut body = std::pin::pin!(body);
    // No output is held across the next await: the future stays `Send` whatever `O` is.
    if let Some(output) = clock.within(limit, body.as_mut()).await {
        return output;
    }
    let error = CacheError::Timeout {
        cache,
        timeout: limit,
    };
    if let Some(output) = on_timeout.error(error) {
        return output;
    }
    body.await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct MyError;
    impl From<CacheError> for MyError {
        fn from(_: CacheError) -> Self {
            MyError
        }
    }

    #[allow(clippy::needless_borrow)]
    #[tokio::test]
    async fn gives_up_only_when_the_error_converts() {
        let limit = || Some((Duration::from_millis(5), "c".to_owned(), Clock::default()));
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<u8, MyError>(1)
        };
        let give_up = (&TimeoutProbe::<Result<u8, MyError>>::new()).on_timeout();
        assert!(bounded(limit(), give_up, slow()).await.is_err());
        let wait = (&TimeoutProbe::<Result<u8, String>>::new()).on_timeout();
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<u8, String>(1)
        };
        assert_eq!(bounded(limit(), wait, slow()).await, Ok(1));
        let wait = (&TimeoutProbe::<u8>::new()).on_timeout();
        assert_eq!(bounded(limit(), wait, async { 2 }).await, 2);
    }
}
