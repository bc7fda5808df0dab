//! A hello-world Lambda function, the baseline of the `cold_start` bench: the runtime the
//! functions use (`lambda_runtime` on a current-thread Tokio runtime) and a handler that
//! answers a constant. No logs, configuration, clients or warm-up.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async { Ok::<_, Error>(json!({ "hello": "world" })) })).await
}
