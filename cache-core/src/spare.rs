//! Spare values a thread keeps from one use to the next: a bounded per-thread pool, so that
//! a value with buffers (a stored key, a driver's command) built once per read is built in
//! the buffers of an earlier read instead of allocating and freeing its own. With 64 reads
//! in flight on two threads, those allocations overflow glibc's per-thread cache and cost
//! ~190 instructions each (BENCHMARKS.md, "64 tasks, phase L").
//!
//! A pool is bounded twice, so a thread keeps at most `COUNT` values of at most `RETAINED`
//! each (the size the caller measures: a buffer's capacity in bytes, or a measure that
//! bounds it); [`SparePool::MOST_KEPT`] is what that allows a thread to hold, until it
//! exits.

use std::cell::RefCell;
use std::thread::LocalKey;

/// A thread's spare values of type `T`: at most `COUNT`, none of size over `RETAINED`.
/// Declared in a `thread_local!` (with `const { SparePool::new() }`: no lazy
/// initialisation on access), used through [`SparePool::take`] and [`SparePool::keep`].
///
/// Re-entrant without panicking: the pool runs no code of `T` while it holds its cell (a
/// value refused is dropped after the pool lets go), a call made while the cell is held
/// anyway (a `Drop` or `Clone` of `T` that uses the pool, from elsewhere) finds no spare and
/// keeps nothing, and one made while the thread exits (a value dropped with the pool) does
/// the same.
///
/// ```
/// use cache_core::driver::SparePool;
///
/// std::thread_local! {
///     // Up to 8 buffers of up to 64 bytes each.
///     static BUFFERS: SparePool<String, 8, 64> = const { SparePool::new() };
/// }
///
/// // A spare buffer if the thread has one, emptied; a new one otherwise.
/// let mut line = SparePool::take(&BUFFERS).unwrap_or_default();
/// line.clear();
/// line.push_str("GET key:42");
/// let kept = line.as_ptr();
/// let size = line.capacity();
/// SparePool::keep(&BUFFERS, line, size);
///
/// // The next use on this thread gets the same buffer back.
/// let again = SparePool::take(&BUFFERS).unwrap();
/// assert_eq!(again.as_ptr(), kept);
///
/// // A value over the size bound is not kept (dropped), nor one past the count.
/// let big = String::with_capacity(65);
/// let size = big.capacity();
/// SparePool::keep(&BUFFERS, big, size);
/// assert!(SparePool::take(&BUFFERS).is_none());
///
/// // What a thread can keep at most: 8 Strings (their own bytes in the pool) of 64 bytes.
/// let most = 8 * (std::mem::size_of::<String>() + 64);
/// assert_eq!(SparePool::<String, 8, 64>::MOST_KEPT, most);
/// ```
pub struct SparePool<T, const COUNT: usize, const RETAINED: usize> {
    spares: RefCell<Vec<T>>,
}

impl<T, const COUNT: usize, const RETAINED: usize> SparePool<T, COUNT, RETAINED> {
    /// The most a thread keeps in this pool, in bytes, when a value's size is the bytes
    /// it holds on the heap: `COUNT` values of `RETAINED` bytes and the pool's own slots.
    pub const MOST_KEPT: usize = COUNT * (std::mem::size_of::<T>() + RETAINED);

    /// An empty pool, for a `thread_local!`'s `const` initialiser.
    pub const fn new() -> Self {
        Self {
            spares: RefCell::new(Vec::new()),
        }
    }

    /// The spare kept last on this thread (its buffers the warmest), as it was kept: clear
    /// it before use. `None` when the thread keeps none (or its pool is in use or gone).
    #[inline]
    pub fn take(pool: &'static LocalKey<Self>) -> Option<T> {
        pool.try_with(|pool| pool.spares.try_borrow_mut().ok()?.pop())
            .ok()
            .flatten()
    }

    /// Keeps `spare`, of `size` (the measure of `RETAINED`), for the next
    /// [`take`](Self::take) on this thread, unless it is over `RETAINED` or the thread
    /// keeps `COUNT` already: then it is dropped, after the pool lets go of its cell.
    #[inline]
    pub fn keep(pool: &'static LocalKey<Self>, spare: T, size: usize) {
        if size > RETAINED {
            return;
        }
        let _ = pool.try_with(|pool| {
            let refused = match pool.spares.try_borrow_mut() {
                Ok(mut spares) if spares.len() < COUNT => {
                    spares.push(spare);
                    return;
                }
                _ => spare,
            };
            // The cell's guard ended with the `match`: a drop that uses the pool finds it free.
            refuse(refused);
        });
    }

