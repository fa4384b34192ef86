//! Triggers: what calls a function in each environment — routes on the app's HTTP API, a
//! function URL, an SQS queue, a schedule — as the manifest declares them under
//! `[functions.<fn>]`, with `[environments.<env>.functions.<fn>]` overriding them field by field.

use serde::Deserialize;

/// The route an `http = {}` with no `routes` gets: every method and path.
pub const DEFAULT_ROUTE: &str = "ANY /{proxy+}";
/// SQS's largest batch without a batching window, the default Lambda uses for SQS.
pub const DEFAULT_SQS_BATCH: u32 = 10;
/// SQS queue names: 1..=80 characters (letters, digits, `-`, `_`; `.fifo` may end one).
pub const MAX_QUEUE_NAME: usize = 80;

const ROUTE_METHODS: &[&str] = &[
    "ANY", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
];

/// `http = { routes = ["GET /hello/{name}"] }`: routes on the app's HTTP API (API Gateway v2).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpSpec {
    /// Route keys (`METHOD /path`, or `$default`). Default: `["ANY /{proxy+}"]`.
    pub routes: Option<Vec<String>>,
}

/// `url = { auth = "none" }`: a Lambda function URL on the environment's alias.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UrlSpec {
    pub auth: UrlAuth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UrlAuth {
    /// Anyone may call the URL (`AuthType = NONE`, plus the public-invoke permission).
    None,
    /// Callers sign with SigV4 and need `lambda:InvokeFunctionUrl` (`AuthType = AWS_IAM`).
    Iam,
}

impl UrlAuth {
    /// Lambda's `AuthType`.
    pub fn as_aws(self) -> &'static str {
        match self {
            UrlAuth::None => "NONE",
            UrlAuth::Iam => "AWS_IAM",
        }
    }
}

/// `sqs = { queue = "{app}-{env}-jobs", batch-size = 10, create = true }`. Every field may be
/// overridden per environment.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SqsSpec {
    /// A queue name (`{app}`, `{env}` and `{function}` expand) or a queue ARN.
    pub queue: Option<String>,
    pub batch_size: Option<u32>,
    /// Deploy creates the queue when it is missing (else a missing queue fails pre-flight).
    pub create: Option<bool>,
    /// The event source mapping polls the queue (default true).
    pub enabled: Option<bool>,
}

/// `schedule = { expression = "rate(1 hour)", input = { ... }, enabled = true }`: an
/// EventBridge rule that invokes the environment's alias.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScheduleSpec {
    /// `rate(N unit)` or `cron(minutes hours day-of-month month day-of-week year)`.
    pub expression: Option<String>,
    /// The event the function receives (default: EventBridge's scheduled event).
    pub input: Option<toml::Value>,
    /// The rule exists but does not fire when false (default true).
    pub enabled: Option<bool>,
}

/// The triggers of one function in one environment, overrides applied and names expanded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Triggers {
    /// Route keys on the app's HTTP API.
    pub http: Option<Vec<String>>,
    pub url: Option<UrlAuth>,
    pub sqs: Option<Sqs>,
    pub schedule: Option<Schedule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sqs {
    pub queue: QueueRef,
    pub batch_size: u32,
    pub create: bool,
    pub enabled: bool,
}

/// A queue by name (in the environment's account and region) or by ARN.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum QueueRef {
    Name(String),
    Arn(String),
}

impl QueueRef {
    fn parse(text: &str) -> QueueRef {
        if text.starts_with("arn:") {
            QueueRef::Arn(text.to_owned())
        } else {
            QueueRef::Name(text.to_owned())
        }
    }

    /// The queue's name (the last part of an ARN).
    pub fn name(&self) -> &str {
        match self {
            QueueRef::Name(name) => name,
            QueueRef::Arn(arn) => arn.rsplit(':').next().unwrap_or(arn),
        }
    }

