//! The browser timeline (`collector/web/`), embedded in the crate and
//! served at `/`: plain JavaScript modules, nothing loaded from elsewhere.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// (path under `/`, content type, bytes)
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../web/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../web/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../web/favicon.svg"),
    ),
    (
        "js/main.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../web/js/main.js"),
    ),
    (
        "js/conn.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../web/js/conn.js"),
    ),
    (
        "js/store.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../web/js/store.js"),
    ),
    (
        "js/timeline.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../web/js/timeline.js"),
    ),
    (
        "js/panels.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../web/js/panels.js"),
    ),
    (
        "js/format.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../web/js/format.js"),
    ),
];

fn asset(path: &str) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, ty, body)) => (
            [
                (header::CONTENT_TYPE, *ty),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

pub async fn index() -> Response {
    asset("index.html")
}

pub async fn file(Path(path): Path<String>) -> Response {
    asset(&path)
}
