//! Which AWS operation a request calls, named as in the AWS API (`UpdateAlias`, `CreateRoute`,
//! `PutRule`, ...): from Lambda's and API Gateway v2's REST paths, the `x-amz-target` header of
//! JSON-protocol services (SQS, EventBridge, ...) and the `Action` of STS/IAM query requests;
//! and whether it writes.

/// The AWS operation a request calls.
pub(super) fn operation(
    method: &str,
    path: &str,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    if is_query(body) {
        let text = String::from_utf8_lossy(body);
        if let Some(action) = text
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
        {
            return action.to_owned();
        }
    }
    // Matched on the raw path, so an escaped `/` in an ARN stays inside its segment. Trimming
    // the slashes also accepts `/2015-03-31/event-source-mappings/` with or without the last.
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let ["v2", rest @ ..] = segments.as_slice() {
        if let Some(name) = api_gateway_v2_operation(method, rest) {
            return name.to_owned();
        }
    }
    let name = match (method, segments.as_slice()) {
        ("POST", [_, "functions"]) => "CreateFunction",
        ("GET", [_, "functions"]) => "ListFunctions",
        ("GET", [_, "functions", _]) => "GetFunction",
        ("DELETE", [_, "functions", _]) => "DeleteFunction",
        ("GET", [_, "functions", _, "configuration"]) => "GetFunctionConfiguration",
        ("PUT", [_, "functions", _, "configuration"]) => "UpdateFunctionConfiguration",
        ("PUT", [_, "functions", _, "code"]) => "UpdateFunctionCode",
        ("POST", [_, "functions", _, "versions"]) => "PublishVersion",
        ("GET", [_, "functions", _, "versions"]) => "ListVersionsByFunction",
        ("POST", [_, "functions", _, "aliases"]) => "CreateAlias",
        ("GET", [_, "functions", _, "aliases"]) => "ListAliases",
        ("GET", [_, "functions", _, "aliases", _]) => "GetAlias",
        ("PUT", [_, "functions", _, "aliases", _]) => "UpdateAlias",
        ("DELETE", [_, "functions", _, "aliases", _]) => "DeleteAlias",
        ("POST", [_, "functions", _, "policy"]) => "AddPermission",
        ("GET", [_, "functions", _, "policy"]) => "GetPolicy",
        ("DELETE", [_, "functions", _, "policy", _]) => "RemovePermission",
        ("POST", [_, "functions", _, "url"]) => "CreateFunctionUrlConfig",
        ("GET", [_, "functions", _, "url"]) => "GetFunctionUrlConfig",
        ("PUT", [_, "functions", _, "url"]) => "UpdateFunctionUrlConfig",
        ("DELETE", [_, "functions", _, "url"]) => "DeleteFunctionUrlConfig",
        ("POST", [_, "functions", _, "invocations"]) => "Invoke",
        ("POST", [_, "event-source-mappings"]) => "CreateEventSourceMapping",
        ("GET", [_, "event-source-mappings"]) => "ListEventSourceMappings",
        ("GET", [_, "event-source-mappings", _]) => "GetEventSourceMapping",
        ("PUT", [_, "event-source-mappings", _]) => "UpdateEventSourceMapping",
        ("DELETE", [_, "event-source-mappings", _]) => "DeleteEventSourceMapping",
        ("POST", [_, "tags", ..]) => "TagResource",
        ("GET", [_, "tags", ..]) => "ListTags",
        ("DELETE", [_, "tags", ..]) => "UntagResource",
        _ => return format!("{method} {path}"),
    };
    name.to_owned()
}