    /// The queue's ARN in `region` and `account` (an ARN stays as written).
    pub fn arn(&self, region: &str, account: &str) -> String {
        match self {
            QueueRef::Name(name) => format!("arn:aws:sqs:{region}:{account}:{name}"),
            QueueRef::Arn(arn) => arn.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub expression: String,
    /// The JSON the rule sends, when the manifest sets `input`.
    pub input: Option<serde_json::Value>,
    pub enabled: bool,
}

/// Field-by-field: the environment's value wins where it sets one.
fn merge<T: Clone>(base: &Option<T>, over: &Option<T>) -> Option<T> {
    over.clone().or_else(|| base.clone())
}

/// Resolves one function's triggers for `env`: `base` from `[functions.<fn>]`, `over` from
/// `[environments.<env>.functions.<fn>]`. `expand` fills `{app}`/`{env}`/`{function}`.
pub fn resolve(
    base: &TriggerSpecs<'_>,
    over: &TriggerSpecs<'_>,
    expand: impl Fn(&str) -> String,
) -> Result<Triggers, String> {
    let http = match (base.http, over.http) {
        (None, None) => None,
        (b, o) => Some(
            o.and_then(|s| s.routes.clone())
                .or_else(|| b.and_then(|s| s.routes.clone()))
                .unwrap_or_else(|| vec![DEFAULT_ROUTE.to_owned()]),
        ),
    };
    let url = over.url.or(base.url).map(|spec| spec.auth);
    let sqs = match (base.sqs, over.sqs) {
        (None, None) => None,
        (b, o) => {
            let b = b.cloned().unwrap_or_default();
            let o = o.cloned().unwrap_or_default();
            let queue =
                merge(&b.queue, &o.queue).ok_or("`sqs` needs a `queue` (a name or an ARN)")?;
            Some(Sqs {
                queue: QueueRef::parse(&expand(&queue)),
                batch_size: merge(&b.batch_size, &o.batch_size).unwrap_or(DEFAULT_SQS_BATCH),
                create: merge(&b.create, &o.create).unwrap_or(false),
                enabled: merge(&b.enabled, &o.enabled).unwrap_or(true),
            })
        }
    };
    let schedule = match (base.schedule, over.schedule) {
        (None, None) => None,
        (b, o) => {
            let b = b.cloned().unwrap_or_default();
            let o = o.cloned().unwrap_or_default();
            let expression = merge(&b.expression, &o.expression)
                .ok_or("`schedule` needs an `expression` (`rate(1 hour)` or `cron(...)`)")?;
            let input = merge(&b.input, &o.input)
                .map(|value| serde_json::to_value(value).map_err(|err| err.to_string()))
                .transpose()?;
            Some(Schedule {
                expression,
                input,
                enabled: merge(&b.enabled, &o.enabled).unwrap_or(true),
            })
        }
    };
    Ok(Triggers {
        http,
        url,
        sqs,
        schedule,
    })
}

/// The trigger tables of one manifest section, borrowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct TriggerSpecs<'a> {
    pub http: Option<&'a HttpSpec>,
    pub url: Option<&'a UrlSpec>,
    pub sqs: Option<&'a SqsSpec>,
    pub schedule: Option<&'a ScheduleSpec>,
}

/// Checks an HTTP API route key: `$default`, or `METHOD /path` whose segments are literals,
/// `{param}`, or a final `{param+}`.
pub fn check_route(route: &str) -> Result<(), String> {
    if route == "$default" {
        return Ok(());
    }
    let hint =
        "write routes as `METHOD /path` (e.g. `GET /hello/{name}`, `ANY /{proxy+}`) or `$default`";
    let Some((method, path)) = route.split_once(' ') else {
        return Err(format!("`{route}` is not a route key: {hint}"));
    };
    if !ROUTE_METHODS.contains(&method) {
        return Err(format!(
            "`{method}` in `{route}` is not a method API Gateway routes on ({})",
            ROUTE_METHODS.join(", ")
        ));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("the path of `{route}` must start with `/`: {hint}"));
    };
    if rest.is_empty() {
        return Ok(());
    }
    let segments: Vec<&str> = rest.split('/').collect();
    for (index, segment) in segments.iter().enumerate() {
        let last = index + 1 == segments.len();
        let problem = if segment.is_empty() {
            Some("an empty segment (`//` or a trailing `/`)".to_owned())
        } else if let Some(inner) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let name = inner.strip_suffix('+').unwrap_or(inner);
            if inner.ends_with('+') && !last {
                Some(format!(
                    "`{segment}`: a greedy `{{name+}}` must be the last segment"
                ))
            } else if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                Some(format!(
                    "`{segment}`: a parameter is `{{name}}` with letters, digits or `_`"
                ))
            } else {
                None
            }
        } else if segment.contains(['{', '}', ' ', '?', '#']) {
            Some(format!(
                "`{segment}`: a segment is a literal or a whole `{{name}}`"
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(format!("route `{route}` has {problem}"));
        }
    }
    Ok(())
}

/// Checks an EventBridge schedule expression as EventBridge would: `rate(N unit)` with the unit
/// singular exactly when N is 1, or `cron(...)` with six fields of which day-of-month or
/// day-of-week is `?`.
pub fn check_schedule(expression: &str) -> Result<(), String> {
    if let Some(inner) = expression
        .strip_prefix("rate(")
        .and_then(|s| s.strip_suffix(')'))
    {
        let mut parts = inner.split_whitespace();
        let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "`{expression}`: a rate is `rate(<number> <unit>)`, e.g. `rate(5 minutes)`"
            ));
        };
        let value: u64 =
            value.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
                format!("`{expression}`: the rate must be a whole number above 0")
            })?;
        let singular = ["minute", "hour", "day"];
        let plural = ["minutes", "hours", "days"];
        return match (value, unit) {
            (1, unit) if singular.contains(&unit) => Ok(()),
            (1, unit) if plural.contains(&unit) => Err(format!(
                "`{expression}`: EventBridge wants the singular for 1 (`rate(1 {})`)",
                unit.trim_end_matches('s')
            )),
            (_, unit) if plural.contains(&unit) => Ok(()),
            (_, unit) if singular.contains(&unit) => Err(format!(
                "`{expression}`: EventBridge wants the plural above 1 (`rate({value} {unit}s)`)"
            )),
            _ => Err(format!(
                "`{expression}`: the unit must be minute(s), hour(s) or day(s)"
            )),
        };
    }
    if let Some(inner) = expression
        .strip_prefix("cron(")
        .and_then(|s| s.strip_suffix(')'))
    {
        let fields: Vec<&str> = inner.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(format!(
                "`{expression}`: a cron expression has 6 fields (minutes hours day-of-month \
                 month day-of-week year), it has {}",
                fields.len()
            ));
        }
        if fields[2] != "?" && fields[4] != "?" {
            return Err(format!(
                "`{expression}`: EventBridge needs `?` in day-of-month or day-of-week, e.g. \
                 `cron(0 12 * * ? *)`"
            ));
        }
        return Ok(());
    }
    Err(format!(
        "`{expression}` is not a schedule expression: use `rate(1 hour)` or `cron(0 12 * * ? *)`"
    ))
}

