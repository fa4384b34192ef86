//! `http-api`: an axum router whose state is the environment's config.
//! `GET /hello/{name}` → `{"message": "<greeting>, <name>!", "env": "<env>"}`.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use lambda_stage::http::Env;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Config {
    /// `APP_GREETING`
    greeting: String,
}

async fn hello(State(env): State<Env<Config>>, Path(name): Path<String>) -> Json<Value> {
    Json(json!({
        "message": format!("{}, {name}!", env.config().greeting),
        "env": env.name(),
    }))
}

fn router(env: Env<Config>) -> Router {
    Router::new()
        .route("/hello/{name}", get(hello))
        .with_state(env)
}

#[tokio::main]
async fn main() -> Result<(), lambda_stage::Error> {
    lambda_stage::http::run_router(router).await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt as _;
    use lambda_stage::testing::TestInvocation;
    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test]
    async fn says_hello_with_the_environment() {
        let test = TestInvocation::new("prod").config_vars(&[("APP_PROD__GREETING", "Hej")]);
        let env = test.env::<Config>().await.unwrap();
        let response = router(env)
            .oneshot(Request::get("/hello/Ada").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body, json!({ "message": "Hej, Ada!", "env": "prod" }));
    }
}
