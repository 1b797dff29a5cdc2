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
    use std::pin::pin;
    use std::task::Poll;

    use super::*;
    use crate::clock::ManualClock;

    #[derive(Debug, PartialEq)]
    struct MyError;
    impl From<CacheError> for MyError {
        fn from(_: CacheError) -> Self {
            MyError
        }
    }

    /// `future` polled once from the test's task: ready or not, without waiting.
    async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
        std::future::poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *future).poll(cx))).await
    }

    // The limit is timed by a manual clock and the functions end only when told to, so
    // what is checked does not depend on how fast this thread runs (it was a 5 ms limit
    // against a 50 ms sleep on real time, which failed when the thread was held up).
    #[allow(clippy::needless_borrow)]
    #[tokio::test]
    async fn gives_up_only_when_the_error_converts() {
        let clock = ManualClock::new();
        let limit = || {
            let clock = Clock::from(clock.clone());
            Some((Duration::from_millis(5), "c".to_owned(), clock))
        };

        let give_up = (&TimeoutProbe::<Result<u8, MyError>>::new()).on_timeout();
        let endless = std::future::pending::<Result<u8, MyError>>();
        let mut call = pin!(bounded(limit(), give_up, endless));
        assert!(poll_once(&mut call).await.is_pending());
        clock.advance(Duration::from_millis(4));
        assert!(poll_once(&mut call).await.is_pending(), "gave up early");
        clock.advance(Duration::from_millis(1));
        assert_eq!(poll_once(&mut call).await, Poll::Ready(Err(MyError)));

        let wait = (&TimeoutProbe::<Result<u8, String>>::new()).on_timeout();
        let (finish, finished) = tokio::sync::oneshot::channel::<u8>();
        let told = async { Ok::<u8, String>(finished.await.expect("the test ends it")) };
        let mut call = pin!(bounded(limit(), wait, told));
        assert!(poll_once(&mut call).await.is_pending());
        clock.advance(Duration::from_secs(3600));
        assert!(
            poll_once(&mut call).await.is_pending(),
            "gave up, though its error cannot carry the timeout"
        );
        finish.send(1).expect("the call still waits");
        assert_eq!(call.await, Ok(1));

        let wait = (&TimeoutProbe::<u8>::new()).on_timeout();
        assert_eq!(bounded(limit(), wait, async { 2 }).await, 2);
    }
}