/// Checks a queue name (after expansion): 1..=80 letters, digits, `-`, `_`, optionally ending
/// in `.fifo`.
pub fn check_queue_name(name: &str) -> Result<(), String> {
    let stem = name.strip_suffix(".fifo").unwrap_or(name);
    if name.is_empty()
        || name.len() > MAX_QUEUE_NAME
        || !stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "`{name}` is not a legal SQS queue name: 1 to {MAX_QUEUE_NAME} letters, digits, `-` \
             and `_` (a FIFO queue ends in `.fifo`)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_checked_as_api_gateway_does() {
        for good in [
            "$default",
            "GET /hello/{name}",
            "ANY /{proxy+}",
            "POST /",
            "DELETE /orders/{id}/items",
        ] {
            assert_eq!(check_route(good), Ok(()), "{good}");
        }
        for (bad, needle) in [
            ("/hello", "not a route key"),
            ("FETCH /hello", "not a method"),
            ("GET hello", "must start with `/`"),
            ("GET /a//b", "empty segment"),
            ("GET /{proxy+}/x", "must be the last segment"),
            ("GET /a{b}", "a literal or a whole"),
            ("GET /{}", "a parameter is"),
        ] {
            let err = check_route(bad).expect_err(bad);
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn schedules_are_checked_as_eventbridge_does() {
        for good in [
            "rate(1 hour)",
            "rate(5 minutes)",
            "cron(0 12 * * ? *)",
            "cron(15 10 ? * MON-FRI *)",
        ] {
            assert_eq!(check_schedule(good), Ok(()), "{good}");
        }
        for (bad, needle) in [
            ("rate(1 hours)", "singular"),
            ("rate(2 hour)", "plural"),
            ("rate(0 minutes)", "above 0"),
            ("rate(5 weeks)", "unit must be"),
            ("cron(0 12 * * *)", "6 fields"),
            ("cron(0 12 * * * *)", "`?`"),
            ("every hour", "not a schedule expression"),
        ] {
            let err = check_schedule(bad).expect_err(bad);
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn queue_names_follow_sqs_rules() {
        assert!(check_queue_name("demo-staging-jobs").is_ok());
        assert!(check_queue_name("demo-jobs.fifo").is_ok());
        assert!(check_queue_name("has space").is_err());
        assert!(check_queue_name(&"q".repeat(81)).is_err());
    }

    #[test]
    fn overrides_apply_field_by_field() {
        let base_schedule = ScheduleSpec {
            expression: Some("rate(1 hour)".into()),
            input: Some(toml::Value::from("x")),
            enabled: None,
        };
        let off = ScheduleSpec {
            enabled: Some(false),
            ..ScheduleSpec::default()
        };
        let base_sqs = SqsSpec {
            queue: Some("{app}-{env}-jobs".into()),
            create: Some(true),
            ..SqsSpec::default()
        };
        let small_batches = SqsSpec {
            batch_size: Some(2),
            ..SqsSpec::default()
        };
        let base = TriggerSpecs {
            http: Some(&HttpSpec { routes: None }),
            schedule: Some(&base_schedule),
            sqs: Some(&base_sqs),
            ..TriggerSpecs::default()
        };
        let over = TriggerSpecs {
            schedule: Some(&off),
            sqs: Some(&small_batches),
            ..TriggerSpecs::default()
        };
        let triggers = resolve(&base, &over, |s| {
            s.replace("{app}", "demo").replace("{env}", "dev")
        })
        .unwrap();
        assert_eq!(triggers.http, Some(vec![DEFAULT_ROUTE.to_owned()]));
        let schedule = triggers.schedule.unwrap();
        assert_eq!(schedule.expression, "rate(1 hour)");
        assert!(!schedule.enabled);
        assert_eq!(schedule.input, Some(serde_json::json!("x")));
        let sqs = triggers.sqs.unwrap();
        assert_eq!(sqs.queue, QueueRef::Name("demo-dev-jobs".into()));
        assert_eq!((sqs.batch_size, sqs.create, sqs.enabled), (2, true, true));

        let orphan = TriggerSpecs {
            schedule: Some(&off),
            ..TriggerSpecs::default()
        };
        let err = resolve(&TriggerSpecs::default(), &orphan, str::to_owned).unwrap_err();
        assert!(err.contains("needs an `expression`"), "{err}");
    }
}
