//! The service's one error type: what a repository call or a handler can fail with.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A failure of the service. Repository methods return `Result<_, AppError>`, so a failed
/// query is answered as an error and never cached (cachet stores only `Ok` values).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the migrations of `migrations/` failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The request asked for something that is not valid (for example a negative price).
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match self {
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Database(_) | AppError::Migration(_) => {
                tracing::error!(error = %self, "request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (status, self.to_string()).into_response()
    }
}
