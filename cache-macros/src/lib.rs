//! Attribute macros of cachet. (Being written: see the macros branch.)
