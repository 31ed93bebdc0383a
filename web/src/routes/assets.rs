//! Static assets embedded in the binary: Bootstrap's dist CSS and JS
//! (vendored from the `bootstrap` npm package, see `assets/bootstrap/`) and
//! the interface's own small CSS and JS. Nothing is fetched from a CDN.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::access::{Routes, PUBLIC};

pub(crate) fn router() -> Routes {
    Routes::new().get("/assets/{file}", PUBLIC, serve)
}

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "bootstrap.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/bootstrap/bootstrap.min.css"),
    },
    Asset {
        name: "bootstrap.bundle.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/bootstrap/bootstrap.bundle.min.js"),
    },
    Asset {
        name: "bootstrap-LICENSE.txt",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../../assets/bootstrap/LICENSE"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/app.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../assets/favicon.svg"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/app.js"),
    },
];

async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(a.content_type),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                ),
            ],
            a.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}
