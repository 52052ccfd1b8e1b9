//! The web UI: one HTML page, its script and its style sheet, embedded in the binary (no CDN, works
//! offline). The page talks to the same HTTP API as the CLI, with the token the user signs in with.

use axum::http::header;
use axum::response::IntoResponse;

const INDEX: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

/// What the page may load and run: only its own script and styles (inline style attributes aside), its
/// own API, and the blob URLs of its downloads; no framing. The token a user signs in with lives in the
/// page, so no other script may ever run beside it.
const CSP: &str = "default-src 'self'; script-src 'self'; connect-src 'self' blob:; \
     img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// `GET /`: the page.
pub async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        INDEX,
    )
}

/// `GET /ui/app.js`.
pub async fn app_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
}

/// `GET /ui/app.css`.
pub async fn app_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS)
}
