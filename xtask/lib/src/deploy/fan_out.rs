//! The same work on many functions at once: each function's plan, its preparation (upload,
//! configuration, `LastUpdateStatus`, publish) and its alias move run concurrently, a bounded
//! number at a time, and their results come back in the manifest's order however they finish,
//! so the output reads the same on every run. The work is I/O (AWS calls, waits), so it shares
//! one thread: the futures are polled together, none is spawned.
//!
//! Throttling is not handled here: every AWS call goes through the SDK's standard retry
//! strategy ([`super::aws`]), which retries throttling errors with exponential backoff and
//! jitter.

use std::future::Future;

use futures_util::stream::{self, Stream, StreamExt as _};

/// How many functions a command works on at once. Lambda allows 15 control-plane requests per
/// second per Region for the whole account (GetFunction 100, not counted in the 15), and the
/// limit cannot be raised. A function's deploy is a few calls spread over seconds of upload and
/// `LastUpdateStatus` waits, so most of the time most functions are waiting, not calling; a
/// burst above the rate (the plans' reads, which all start together) is throttled, and the
/// SDK retries it with backoff ([`super::aws`]). The bound keeps what is in flight modest: each
/// upload holds its zip in memory, and each function has a line on the terminal. An app of up
/// to 16 functions deploys in one round.
pub const FUNCTIONS_AT_ONCE: usize = 16;

/// Runs `work` on every item, at most [`FUNCTIONS_AT_ONCE`] at a time, started in the items'
/// order; returns the results in the items' order.
pub async fn each<T, R, F, Fut>(items: impl IntoIterator<Item = T>, work: F) -> Vec<R>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = R>,
{
    in_order(items, work).collect().await
}

/// As [`each`], but yields each result as soon as it and every earlier item's are done, so a
/// caller can print them in order while later items still run.
pub fn in_order<T, R, F, Fut>(items: impl IntoIterator<Item = T>, work: F) -> impl Stream<Item = R>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = R>,
{
    stream::iter(items).map(work).buffered(FUNCTIONS_AT_ONCE)
}

/// Every value, or one error made of every failure, in the items' order.
pub fn all_ok<R>(results: Vec<anyhow::Result<R>>) -> anyhow::Result<Vec<R>> {
    let (values, errors): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    if errors.is_empty() {
        return Ok(values.into_iter().filter_map(Result::ok).collect());
    }
    Err(combined(
        errors.into_iter().filter_map(Result::err).collect(),
    ))
}

/// One error saying each of `errors` (at least one), a line each, in their order.
pub fn combined(mut errors: Vec<anyhow::Error>) -> anyhow::Error {
    if errors.len() == 1 {
        return errors.remove(0);
    }
    anyhow::anyhow!(
        "{}",
        errors
            .iter()
            .map(|err| format!("{err:#}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Duration;

    use super::*;

    #[test]
    fn results_come_in_the_items_order_with_a_bounded_number_in_flight() {
        let in_flight = Cell::new(0);
        let most = Cell::new(0);
        let finished = std::cell::RefCell::new(Vec::new());
        let items: Vec<u64> = (0..20).collect();
        let results = crate::deploy::runtime().unwrap().block_on(each(items, |i| {
            let (in_flight, most, finished) = (&in_flight, &most, &finished);
            async move {
                in_flight.set(in_flight.get() + 1);
                most.set(most.get().max(in_flight.get()));
                // Later items finish first.
                tokio::time::sleep(Duration::from_millis(40 - 2 * i)).await;
                in_flight.set(in_flight.get() - 1);
                finished.borrow_mut().push(i);
                format!("item {i}")
            }
        }));
        let expected: Vec<String> = (0..20).map(|i| format!("item {i}")).collect();
        assert_eq!(results, expected);
        assert_eq!(most.get(), FUNCTIONS_AT_ONCE, "concurrent, and bounded");
        assert_ne!(
            *finished.borrow(),
            (0..20).collect::<Vec<_>>(),
            "they finished out of order"
        );
    }

    #[test]
    fn all_ok_keeps_the_values_or_names_every_failure() {
        let values = all_ok(vec![Ok(1), Ok(2)]).unwrap();
        assert_eq!(values, [1, 2]);
        let one: anyhow::Result<Vec<i32>> = all_ok(vec![Ok(1), Err(anyhow::anyhow!("b failed"))]);
        assert_eq!(format!("{:#}", one.unwrap_err()), "b failed");
        let two: anyhow::Result<Vec<i32>> = all_ok(vec![
            Err(anyhow::anyhow!("a failed").context("pre-flight of `a`")),
            Ok(2),
            Err(anyhow::anyhow!("c failed")),
        ]);
        assert_eq!(
            format!("{:#}", two.unwrap_err()),
            "pre-flight of `a`: a failed\nc failed"
        );
    }
}
