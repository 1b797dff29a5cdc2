//! How the macros print a type or an expression in their labels and messages: the token
//! stream's text without the spaces `to_string` puts around punctuation.

/// `Vec < Option < u8 > >` → `Vec<Option<u8>>`, `& str` → `&str`.
pub(crate) fn tidy(s: &str) -> String {
    s.replace(" < ", "<")
        .replace("< ", "<")
        .replace(" <", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace("& ", "&")
}

/// A path as written, for messages (`crate :: caches :: USERS` → `crate::caches::USERS`).
pub(crate) fn path_text(path: &syn::Path) -> String {
    quote::ToTokens::to_token_stream(path)
        .to_string()
        .replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::tidy;

    #[test]
    fn spaces_around_punctuation_are_dropped() {
        assert_eq!(tidy("Vec < Option < u8 > >"), "Vec<Option<u8>>");
        assert_eq!(
            tidy("std :: borrow :: Cow < 'static , str >"),
            "std::borrow::Cow<'static, str>"
        );
        assert_eq!(tidy("& str"), "&str");
    }
}
