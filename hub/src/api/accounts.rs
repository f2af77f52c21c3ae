//! Server info, caller identity, and the account RPCs: login and logout (password or OIDC), users, API tokens scoped to a subset of the caller's roles, bootstrap tokens, and write-only repository credentials.
//!
//! All of them go through `crate::auth::Accounts` (the hub's authenticator);
//! a hub started with `--insecure-disable-auth` has none and answers
//! FAILED_PRECONDITION. Every mutating call is audited; no answer or log
//! line carries a password, a hash, or a token other than the one issued.

use edgecd_core::access::{AuthMethod, Grant};
use edgecd_proto::convert as pc;
use edgecd_proto::v1;
use time::OffsetDateTime;
use tonic::Status;

use super::{Call, HubApi, store_error};
use crate::auth::{AccountError, Accounts, grant_text, parse_grant};

fn accounts(api: &HubApi) -> Result<&Accounts, Status> {
    api.accounts().ok_or_else(|| {
        Status::failed_precondition(
            "accounts are not enabled on this hub (it runs with --insecure-disable-auth)",
        )
    })
}

fn account_status(error: AccountError) -> Status {
    match error {
        AccountError::BadLogin | AccountError::Oidc(_) => {
            Status::unauthenticated(error.to_string())
        }
        AccountError::NoOidc => Status::failed_precondition(error.to_string()),
        AccountError::Invalid { .. } => Status::invalid_argument(error.to_string()),
        AccountError::Limited(limited) => super::with_retry_after(
            Status::resource_exhausted(limited.to_string()),
            limited.retry_after,
        ),
        AccountError::Store(error) => store_error(error, "account"),
        AccountError::Hash(_) => {
            tracing::warn!(%error, "Account operation failed.");
            Status::internal("the hub could not complete the request; see the hub's logs")
        }
    }
}

fn timestamp(at: OffsetDateTime) -> Option<edgecd_proto::Timestamp> {
    Some(pc::timestamp(at))
}

pub(super) async fn server_info(
    api: &HubApi,
    _call: &Call,
    _req: v1::GetServerInfoRequest,
) -> Result<v1::ServerInfo, Status> {
    let accounts = api.accounts();
    let oidc = accounts.and_then(Accounts::oidc);
    let mut login_methods = Vec::new();
    if accounts.is_some() {
        login_methods.push("local".to_owned());
    }
    if oidc.is_some() {
        login_methods.push("oidc".to_owned());
    }
    Ok(v1::ServerInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol: Some(v1::ProtocolVersionInfo {
            major: edgecd_proto::PROTOCOL_MAJOR,
            minor: edgecd_proto::PROTOCOL_MINOR,
        }),
        replica: api.config().replica.clone(),
        login_methods,
        oidc_issuer: oidc.map(|o| o.issuer.clone()).unwrap_or_default(),
        oidc_client_id: oidc.map(|o| o.client_id.clone()).unwrap_or_default(),
        trace_url_template: api.config().trace_url_template.clone(),
    })
}

fn user_info(principal: &edgecd_core::access::Principal) -> v1::UserInfo {
    v1::UserInfo {
        name: principal.subject.clone(),
        admin: principal.admin,
        roles: roles(&principal.grants),
        groups: principal.groups.clone(),
        source: match principal.method {
            AuthMethod::Disabled => "disabled",
            AuthMethod::Password => "local",
            AuthMethod::Oidc => "oidc",
            AuthMethod::ApiToken => "token",
        }
        .to_owned(),
    }
}

fn roles(grants: &[Grant]) -> Vec<v1::ProjectRole> {
    grants
        .iter()
        .map(|g| v1::ProjectRole {
            project: g.project.clone(),
            role: pc::project_role_kind(g.role) as i32,
        })
        .collect()
}

/// `project:role` strings from protocol roles.
fn role_texts(roles: &[v1::ProjectRole]) -> Result<Vec<String>, Status> {
    roles
        .iter()
        .map(|r| {
            let role = pc::from_project_role_kind(r.role).ok_or_else(|| {
                Status::invalid_argument(format!("role of project {:?} is unspecified", r.project))
            })?;
            Ok(grant_text(&Grant {
                project: r.project.clone(),
                role,
            }))
        })
        .collect()
}

fn stored_roles(texts: &[String]) -> (bool, Vec<Grant>) {
    let mut admin = false;
    let mut grants = Vec::new();
    for text in texts {
        match parse_grant(text) {
            Ok(None) => admin = true,
            Ok(Some(grant)) => grants.push(grant),
            Err(_) => {}
        }
    }
    (admin, grants)
}

pub(super) async fn who_am_i(
    _api: &HubApi,
    call: &Call,
    _req: v1::WhoAmIRequest,
) -> Result<v1::UserInfo, Status> {
    Ok(user_info(&call.principal))
}