/// API Gateway v2 operations, from the path segments after `/v2/`.
fn api_gateway_v2_operation(method: &str, segments: &[&str]) -> Option<&'static str> {
    let name = match (method, segments) {
        ("POST", ["apis"]) => "CreateApi",
        ("GET", ["apis"]) => "GetApis",
        ("GET", ["apis", _]) => "GetApi",
        ("PATCH", ["apis", _]) => "UpdateApi",
        ("DELETE", ["apis", _]) => "DeleteApi",
        ("POST", ["apis", _, "integrations"]) => "CreateIntegration",
        ("GET", ["apis", _, "integrations"]) => "GetIntegrations",
        ("GET", ["apis", _, "integrations", _]) => "GetIntegration",
        ("PATCH", ["apis", _, "integrations", _]) => "UpdateIntegration",
        ("DELETE", ["apis", _, "integrations", _]) => "DeleteIntegration",
        ("POST", ["apis", _, "routes"]) => "CreateRoute",
        ("GET", ["apis", _, "routes"]) => "GetRoutes",
        ("GET", ["apis", _, "routes", _]) => "GetRoute",
        ("PATCH", ["apis", _, "routes", _]) => "UpdateRoute",
        ("DELETE", ["apis", _, "routes", _]) => "DeleteRoute",
        ("POST", ["apis", _, "stages"]) => "CreateStage",
        ("GET", ["apis", _, "stages"]) => "GetStages",
        ("GET", ["apis", _, "stages", _]) => "GetStage",
        ("PATCH", ["apis", _, "stages", _]) => "UpdateStage",
        ("DELETE", ["apis", _, "stages", _]) => "DeleteStage",
        ("POST", ["tags", ..]) => "TagResource",
        ("GET", ["tags", ..]) => "GetTags",
        ("DELETE", ["tags", ..]) => "UntagResource",
        _ => return None,
    };
    Some(name)
}

/// Whether `operation` changes state: anything but Get/List/Describe (and IAM's policy
/// simulation, which only reads). Unrecognised requests,
/// named `<METHOD> <path>`, are judged by their method.
pub fn is_write(operation: &str) -> bool {
    if let Some((method, _)) = operation.split_once(' ') {
        return !matches!(method, "GET" | "HEAD");
    }
    !["Get", "List", "Describe", "Simulate"]
        .iter()
        .any(|read| operation.starts_with(read))
}

