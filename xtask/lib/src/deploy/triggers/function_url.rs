//! `url`: a Lambda function URL on the environment's alias (`Qualifier` = the alias), and for
//! `auth = "none"` the public-invoke permissions that a URL without auth needs.
//!
//! The alias is lambda-stage's, so a URL on it that the manifest no longer names is removed.

use aws_sdk_lambda::types::FunctionUrlAuthType;

use super::permission::{self, AliasPolicy, Permission};
use super::{Converge, EnvTargets, Target, TriggerStatus};
use crate::deploy::aws::{describe, failed, is_not_found, EnvClients};
use crate::manifest::triggers::UrlAuth;

struct Url {
    address: String,
    auth: Option<FunctionUrlAuthType>,
}

async fn read(clients: &EnvClients, target: &Target) -> anyhow::Result<Option<Url>> {
    match clients
        .lambda
        .get_function_url_config()
        .function_name(&target.name)
        .qualifier(&target.alias)
        .send()
        .await
    {
        Ok(config) => Ok(Some(Url {
            address: config.function_url().to_owned(),
            auth: Some(config.auth_type().clone()),
        })),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(anyhow::anyhow!(
            "could not read the function URL of `{}:{}`: {}",
            target.name,
            target.alias,
            describe(&err)
        )),
    }
}

fn permission_ids(targets: &EnvTargets) -> [String; 2] {
    [
        format!("lambda-stage-url-{}", targets.env),
        format!("lambda-stage-url-invoke-{}", targets.env),
    ]
}

pub async fn converge(
    clients: &EnvClients,
    policy: &mut AliasPolicy,
    targets: &EnvTargets,
    target: &Target,
    mode: &mut Converge,
) -> anyhow::Result<()> {
    let existing = read(clients, target).await?;
    let [url_sid, invoke_sid] = permission_ids(targets);
    let Some(auth) = target.triggers.url else {
        if existing.is_some()
            && mode.change(format!(
                "{}: remove the function URL of alias `{}`",
                target.function, target.alias
            ))
        {
            clients
                .lambda
                .delete_function_url_config()
                .function_name(&target.name)
                .qualifier(&target.alias)
                .send()
                .await
                .map_err(failed(format!(
                    "delete the function URL of `{}:{}`",
                    target.name, target.alias
                )))?;
        }
        for sid in [&url_sid, &invoke_sid] {
            permission::revoke(clients, policy, target, sid, "its function URL", mode).await?;
        }
        return Ok(());
    };
    let wanted = match auth {
        UrlAuth::None => FunctionUrlAuthType::None,
        UrlAuth::Iam => FunctionUrlAuthType::AwsIam,
    };
    let address = match existing {
        None => {
            if mode.change(format!(
                "{}: create a function URL on alias `{}` (auth {})",
                target.function,
                target.alias,
                auth.as_aws()
            )) {
                let created = clients
                    .lambda
                    .create_function_url_config()
                    .function_name(&target.name)
                    .qualifier(&target.alias)
                    .auth_type(wanted.clone())
                    .send()
                    .await
                    .map_err(failed(format!(
                        "create the function URL of `{}:{}`",
                        target.name, target.alias
                    )))?;
                Some(created.function_url().to_owned())
            } else {
                None
            }
        }
        Some(url) if url.auth.as_ref() != Some(&wanted) => {
            if mode.change(format!(
                "{}: function URL {} auth -> {}",
                target.function,
                url.address,
                auth.as_aws()
            )) {
                clients
                    .lambda
                    .update_function_url_config()
                    .function_name(&target.name)
                    .qualifier(&target.alias)
                    .auth_type(wanted.clone())
                    .send()
                    .await
                    .map_err(failed(format!(
                        "update the function URL of `{}:{}`",
                        target.name, target.alias
                    )))?;
            }
            Some(url.address)
        }
        Some(url) => Some(url.address),
    };
    if let Some(address) = address {
        mode.reachable_at(format!(
            "{address} -> {} (function URL, auth {})",
            target.function,
            auth.as_aws()
        ));
    }
    if auth == UrlAuth::None {
        let public = [
            Permission {
                sid: url_sid,
                action: "lambda:InvokeFunctionUrl",
                principal: "*",
                source_arn: None,
                public_url: true,
                via_function_url: false,
            },
            Permission {
                sid: invoke_sid,
                action: "lambda:InvokeFunction",
                principal: "*",
                source_arn: None,
                public_url: false,
                via_function_url: true,
            },
        ];
        for wanted in &public {
            let what = if wanted.via_function_url {
                format!("calls through the URL to invoke alias `{}`", target.alias)
            } else {
                format!(
                    "anyone to call the function URL of alias `{}`",
                    target.alias
                )
            };
            permission::converge(clients, policy, target, wanted, &what, mode).await?;
        }
    } else {
        for sid in [&url_sid, &invoke_sid] {
            permission::revoke(clients, policy, target, sid, "public URL access", mode).await?;
        }
    }
    Ok(())
}

pub async fn status(clients: &EnvClients, target: &Target) -> anyhow::Result<Vec<TriggerStatus>> {
    let Some(auth) = target.triggers.url else {
        return Ok(Vec::new());
    };
    let (address, state) = match read(clients, target).await? {
        Some(url) => (url.address, format!("auth {}", auth.as_aws())),
        None => (String::new(), "missing".to_owned()),
    };
    Ok(vec![TriggerStatus {
        kind: "url",
        function: Some(target.function.clone()),
        target: address,
        state,
    }])
}
