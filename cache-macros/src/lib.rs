//! Attribute macros of cachet. (Being written: see the macros branch.)

use proc_macro::TokenStream;

/// Caches the function's result. (Being written.)
#[proc_macro_attribute]
pub fn cacheable(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
/// Stores the function's result. (Being written.)
#[proc_macro_attribute]
pub fn cache_put(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
/// Evicts entries. (Being written.)
#[proc_macro_attribute]
pub fn cache_evict(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
/// Default cache names for an impl block. (Being written.)
#[proc_macro_attribute]
pub fn cache_config(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
