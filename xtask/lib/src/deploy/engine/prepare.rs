//! A function's version made ready: role, function, code, configuration, tags, publish.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, Runtime};

use super::{Desired, Plan, RoleSpec};
use crate::arch::Arch;
use crate::deploy::aws::{describe, error_code, is_conflict, EnvClients};
use crate::deploy::role::{create_role, put_role_policy, role_arn, ROLE_PROPAGATION_LIMIT};
use crate::deploy::wait::{self, Change};

/// Everything up to (not including) the alias move: role, function, code, configuration,
/// tags, version. Returns the version the alias should get.
pub async fn prepare(clients: &EnvClients, plan: &Plan) -> anyhow::Result<String> {
    let d = &plan.desired;
    if let RoleSpec::Managed { name } = &d.settings.role {
        if plan.create_role {
            create_role(clients, name, d).await?;
        } else if plan.update_role_policy {
            put_role_policy(clients, name, d).await?;
        }
    }
    if let Some(version) = &plan.reuse_version {
        if plan.update_tags {
            tag_function(clients, d).await?;
        }
        return Ok(version.clone());
    }
    let role = role_arn(&d.settings.role, clients);
    let mut revision = plan.latest_revision.clone();
    if plan.create_function {
        let zip = d.artifact.read_zip().await?;
        let started = Instant::now();
        let created = loop {
            let attempt = clients
                .lambda
                .create_function()
                .function_name(&d.name)
                .runtime(Runtime::Providedal2023)
                .handler("bootstrap")
                .role(&role)
                .code(
                    FunctionCode::builder()
                        .zip_file(Blob::new(zip.clone()))
                        .build(),
                )
                .architectures(lambda_arch(d.settings.arch))
                .memory_size(d.settings.memory_mb)
                .timeout(d.settings.timeout_secs)
                .environment(environment(d))
                .set_tags(Some(d.tags.clone().into_iter().collect()))
                .publish(false)
                .send()
                .await;
            match attempt {
                // A new role takes a few seconds before Lambda may assume it.
                Err(err)
                    if plan.create_role
                        && error_code(&err) == Some("InvalidParameterValueException")
                        && started.elapsed() < ROLE_PROPAGATION_LIMIT =>
                {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                Err(err) if is_conflict(&err) => bail!(
                    "function `{}` was created by someone else while this deploy ran \
                     (concurrent deploy?): {}",
                    d.name,
                    describe(&err)
                ),
                other => {
                    break other.map_err(|err| {
                        anyhow::anyhow!(
                            "could not create function `{}`: {}",
                            d.name,
                            describe(&err)
                        )
                    })?
                }
            }
        };
        revision = created.revision_id().map(str::to_owned);
        revision = wait::until_done(clients, &d.name, Change::Created)
            .await?
            .or(revision);
    } else {
        // A change in progress when the plan read the function (another deploy's, or the
        // console's) would refuse ours: wait for it. One that starts later changes the
        // `RevisionId`, and the precondition below refuses ours as a conflict.
        if plan.latest_busy {
            wait::until_done(clients, &d.name, Change::Updated).await?;
        }
        if plan.upload_code {
            let zip = d.artifact.read_zip().await?;
            let updated = clients
                .lambda
                .update_function_code()
                .function_name(&d.name)
                .zip_file(Blob::new(zip))
                .architectures(lambda_arch(d.settings.arch))
                .set_revision_id(revision.clone())
                .publish(false)
                .send()
                .await
                .map_err(|err| conflict_or(err, &d.name, "upload the code of"))?;
            revision = updated.revision_id().map(str::to_owned);
            revision = wait::until_done(clients, &d.name, Change::Updated)
                .await?
                .or(revision);
        }
        if !plan.config_changes.is_empty() {
            let updated = clients
                .lambda
                .update_function_configuration()
                .function_name(&d.name)
                .runtime(Runtime::Providedal2023)
                .handler("bootstrap")
                .role(&role)
                .memory_size(d.settings.memory_mb)
                .timeout(d.settings.timeout_secs)
                .environment(environment(d))
                .set_revision_id(revision.clone())
                .send()
                .await
                .map_err(|err| conflict_or(err, &d.name, "update the configuration of"))?;
            revision = updated.revision_id().map(str::to_owned);
            revision = wait::until_done(clients, &d.name, Change::Updated)
                .await?
                .or(revision);
        }
        if plan.update_tags {
            tag_function(clients, d).await?;
        }
    }
    // The CodeSha256 and RevisionId preconditions make AWS refuse to publish anything but
    // what this deploy uploaded and configured.
    let published = clients
        .lambda
        .publish_version()
        .function_name(&d.name)
        .code_sha256(&d.artifact.code_sha256)
        .description(d.stamp.to_description())
        .set_revision_id(revision)
        .send()
        .await
        .map_err(|err| conflict_or(err, &d.name, "publish a version of"))?;
    let version = published
        .version()
        .context("PublishVersion returned no version number")?
        .to_owned();
    if published.code_sha256() != Some(d.artifact.code_sha256.as_str()) {
        bail!(
            "version {version} of `{}` has CodeSha256 {:?}, not the uploaded {}: someone \
             changed the function concurrently",
            d.name,
            published.code_sha256(),
            d.artifact.code_sha256
        );
    }
    Ok(version)
}

fn conflict_or(
    err: aws_sdk_lambda::error::SdkError<
        impl aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + 'static,
        impl std::fmt::Debug,
    >,
    name: &str,
    action: &str,
) -> anyhow::Error {
    if is_conflict(&err) {
        anyhow::anyhow!(
            "conflict: `{name}` changed while this deploy ran (another deploy?), so it did not \
             {action} it: {}",
            describe(&err)
        )
    } else {
        anyhow::anyhow!("could not {action} `{name}`: {}", describe(&err))
    }
}

fn environment(d: &Desired) -> Environment {
    Environment::builder()
        .set_variables(Some(d.settings.variables.clone().into_iter().collect()))
        .build()
}

async fn tag_function(clients: &EnvClients, d: &Desired) -> anyhow::Result<()> {
    let arn = format!(
        "arn:aws:lambda:{}:{}:function:{}",
        clients.region, clients.account, d.name
    );
    clients
        .lambda
        .tag_resource()
        .resource(arn)
        .set_tags(Some(d.tags.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|err| anyhow::anyhow!("could not tag `{}`: {}", d.name, describe(&err)))?;
    Ok(())
}

fn lambda_arch(arch: Arch) -> Architecture {
    match arch {
        Arch::Arm64 => Architecture::Arm64,
        Arch::X86_64 => Architecture::X8664,
    }
}