    /// How many spares this thread keeps.
    pub fn len(pool: &'static LocalKey<Self>) -> usize {
        pool.try_with(|pool| pool.spares.try_borrow().map_or(0, |spares| spares.len()))
            .unwrap_or(0)
    }
}

/// Drops a spare the pool does not keep (too many kept, or the pool in use): out of line, so
/// that [`SparePool::keep`]'s usual path, a push, stays small (a `redis::Cmd`'s drop inline
/// there cost a keep ~25 instructions, callgrind over a loop of reuses).
#[cold]
#[inline(never)]
fn refuse<T>(spare: T) {
    drop(spare);
}

impl<T, const COUNT: usize, const RETAINED: usize> Default for SparePool<T, COUNT, RETAINED> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::cell::Cell;

    std::thread_local! {
        static NUMBERS: SparePool<Vec<u8>, 3, 16> = const { SparePool::new() };
    }

    /// Both bounds hold, and spares come back last kept first, as they were kept.
    #[test]
    fn a_pool_keeps_at_most_its_count_of_at_most_its_size_last_first() {
        let len = || SparePool::len(&NUMBERS);
        assert!(SparePool::take(&NUMBERS).is_none());
        SparePool::keep(&NUMBERS, vec![1], 16);
        SparePool::keep(&NUMBERS, vec![2], 17);
        assert_eq!(len(), 1, "a spare over the size bound is dropped");
        for i in 3..8 {
            SparePool::keep(&NUMBERS, vec![i], 0);
        }
        assert_eq!(len(), 3, "no more than the count");
        assert_eq!(SparePool::take(&NUMBERS), Some(vec![4]));
        assert_eq!(SparePool::take(&NUMBERS), Some(vec![3]));
        assert_eq!(SparePool::take(&NUMBERS), Some(vec![1]));
        assert_eq!(SparePool::take(&NUMBERS), None);
    }

    /// A value whose `Drop` and `Clone` use its own pool: dropped by the pool (refused, as
    /// one too many or too large) and kept again from its `Drop` (a clone of it), it neither
    /// panics on the pool's cell nor takes the pool past its bound.
    #[derive(Debug)]
    struct Echo(u32);

    std::thread_local! {
        static ECHOES: SparePool<Echo, 2, 1> = const { SparePool::new() };
        static DROPS: Cell<u32> = const { Cell::new(0) };
    }

    impl Clone for Echo {
        fn clone(&self) -> Self {
            // Uses the pool from inside a clone: a spare taken and given back.
            if let Some(spare) = SparePool::take(&ECHOES) {
                SparePool::keep(&ECHOES, spare, 0);
            }
            Echo(self.0 + 1)
        }
    }

    impl Drop for Echo {
        fn drop(&mut self) {
            DROPS.with(|d| d.set(d.get() + 1));
            // Kept again from inside its own drop, a few times over.
            if self.0 < 3 {
                SparePool::keep(&ECHOES, self.clone(), 0);
            }
            let _ = SparePool::take(&ECHOES).map(|echo| SparePool::keep(&ECHOES, echo, 0));
        }
    }

    #[test]
    fn a_pool_used_from_a_drop_or_a_clone_of_its_values_does_not_panic() {
        SparePool::keep(&ECHOES, Echo(10), 0);
        SparePool::keep(&ECHOES, Echo(11), 0);
        // Refused (the pool is full): dropped after the pool lets go; its drop keeps a clone
        // (refused too), whose drop keeps another, up to `Echo(3)`.
        SparePool::keep(&ECHOES, Echo(0), 0);
        // Refused (too large) the same way.
        SparePool::keep(&ECHOES, Echo(1), 2);
        assert_eq!(SparePool::len(&ECHOES), 2);
        assert_eq!(DROPS.with(Cell::get), 4 + 3);
        // Taken out and dropped with room in the pool: its clones are kept.
        drop(SparePool::take(&ECHOES));
        drop(SparePool::take(&ECHOES));
        assert_eq!(SparePool::len(&ECHOES), 0);
        drop(Echo(2));
        assert_eq!(SparePool::len(&ECHOES), 1);
        assert_eq!(SparePool::take(&ECHOES).map(|e| e.0), Some(3));
    }

    /// A thread that exits with values kept whose drop uses the pool (being destroyed):
    /// nothing is kept, nothing panics (a panic there would abort the process).
    #[test]
    fn a_pool_used_while_its_thread_exits_keeps_nothing_and_does_not_panic() {
        std::thread::spawn(|| {
            SparePool::keep(&ECHOES, Echo(0), 0);
            SparePool::keep(&ECHOES, Echo(1), 0);
        })
        .join()
        .unwrap();
    }
}