pub(super) async fn login(
    api: &HubApi,
    call: &Call,
    req: v1::LoginRequest,
) -> Result<v1::LoginResponse, Status> {
    let accounts = accounts(api)?;
    let ip = call
        .peer
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.ip());
    let (target, result) = match req.method {
        Some(v1::login_request::Method::Password(login)) => (
            format!("user:{}", login.username),
            accounts
                .login_password(ip, &login.username, &login.password)
                .await,
        ),
        Some(v1::login_request::Method::OidcIdToken(token)) => {
            ("oidc".to_owned(), accounts.login_oidc(ip, &token).await)
        }
        None => {
            return Err(Status::invalid_argument(
                "login needs a password or an OIDC ID token",
            ));
        }
    };
    let result = result
        .map_err(account_status)
        .map(|issued| v1::LoginResponse {
            user: Some(user_info(&issued.principal)),
            expires_at: issued.expires_at.and_then(timestamp),
            token: issued.token,
        });
    api.audit(call, &target, &result).await;
    result
}

pub(super) async fn logout(
    api: &HubApi,
    call: &Call,
    _req: v1::LogoutRequest,
) -> Result<v1::LogoutResponse, Status> {
    let accounts = accounts(api)?;
    let result = async {
        // Only the session this call presented ends; the caller's other sessions go on.
        if matches!(
            call.principal.method,
            AuthMethod::Password | AuthMethod::Oidc
        ) && let Some(token) = &call.bearer
        {
            accounts.logout(&token.0).await.map_err(account_status)?;
        }
        Ok(v1::LogoutResponse {})
    }
    .await;
    api.audit(call, &format!("user:{}", call.principal.subject), &result)
        .await;
    result
}

