//! Independent reads of what deploy created in moto (HTTP APIs, stages, routes, queues,
//! mappings, rules, role policies), with the AWS SDK pointed straight at moto: not through the
//! code under test, and not through the fault proxy.

use std::collections::BTreeMap;

use serde_json::Value;

/// Clients that read moto directly.
pub struct MotoReads {
    pub apigw: aws_sdk_apigatewayv2::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
}

/// Reads moto at `endpoint`, in `region`, as an independent client.
pub async fn connect(endpoint: &str, region: &str) -> MotoReads {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_lambda::config::Credentials::for_tests())
        .load()
        .await;
    MotoReads {
        apigw: aws_sdk_apigatewayv2::Client::new(&config),
        sqs: aws_sdk_sqs::Client::new(&config),
        events: aws_sdk_eventbridge::Client::new(&config),
        lambda: aws_sdk_lambda::Client::new(&config),
        iam: aws_sdk_iam::Client::new(&config),
    }
}

impl MotoReads {
    /// The APIs by name, with their ids.
    pub async fn apis(&self) -> BTreeMap<String, String> {
        let apis = self.apigw.get_apis().send().await.unwrap();
        apis.items()
            .iter()
            .map(|a| (a.name().unwrap().to_owned(), a.api_id().unwrap().to_owned()))
            .collect()
    }

    /// Stage name -> its variables.
    pub async fn stages(&self, api: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        let stages = self.apigw.get_stages().api_id(api).send().await.unwrap();
        stages
            .items()
            .iter()
            .map(|s| {
                assert_eq!(s.auto_deploy(), Some(true), "stages deploy themselves");
                (
                    s.stage_name().unwrap().to_owned(),
                    s.stage_variables()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                )
            })
            .collect()
    }

    /// Route key -> the integration URI it reaches.
    pub async fn routes(&self, api: &str) -> BTreeMap<String, String> {
        let integrations = self
            .apigw
            .get_integrations()
            .api_id(api)
            .send()
            .await
            .unwrap();
        let uri_of = |target: &str| {
            integrations
                .items()
                .iter()
                .find(|i| {
                    Some(target)
                        == i.integration_id()
                            .map(|id| format!("integrations/{id}"))
                            .as_deref()
                })
                .and_then(|i| i.integration_uri().map(str::to_owned))
                .unwrap_or_else(|| format!("(no integration for {target})"))
        };
        let routes = self.apigw.get_routes().api_id(api).send().await.unwrap();
        routes
            .items()
            .iter()
            .map(|r| {
                (
                    r.route_key().unwrap().to_owned(),
                    uri_of(r.target().unwrap_or_default()),
                )
            })
            .collect()
    }

    pub async fn queue_exists(&self, name: &str) -> bool {
        self.sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .is_ok()
    }

    /// (state, target ARN, input) of a rule, `None` when it does not exist.
    pub async fn rule(&self, name: &str) -> Option<(String, String, Option<Value>)> {
        let rule = self.events.describe_rule().name(name).send().await.ok()?;
        let targets = self
            .events
            .list_targets_by_rule()
            .rule(name)
            .send()
            .await
            .unwrap();
        let target = targets.targets().first().cloned();
        Some((
            rule.state().unwrap().as_str().to_owned(),
            target
                .as_ref()
                .map(|t| t.arn().to_owned())
                .unwrap_or_default(),
            target
                .and_then(|t| t.input().map(str::to_owned))
                .map(|i| serde_json::from_str(&i).unwrap()),
        ))
    }

    /// The event sources mapped to a qualified function ARN.
    pub async fn mapped_sources(&self, function_arn: &str) -> Vec<String> {
        let mappings = self
            .lambda
            .list_event_source_mappings()
            .function_name(function_arn)
            .send()
            .await
            .unwrap();
        mappings
            .event_source_mappings()
            .iter()
            .map(|m| m.event_source_arn().unwrap().to_owned())
            .collect()
    }

    pub async fn role_policy(&self, role: &str) -> String {
        self.iam
            .get_role_policy()
            .role_name(role)
            .policy_name("lambda-stage-execution")
            .send()
            .await
            .unwrap()
            .policy_document()
            .to_owned()
    }
}
