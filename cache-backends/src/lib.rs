//! Providers of cachet. (Being written.)