pub(super) async fn create_bootstrap_token(
    api: &HubApi,
    call: &Call,
    req: v1::CreateBootstrapTokenRequest,
) -> Result<v1::CreateClusterResponse, Status> {
    let target = format!("cluster:{}", req.cluster);
    let result = async {
        api.authorize_admin(call)?;
        let ttl = req
            .token_ttl
            .and_then(|d| std::time::Duration::try_from(d).ok());
        bootstrap_response(api, &req.cluster, ttl).await
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}

/// A fresh bootstrap token for `cluster` with the install command (also
/// used by `CreateCluster` when the hub has a CA).
pub(super) async fn bootstrap_response(
    api: &HubApi,
    cluster: &str,
    ttl: Option<std::time::Duration>,
) -> Result<v1::CreateClusterResponse, Status> {
    let pki = api.pki().ok_or_else(|| {
        Status::failed_precondition(
            "this hub has no certificate authority: enrollment is not available",
        )
    })?;
    let token = pki
        .create_bootstrap_token(cluster, ttl)
        .await
        .map_err(crate::pki::PkiError::into_status)?;
    let record = api
        .store()
        .get_cluster(cluster)
        .await
        .map_err(|e| store_error(e, format!("cluster {cluster}")))?;
    let install_command = format!(
        "kubectl create namespace edgecd-system && \
         kubectl -n edgecd-system create secret generic edgecd-bootstrap --from-literal=token='{token}' && \
         helm install edgecd-spoke charts/edgecd-spoke -n edgecd-system \
         --set clusterName={cluster} --set hub.address=https://HUB_ADDRESS \
         --set hub.bootstrapToken.existingSecret=edgecd-bootstrap",
        token = token.token,
    );
    Ok(v1::CreateClusterResponse {
        cluster: Some(super::convert::cluster(&record, None)),
        bootstrap_token: token.token.clone(),
        token_expires_at: timestamp(token.expires_at),
        install_command,
        ca_hash: token.ca_hash.clone(),
        hub_address: String::new(),
    })
}

fn sealing(api: &HubApi) -> Result<(&crate::pki::Pki, &crate::pki::MasterKey), Status> {
    let pki = api.pki().ok_or_else(|| {
        Status::failed_precondition(
            "this hub has no master key: repository credentials are not available",
        )
    })?;
    let sealer = pki.sealer().ok_or_else(|| {
        Status::failed_precondition(
            "this hub has no master key: repository credentials are not available",
        )
    })?;
    Ok((pki, sealer))
}

fn repository_info(
    record: &crate::store::security::RepoCredentialRecord,
    kind: &str,
) -> v1::RepositoryInfo {
    v1::RepositoryInfo {
        url_prefix: record.url_prefix.clone(),
        projects: record.projects.clone(),
        kind: kind.to_owned(),
        updated_at: timestamp(record.updated_at),
    }
}

pub(super) async fn set_repository_credential(
    api: &HubApi,
    call: &Call,
    req: v1::SetRepositoryCredentialRequest,
) -> Result<v1::RepositoryInfo, Status> {
    // The target names the prefix only: the secret fields are never logged or audited.
    let target = format!("repository:{}", req.url_prefix);
    let result = async {
        api.authorize_admin(call)?;
        let (pki, sealer) = sealing(api)?;
        if req.url_prefix.trim().is_empty() {
            return Err(Status::invalid_argument("url_prefix is required"));
        }
        let secret = crate::pki::repos::RepoSecret {
            username: req.username.clone(),
            password: req.password.clone(),
            ssh_private_key: req.ssh_private_key.clone(),
            ssh_known_hosts: req.ssh_known_hosts.clone(),
        };
        let record = crate::pki::repos::put(
            pki.security().as_ref(),
            sealer,
            &req.url_prefix,
            &req.projects,
            &secret,
        )
        .await
        .map_err(crate::pki::PkiError::into_status)?;
        api.announce(crate::pki::repos::REPO_CREDENTIALS_CHANNEL, &req.url_prefix)
            .await;
        Ok(repository_info(&record, secret.kind()))
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}

pub(super) async fn list_repositories(
    api: &HubApi,
    call: &Call,
    _req: v1::ListRepositoriesRequest,
) -> Result<v1::ListRepositoriesResponse, Status> {
    api.authorize_admin(call)?;
    let (pki, sealer) = sealing(api)?;
    let records = pki
        .security()
        .list_repo_credentials()
        .await
        .map_err(|e| store_error(e, "repository credentials"))?;
    let items = records
        .iter()
        .map(|r| {
            let kind = crate::pki::repos::open(sealer, r)
                .map(|s| s.kind())
                .unwrap_or("unreadable");
            repository_info(r, kind)
        })
        .collect();
    Ok(v1::ListRepositoriesResponse { items })
}

pub(super) async fn delete_repository_credential(
    api: &HubApi,
    call: &Call,
    req: v1::DeleteRepositoryCredentialRequest,
) -> Result<v1::DeleteRepositoryCredentialResponse, Status> {
    let target = format!("repository:{}", req.url_prefix);
    let result = async {
        api.authorize_admin(call)?;
        let (pki, _) = sealing(api)?;
        pki.security()
            .delete_repo_credential(&req.url_prefix)
            .await
            .map_err(|e| store_error(e, format!("repository credential {}", req.url_prefix)))?;
        api.announce(crate::pki::repos::REPO_CREDENTIALS_CHANNEL, &req.url_prefix)
            .await;
        Ok(v1::DeleteRepositoryCredentialResponse {})
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}

pub(super) async fn create_api_token(
    api: &HubApi,
    call: &Call,
    req: v1::CreateApiTokenRequest,
) -> Result<v1::CreateApiTokenResponse, Status> {
    let accounts = accounts(api)?;
    let target = format!("token:{}", req.name);
    let result = async {
        let caller = &call.principal;
        if caller.method == AuthMethod::ApiToken {
            return Err(Status::permission_denied(
                "an API token cannot create API tokens; log in as a user",
            ));
        }
        // A token carries at most the caller's own rights.
        let mut roles = role_texts(&req.roles)?;
        if req.admin {
            api.authorize_admin(call)?;
            roles.push(crate::auth::ADMIN_ROLE.to_owned());
        }
        for role in &req.roles {
            let wanted = pc::from_project_role_kind(role.role)
                .unwrap_or(edgecd_core::project::ProjectRole::Owner);
            let held = if caller.admin {
                Some(edgecd_core::project::ProjectRole::Owner)
            } else {
                match api.project(&role.project).await {
                    Ok(project) => caller.role_in(&role.project, &project.spec),
                    Err(_) => None,
                }
            };
            if held.is_none_or(|held| held < wanted) {
                return Err(Status::permission_denied(format!(
                    "{} may not give a token role {:?} in project {}: it holds {held:?}",
                    caller.subject, wanted, role.project
                )));
            }
        }
        let ttl = req
            .ttl
            .and_then(|d| std::time::Duration::try_from(d).ok())
            .filter(|d| !d.is_zero());
        let issued = accounts
            .create_api_token(caller, &caller.subject, &req.name, &roles, ttl)
            .await
            .map_err(account_status)?;
        Ok(v1::CreateApiTokenResponse {
            id: issued.id.clone(),
            expires_at: issued.expires_at.and_then(timestamp),
            token: issued.token,
        })
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}

pub(super) async fn list_api_tokens(
    api: &HubApi,
    call: &Call,
    req: v1::ListApiTokensRequest,
) -> Result<v1::ListApiTokensResponse, Status> {
    accounts(api)?;
    let owner = if req.owner.is_empty() || req.owner == call.principal.subject {
        call.principal.subject.as_str()
    } else {
        // Another owner's tokens: admins only.
        api.authorize_admin(call)?;
        req.owner.as_str()
    };
    let tokens = api
        .store()
        .list_tokens(owner)
        .await
        .map_err(|e| store_error(e, "API tokens"))?;
    Ok(v1::ListApiTokensResponse {
        items: tokens
            .iter()
            .map(|t| {
                let (admin, grants) = stored_roles(&t.roles);
                v1::ApiTokenInfo {
                    id: t.id.clone(),
                    name: t.description.clone(),
                    owner: t.owner.clone(),
                    roles: roles(&grants),
                    admin,
                    created_at: timestamp(t.created_at),
                    expires_at: t.expires_at.and_then(timestamp),
                    revoked_at: t.revoked_at.and_then(timestamp),
                }
            })
            .collect(),
    })
}

pub(super) async fn revoke_api_token(
    api: &HubApi,
    call: &Call,
    req: v1::RevokeApiTokenRequest,
) -> Result<v1::RevokeApiTokenResponse, Status> {
    let accounts = accounts(api)?;
    let target = format!("token:{}", req.id);
    let result = async {
        if !call.principal.admin {
            let own = api
                .store()
                .list_tokens(&call.principal.subject)
                .await
                .map_err(|e| store_error(e, "API tokens"))?;
            if !own.iter().any(|t| t.id == req.id) {
                return Err(Status::not_found(format!("API token {}", req.id)));
            }
        }
        accounts
            .revoke_api_token(&req.id)
            .await
            .map_err(account_status)?;
        Ok(v1::RevokeApiTokenResponse {})
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}

pub(super) async fn create_user(
    api: &HubApi,
    call: &Call,
    req: v1::CreateUserRequest,
) -> Result<v1::UserInfo, Status> {
    let accounts = accounts(api)?;
    let target = format!("user:{}", req.name);
    let result = async {
        api.authorize_admin(call)?;
        let roles = role_texts(&req.roles)?;
        let password = (!req.password.is_empty()).then_some(req.password.as_str());
        let user = accounts
            .create_user(&req.name, password, req.admin, &roles)
            .await
            .map_err(account_status)?;
        let (admin, grants) = stored_roles(&user.roles);
        Ok(v1::UserInfo {
            name: user.name,
            admin: admin || user.admin,
            roles: self::roles(&grants),
            groups: vec![],
            source: "local".into(),
        })
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}

/// `DeleteUser` (admins): ends the user's sessions, revokes their API tokens,
/// then removes the account. An admin cannot delete their own account.
pub(super) async fn delete_user(
    api: &HubApi,
    call: &Call,
    req: v1::DeleteUserRequest,
) -> Result<v1::DeleteUserResponse, Status> {
    let accounts = accounts(api)?;
    let target = format!("user:{}", req.name);
    let result = async {
        api.authorize_admin(call)?;
        if req.name == call.principal.subject {
            return Err(Status::failed_precondition(format!(
                "{} cannot delete their own account; another admin can",
                req.name
            )));
        }
        let what = format!("user {}", req.name);
        api.store()
            .get_user(&req.name)
            .await
            .map_err(|e| store_error(e, what.clone()))?;
        let now = OffsetDateTime::now_utc();
        let mut tokens_revoked = 0u32;
        for token in api
            .store()
            .list_tokens(&req.name)
            .await
            .map_err(|e| store_error(e, what.clone()))?
        {
            if token.revoked_at.is_none() {
                api.store()
                    .revoke_token(&token.id, now)
                    .await
                    .map_err(|e| store_error(e, format!("API token {}", token.id)))?;
                tokens_revoked += 1;
            }
        }
        let sessions_ended = accounts
            .security()
            .delete_sessions_of(&req.name)
            .await
            .map_err(|e| store_error(e, what.clone()))?;
        api.store()
            .delete_user(&req.name)
            .await
            .map_err(|e| store_error(e, what))?;
        tracing::info!(user = %req.name, sessions_ended, tokens_revoked, "User deleted.");
        Ok(v1::DeleteUserResponse {
            sessions_ended: u32::try_from(sessions_ended).unwrap_or(u32::MAX),
            tokens_revoked,
        })
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}

pub(super) async fn list_users(
    api: &HubApi,
    call: &Call,
    _req: v1::ListUsersRequest,
) -> Result<v1::ListUsersResponse, Status> {
    accounts(api)?;
    api.authorize_admin(call)?;
    let users = api
        .store()
        .list_users()
        .await
        .map_err(|e| store_error(e, "users"))?;
    Ok(v1::ListUsersResponse {
        items: users
            .iter()
            .map(|u| {
                let (admin, grants) = stored_roles(&u.roles);
                v1::UserInfo {
                    name: u.name.clone(),
                    admin: admin || u.admin,
                    roles: roles(&grants),
                    groups: vec![],
                    source: "local".into(),
                }
            })
            .collect(),
    })
}
