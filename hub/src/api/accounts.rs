//! Server info, caller identity, and the account RPCs (login, users, API tokens, repository credentials, bootstrap tokens) that the security work replaces wholesale.
//!
//! Everything here except `server_info` and `who_am_i` answers UNIMPLEMENTED
//! until accounts land; the hub then runs with `--insecure-disable-auth`.

use edgecd_core::access::AuthMethod;
use edgecd_proto::convert as pc;
use edgecd_proto::v1;
use tonic::Status;

use super::{Call, HubApi};

fn not_yet(what: &str) -> Status {
    Status::unimplemented(format!(
        "{what}: not implemented yet (accounts and enrollment come with the hub's security work, issue #6 follow-up); run the hub with --insecure-disable-auth"
    ))
}

pub(super) async fn server_info(
    api: &HubApi,
    _call: &Call,
    _req: v1::GetServerInfoRequest,
) -> Result<v1::ServerInfo, Status> {
    Ok(v1::ServerInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol: Some(v1::ProtocolVersionInfo {
            major: edgecd_proto::PROTOCOL_MAJOR,
            minor: edgecd_proto::PROTOCOL_MINOR,
        }),
        replica: api.config().replica.clone(),
        login_methods: vec![],
        oidc_issuer: String::new(),
        oidc_client_id: String::new(),
    })
}

pub(super) async fn who_am_i(
    _api: &HubApi,
    call: &Call,
    _req: v1::WhoAmIRequest,
) -> Result<v1::UserInfo, Status> {
    let p = &call.principal;
    Ok(v1::UserInfo {
        name: p.subject.clone(),
        admin: p.admin,
        roles: p
            .grants
            .iter()
            .map(|g| v1::ProjectRole {
                project: g.project.clone(),
                role: pc::project_role_kind(g.role) as i32,
            })
            .collect(),
        groups: p.groups.clone(),
        source: match p.method {
            AuthMethod::Disabled => "disabled",
            AuthMethod::Password => "local",
            AuthMethod::Oidc => "oidc",
            AuthMethod::ApiToken => "token",
        }
        .to_owned(),
    })
}

pub(super) async fn login(
    _api: &HubApi,
    _call: &Call,
    _req: v1::LoginRequest,
) -> Result<v1::LoginResponse, Status> {
    Err(not_yet("Login"))
}

pub(super) async fn logout(
    _api: &HubApi,
    _call: &Call,
    _req: v1::LogoutRequest,
) -> Result<v1::LogoutResponse, Status> {
    Err(not_yet("Logout"))
}

pub(super) async fn create_bootstrap_token(
    _api: &HubApi,
    _call: &Call,
    _req: v1::CreateBootstrapTokenRequest,
) -> Result<v1::CreateClusterResponse, Status> {
    Err(not_yet("CreateBootstrapToken"))
}

pub(super) async fn set_repository_credential(
    _api: &HubApi,
    _call: &Call,
    _req: v1::SetRepositoryCredentialRequest,
) -> Result<v1::RepositoryInfo, Status> {
    Err(not_yet("SetRepositoryCredential"))
}

pub(super) async fn list_repositories(
    _api: &HubApi,
    _call: &Call,
    _req: v1::ListRepositoriesRequest,
) -> Result<v1::ListRepositoriesResponse, Status> {
    Err(not_yet("ListRepositories"))
}

pub(super) async fn delete_repository_credential(
    _api: &HubApi,
    _call: &Call,
    _req: v1::DeleteRepositoryCredentialRequest,
) -> Result<v1::DeleteRepositoryCredentialResponse, Status> {
    Err(not_yet("DeleteRepositoryCredential"))
}

pub(super) async fn create_api_token(
    _api: &HubApi,
    _call: &Call,
    _req: v1::CreateApiTokenRequest,
) -> Result<v1::CreateApiTokenResponse, Status> {
    Err(not_yet("CreateApiToken"))
}

pub(super) async fn list_api_tokens(
    _api: &HubApi,
    _call: &Call,
    _req: v1::ListApiTokensRequest,
) -> Result<v1::ListApiTokensResponse, Status> {
    Err(not_yet("ListApiTokens"))
}

pub(super) async fn revoke_api_token(
    _api: &HubApi,
    _call: &Call,
    _req: v1::RevokeApiTokenRequest,
) -> Result<v1::RevokeApiTokenResponse, Status> {
    Err(not_yet("RevokeApiToken"))
}

pub(super) async fn create_user(
    _api: &HubApi,
    _call: &Call,
    _req: v1::CreateUserRequest,
) -> Result<v1::UserInfo, Status> {
    Err(not_yet("CreateUser"))
}

pub(super) async fn list_users(
    _api: &HubApi,
    _call: &Call,
    _req: v1::ListUsersRequest,
) -> Result<v1::ListUsersResponse, Status> {
    Err(not_yet("ListUsers"))
}
