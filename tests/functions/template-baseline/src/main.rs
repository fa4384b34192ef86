//! The shape of what `cargo lambda new` generates for an event function: lambda_runtime's
//! default tracing subscriber, and a handler in its own module that echoes a command with the
//! request id. `cargo xtask bench coldstart` measures lambda-stage's `hello` against it.

use lambda_runtime::{run, service_fn, tracing, Error};

mod event_handler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    run(service_fn(event_handler::function_handler)).await
}