/// Whether `body` is a query-protocol request (STS, IAM, SQS's older protocol).
pub(super) fn is_query(body: &[u8]) -> bool {
    body.starts_with(b"Action=") || body.windows(8).any(|w| w == b"&Action=")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    /// The operation of `"<METHOD> <path>"` with a JSON body and no target header.
    fn rest_operation(request: &str) -> String {
        let (method, path) = request.split_once(' ').unwrap();
        operation(method, path, &HeaderMap::new(), b"{}")
    }

    /// Checks cases written `"<METHOD> <path> => <operation>"`.
    fn assert_operations(cases: &[&str]) {
        for case in cases {
            let (request, expected) = case.split_once(" => ").unwrap();
            assert_eq!(rest_operation(request), expected, "{request}");
        }
    }

    fn target_operation(target: &str) -> String {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-target", target.parse().unwrap());
        operation("POST", "/", &headers, b"{}")
    }

    #[test]
    fn names_lambda_permission_url_and_mapping_operations() {
        let cases = [
            "POST /2015-03-31/functions/demo/policy => AddPermission",
            "GET /2015-03-31/functions/demo/policy => GetPolicy",
            "DELETE /2015-03-31/functions/demo/policy/apigw => RemovePermission",
            "POST /2021-10-31/functions/demo/url => CreateFunctionUrlConfig",
            "GET /2021-10-31/functions/demo/url => GetFunctionUrlConfig",
            "PUT /2021-10-31/functions/demo/url => UpdateFunctionUrlConfig",
            "DELETE /2021-10-31/functions/demo/url => DeleteFunctionUrlConfig",
            "POST /2015-03-31/functions/demo/invocations => Invoke",
            "POST /2015-03-31/event-source-mappings/ => CreateEventSourceMapping",
            "POST /2015-03-31/event-source-mappings => CreateEventSourceMapping",
            "GET /2015-03-31/event-source-mappings/ => ListEventSourceMappings",
            "GET /2015-03-31/event-source-mappings => ListEventSourceMappings",
            "GET /2015-03-31/event-source-mappings/4f1c => GetEventSourceMapping",
            "PUT /2015-03-31/event-source-mappings/4f1c => UpdateEventSourceMapping",
            "DELETE /2015-03-31/event-source-mappings/4f1c => DeleteEventSourceMapping",
            "POST /2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1 => TagResource",
            "GET /2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1 => ListTags",
            "DELETE /2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1 => UntagResource",
            // The alias paths still resolve next to the new ones.
            "PUT /2015-03-31/functions/demo/aliases/live => UpdateAlias",
        ];
        assert_operations(&cases);
    }

    #[test]
    fn names_api_gateway_v2_operations() {
        let cases = [
            "POST /v2/apis => CreateApi",
            "GET /v2/apis => GetApis",
            "GET /v2/apis/a1b2 => GetApi",
            "PATCH /v2/apis/a1b2 => UpdateApi",
            "DELETE /v2/apis/a1b2 => DeleteApi",
            "POST /v2/apis/a1b2/integrations => CreateIntegration",
            "GET /v2/apis/a1b2/integrations => GetIntegrations",
            "GET /v2/apis/a1b2/integrations/i9 => GetIntegration",
            "PATCH /v2/apis/a1b2/integrations/i9 => UpdateIntegration",
            "DELETE /v2/apis/a1b2/integrations/i9 => DeleteIntegration",
            "POST /v2/apis/a1b2/routes => CreateRoute",
            "GET /v2/apis/a1b2/routes => GetRoutes",
            "GET /v2/apis/a1b2/routes/r7 => GetRoute",
            "PATCH /v2/apis/a1b2/routes/r7 => UpdateRoute",
            "DELETE /v2/apis/a1b2/routes/r7 => DeleteRoute",
            "POST /v2/apis/a1b2/stages => CreateStage",
            "GET /v2/apis/a1b2/stages => GetStages",
            "GET /v2/apis/a1b2/stages/%24default => GetStage",
            "PATCH /v2/apis/a1b2/stages/%24default => UpdateStage",
            "DELETE /v2/apis/a1b2/stages/$default => DeleteStage",
            "POST /v2/tags/arn%3Aaws%3Aapigateway%3A%3A%2Fapis%2Fa1b2 => TagResource",
            // An unescaped ARN spreads over several segments; still the same operation.
            "GET /v2/tags/arn:aws:apigateway:us-east-1::/apis/a1b2 => GetTags",
            "DELETE /v2/tags/arn%3Aaws%3Aapigateway => UntagResource",
        ];
        assert_operations(&cases);
    }

    #[test]
    fn names_sqs_and_eventbridge_operations_from_their_target() {
        assert_eq!(target_operation("AmazonSQS.CreateQueue"), "CreateQueue");
        assert_eq!(target_operation("AmazonSQS.GetQueueUrl"), "GetQueueUrl");
        // SQS's older query protocol names the operation in the body instead.
        let query_body = b"Action=CreateQueue&QueueName=demo-jobs&Version=2012-11-05";
        assert_eq!(
            operation("POST", "/", &HeaderMap::new(), query_body),
            "CreateQueue"
        );
        assert_eq!(target_operation("AWSEvents.PutRule"), "PutRule");
        assert_eq!(target_operation("AWSEvents.PutTargets"), "PutTargets");
        assert_eq!(
            target_operation("AWSEvents.ListTargetsByRule"),
            "ListTargetsByRule"
        );
    }

    #[test]
    fn unrecognised_requests_are_named_by_method_and_path() {
        assert_eq!(rest_operation("GET /v2/domainnames"), "GET /v2/domainnames");
    }

    #[test]
    fn classifies_reads_and_writes() {
        for read in [
            "GetApis",
            "GetRoutes",
            "GetPolicy",
            "GetFunctionUrlConfig",
            "ListEventSourceMappings",
            "ListTargetsByRule",
            "DescribeRule",
            "GetQueueUrl",
            "SimulatePrincipalPolicy",
            "GET /v2/domainnames",
        ] {
            assert!(!is_write(read), "{read} is a read");
        }
        for write in [
            "PutRule",
            "PutTargets",
            "AddPermission",
            "RemovePermission",
            "CreateQueue",
            "CreateEventSourceMapping",
            "UpdateStage",
            "TagResource",
            "POST /v2/domainnames",
        ] {
            assert!(is_write(write), "{write} is a write");
        }
    }
}
