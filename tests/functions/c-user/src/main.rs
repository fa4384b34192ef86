//! Answers `{"digits": n}` for an event `{"number": x}`, with `n` counted by C code
//! (`src/digits.c`), so a build that did not compile and link the C part cannot answer.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

extern "C" {
    fn c_digits(value: i64) -> usize;
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let number = event.payload["number"]
        .as_i64()
        .ok_or("the event needs an integer `number`")?;
    // SAFETY: `c_digits` takes a plain integer and only writes to its own stack buffer.
    let digits = unsafe { c_digits(number) };
    Ok(json!({ "digits": digits }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
