//! The template's handler: `{"command": "..."}` → `{"req_id", "msg"}`.

use lambda_runtime::{tracing, Error, LambdaEvent};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub(crate) struct IncomingMessage {
    command: String,
}

#[derive(Serialize)]
pub(crate) struct OutgoingMessage {
    req_id: String,
    msg: String,
}

pub(crate) async fn function_handler(
    event: LambdaEvent<IncomingMessage>,
) -> Result<OutgoingMessage, Error> {
    tracing::info!(command = %event.payload.command, "handling");
    Ok(OutgoingMessage {
        req_id: event.context.request_id,
        msg: format!("Command {}.", event.payload.command),
    })
}
