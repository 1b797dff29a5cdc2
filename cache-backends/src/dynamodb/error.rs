//! SDK errors as [`TierError`]s: which ones the circuit breaker counts, and messages that
//! name the operation and never carry a credential.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use cache_core::{TierError, TierErrorKind};

/// Service error codes that mean "DynamoDB cannot serve this now": the breaker counts
/// them, so a throttled or failing table is left alone for a while.
const UNAVAILABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
];

/// The service error code of a failed conditional write.
pub(crate) const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

/// Maps an SDK error; `secrets` (the static credentials, if any) are scrubbed from the
/// message in case a server echoes them.
pub(crate) fn tier_error<E>(
    op: &str,
    err: &SdkError<E, HttpResponse>,
    secrets: &[&str],
) -> TierError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (kind, text) = match err {
        SdkError::ServiceError(service) => {
            let code = err.code().unwrap_or("an unnamed error");
            let message = err.message().unwrap_or("");
            let status = service.raw().status().as_u16();
            let unavailable = UNAVAILABLE_CODES.contains(&code) || status >= 500;
            let kind = if unavailable {
                TierErrorKind::Unavailable
            } else {
                TierErrorKind::Other
            };
            let text = if message.is_empty() {
                format!("{code} (HTTP {status})")
            } else {
                format!("{code}: {message}")
            };
            (kind, text)
        }
        SdkError::TimeoutError(_) => (
            TierErrorKind::Unavailable,
            "timed out (operation_timeout)".to_owned(),
        ),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => (
            TierErrorKind::Unavailable,
            DisplayErrorContext(err).to_string(),
        ),
        // Construction failures are ours or the configuration's (no region, no
        // credentials): retrying soon will not help, but nor does anything else.
        _ => (TierErrorKind::Other, DisplayErrorContext(err).to_string()),
    };
    TierError::with_kind(scrub(&format!("dynamodb {op}: {text}"), secrets), kind)
}

/// Whether the error is the service saying a condition did not hold.
pub(crate) fn is_condition_failed<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    matches!(err, SdkError::ServiceError(_)) && err.code() == Some(CONDITION_FAILED)
}

/// `text` with each secret replaced by `***`, and URLs and `name=value` pairs that look
/// like credentials redacted ([`cache_core::redact::redact_text`]).
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = cache_core::redact::redact_text(text);
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed() {
        assert_eq!(
            scrub("key AKID and s3cret here", &["AKID", "s3cret", ""]),
            "key *** and *** here"
        );
    }
}
