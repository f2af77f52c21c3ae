//! The command line (clap derive): global flags, every subcommand and its flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// edgecd: GitOps for Kubernetes fleets at the edge.
///
/// Exit codes: 0 ok, 1 failure, 2 usage error, 3 not found, 4 unauthenticated or permission
/// denied, 5 hub unreachable, 6 wait timed out or app not healthy (see docs/cli.md).
#[derive(Debug, Parser)]
#[command(
    name = "edgecd",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Debug, Args)]
pub struct Global {
    /// Config file (default: $XDG_CONFIG_HOME/edgecd/config.yaml or ~/.config/edgecd/config.yaml).
    #[arg(long, env = "EDGECD_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Context to use instead of the current one.
    #[arg(long, env = "EDGECD_CONTEXT", global = true)]
    pub context: Option<String>,
    /// Hub address, overriding the context's: https://host:port, or http://127.0.0.1:port for a hub on
    /// loopback (an http:// address connects without TLS).
    #[arg(long, env = "EDGECD_SERVER", global = true)]
    pub server: Option<String>,
    /// Bearer token, overriding the context's.
    #[arg(long, env = "EDGECD_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, global = true, default_value_t = Output::Table)]
    pub output: Output,
    /// Timeout of each call to the hub, e.g. 30s, 2m.
    #[arg(long, global = true, default_value = "60s", value_parser = parse_duration)]
    pub request_timeout: Duration,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Wide,
    Yaml,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in to a hub and save it as a context.
    Login(LoginArgs),
    /// Log out: end the session and forget the context's token.
    Logout {
        /// Context to log out of (default: the current one).
        name: Option<String>,
    },
    /// Show, switch and delete contexts.
    #[command(subcommand)]
    Context(ContextCommand),
    /// Show who the token belongs to.
    Whoami,
    /// Show the CLI's and the hub's versions.
    Version,
    /// Applications.
    #[command(subcommand, alias = "apps")]
    App(AppCommand),
    /// Clusters.
    #[command(subcommand, alias = "clusters")]
    Cluster(ClusterCommand),
    /// Projects.
    #[command(subcommand, alias = "projects", alias = "proj")]
    Project(ProjectCommand),
    /// Application sets.
    #[command(subcommand, alias = "appsets")]
    Appset(AppsetCommand),
    /// Repository credentials the hub and the spokes read git with.
    #[command(subcommand, alias = "repos")]
    Repo(RepoCommand),
    /// Local user accounts (admins).
    #[command(subcommand, alias = "users")]
    User(UserCommand),
    /// API tokens: long-lived bearer tokens for scripts and CI.
    #[command(subcommand, alias = "tokens")]
    Token(TokenCommand),
    /// The fleet's deployment record: every sync and rollback on every cluster, newest first.
    History(HistoryArgs),
    /// Create or update everything in edgecd or Argo CD YAML (Application, ApplicationSet, AppProject).
    Apply(ApplyArgs),
    /// Import objects from another tool.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Flags of `edgecd app logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub app: AppName,
    /// KIND/NAME of a pod or of a workload of the app (`deployment/web`, `pod/web-7d9c-x2l`); default: the
    /// app's only workload.
    pub resource: Option<String>,
    #[arg(long, short = 'p')]
    pub project: Option<String>,
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// The container (default: the pod's default container).
    #[arg(long, short = 'c')]
    pub container: Option<String>,
    /// Keep printing new lines until interrupted.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only lines newer than this, e.g. 10m, 1h.
    #[arg(long, value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// Only the last N lines of each log.
    #[arg(long)]
    pub tail: Option<u32>,
    /// The previous container's log (after a restart).
    #[arg(long)]
    pub previous: bool,
}

/// Flags of `edgecd app exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub app: AppName,
    /// The pod (`pod/NAME`, or NAME) or a workload of the app (`deployment/web`: its first running pod);
    /// default: the app's only workload.
    pub resource: Option<String>,
    #[arg(long, short = 'p')]
    pub project: Option<String>,
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// The container (default: the pod's default container).
    #[arg(long, short = 'c')]
    pub container: Option<String>,
    /// Pass stdin to the command.
    #[arg(long, short = 'i')]
    pub stdin: bool,
    /// Give the command a terminal (with -i; ignored when stdin is not a terminal).
    #[arg(long, short = 't')]
    pub tty: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Filters of `edgecd history` (every one given must match).
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only deployments on this cluster.
    #[arg(long, short = 'c')]
    pub cluster: Option<String>,
    /// Only deployments of apps in this project.
    #[arg(long, short = 'p')]
    pub project: Option<String>,
    /// Only deployments of this app (name, or project/name).
    #[arg(long, short = 'a')]
    pub app: Option<String>,
    /// Only deployments started by this user, or by the spoke itself: `automated sync`,
    /// `automated sync (self-heal)`.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Only these results (repeatable): succeeded, failed, error.
    #[arg(long, value_enum)]
    pub result: Vec<DeploymentResult>,
    /// Finished at or after: an RFC 3339 time (2026-12-01T00:00:00Z) or an age (90m, 24h, 7d).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<time::OffsetDateTime>,
    /// Finished before: an RFC 3339 time or an age.
    #[arg(long, value_parser = parse_time)]
    pub until: Option<time::OffsetDateTime>,
    /// Show at most this many (0: all that match).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// A finished operation's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeploymentResult {
    Succeeded,
    Failed,
    Error,
}

/// An RFC 3339 time, or an age before now (`90m`, `24h`, `7d`).
pub fn parse_time(text: &str) -> Result<time::OffsetDateTime, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(at) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let ago = match text.strip_suffix('d') {
        Some(days) => days
            .parse::<u64>()
            .ok()
            .and_then(|d| d.checked_mul(86_400))
            .map(Duration::from_secs),
        None => parse_duration(text).ok(),
    };
    ago.and_then(|ago| time::Duration::try_from(ago).ok())
        .and_then(|ago| time::OffsetDateTime::now_utc().checked_sub(ago))
        .ok_or_else(|| {
            format!("{text:?} is neither an RFC 3339 time (2026-12-01T00:00:00Z) nor an age (90m, 24h, 7d)")
        })
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The hub's gRPC address, e.g. https://hub.example.com:8443 or http://127.0.0.1:50051.
    pub server: String,
    /// Name of the context to save (default: the server's host:port).
    #[arg(long)]
    pub name: Option<String>,
    /// Username for password login.
    #[arg(long, short = 'u', default_value = "admin")]
    pub username: String,
    /// Password (prefer --password-stdin or the prompt: flags end up in shell history).
    #[arg(
        long,
        env = "EDGECD_PASSWORD",
        hide_env_values = true,
        conflicts_with = "password_stdin"
    )]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Use this API token instead of a password login.
    #[arg(long = "with-token", value_name = "TOKEN", conflicts_with_all = ["password", "password_stdin"])]
    pub with_token: Option<String>,
    /// Plaintext gRPC, without TLS: only for a hub on loopback (the dev fleet).
    #[arg(long)]
    pub plaintext: bool,
    /// CA certificate (PEM) to trust instead of the system roots.
    #[arg(long, value_name = "FILE", conflicts_with = "plaintext")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// List contexts (the current one is marked with *).
    List,
    /// Switch to a context.
    Use { name: String },
    /// Print the current context's name.
    Current,
    /// Delete a context.
    Delete { name: String },
}

/// Filters of `app list` (and of bulk commands).
#[derive(Debug, Args, Default, Clone)]
pub struct AppFilterArgs {
    /// Only apps in these projects (repeatable).
    #[arg(long = "project", short = 'p')]
    pub projects: Vec<String>,
    /// Only apps on these clusters (repeatable).
    #[arg(long = "cluster", short = 'c')]
    pub clusters: Vec<String>,
    /// App label selector, e.g. `team=a,tier!=db`.
    #[arg(long, short = 'l')]
    pub selector: Option<String>,
    /// Only apps on clusters matching this label selector.
    #[arg(long)]
    pub cluster_selector: Option<String>,
    /// Only apps with this health (repeatable; any case: `Healthy` or `healthy`).
    #[arg(long, value_enum, ignore_case = true)]
    pub health: Vec<HealthArg>,
    /// Only apps with this sync status (repeatable; any case: `OutOfSync` or `out-of-sync`).
    #[arg(long, value_enum, ignore_case = true)]
    pub sync: Vec<SyncArg>,
    /// Only apps whose name contains this text.
    #[arg(long)]
    pub search: Option<String>,
    /// Only apps named exactly this, at the hub or at any edge: `--name nginx` lists the hub app
    /// `nginx` and every cluster's `nginx@CLUSTER` (repeatable).
    #[arg(long = "name")]
    pub names: Vec<String>,
}

/// A health value; accepted in any case, as printed (`Healthy`) or as typed (`healthy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HealthArg {
    Healthy,
    Progressing,
    Degraded,
    Suspended,
    Missing,
    Unknown,
}

/// A sync status; accepted in any case, as printed (`OutOfSync`) or as typed (`out-of-sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncArg {
    Synced,
    #[value(alias = "outofsync")]
    OutOfSync,
    Unknown,
}

/// An application: `project/name`, or `name` in `--project` (default `default`).
#[derive(Debug, Args, Clone)]
pub struct AppName {
    /// Application name, or project/name.
    pub name: String,
}

/// Flags of `app wait` and of `--wait` on commands.
#[derive(Debug, Args, Clone)]
pub struct WaitArgs {
    /// How long to wait, e.g. 90s, 5m.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Which apps a command acts on: names, or a selection (`-l`, `--cluster`, `--cluster-selector`,
/// `--project`, `--all`) previewed before anything is done.
#[derive(Debug, Args, Clone, Default)]
pub struct Selection {
    /// With a name: the app's project (or write project/name). Without one: act on every app in
    /// these projects (repeatable).
    #[arg(long = "project", short = 'p')]
    pub projects: Vec<String>,
    /// Act on every app whose labels match, e.g. `tier=web,env!=dev` (instead of naming one).
    #[arg(long, short = 'l')]
    pub selector: Option<String>,
    /// Act on every app on these clusters (repeatable).
    #[arg(long = "cluster", short = 'c')]
    pub clusters: Vec<String>,
    /// Act on every app on the clusters whose labels match, e.g. `region=eu`.
    #[arg(long)]
    pub cluster_selector: Option<String>,
    /// Act on every application you may see.
    #[arg(long, conflicts_with_all = ["selector", "clusters", "cluster_selector", "projects"])]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// List applications.
    #[command(alias = "ls")]
    List {
        #[command(flatten)]
        filter: AppFilterArgs,
        /// Apps per call to the hub.
        #[arg(long, default_value_t = 500)]
        page_size: u32,
    },
    /// Show one application: spec, status, resources, conditions.
    Get {
        #[command(flatten)]
        app: AppName,
        /// Project of the app (or write project/name).
        #[arg(long, short = 'p')]
        project: Option<String>,
    },
    /// Create an application from flags or from a file.
    Create(AppCreateArgs),
    /// Create or update the Applications in a file (edgecd or Argo CD YAML).
    Apply {
        /// YAML file with one or more Application documents (`-` for stdin).
        #[arg(long, short = 'f', required = true)]
        file: Vec<PathBuf>,
        /// Validate only.
        #[arg(long)]
        dry_run: bool,
    },
    /// Change an application's spec.
    Set(AppSetArgs),
    /// Delete applications (and their resources in the clusters unless --cascade=false); asks first.
    #[command(alias = "rm")]
    Delete {
        /// Application name, or project/name (or select apps with -l, --cluster, ...).
        name: Option<String>,
        #[command(flatten)]
        selection: Selection,
        /// Delete the apps' resources in their clusters too.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        cascade: bool,
        /// Do not ask for confirmation (needed when standard input is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Sync applications (queue sync commands); a selection is previewed and confirmed first.
    Sync {
        /// Application name, or project/name (or select apps with -l, --cluster, ...).
        name: Option<String>,
        #[command(flatten)]
        selection: Selection,
        /// With a selection: do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Revision to sync to (default: the app's target revision).
        #[arg(long)]
        revision: Option<String>,
        /// Delete resources no longer in git.
        #[arg(long)]
        prune: bool,
        /// Compute what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
        /// Re-create resources that fail to apply.
        #[arg(long)]
        force: bool,
        /// Return once the command is queued instead of waiting for Synced and Healthy.
        #[arg(long)]
        r#async: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Refresh applications: compare with git again; a selection is previewed and confirmed first.
    Refresh {
        /// Application name, or project/name (or select apps with -l, --cluster, ...).
        name: Option<String>,
        #[command(flatten)]
        selection: Selection,
        /// With a selection: do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Re-fetch git and re-render, bypassing caches.
        #[arg(long)]
        hard: bool,
    },
    /// Show how the live state differs from git.
    Diff {
        #[command(flatten)]
        app: AppName,
        #[arg(long, short = 'p')]
        project: Option<String>,
        /// Exit with 1 when there are differences (like `git diff --exit-code`).
        #[arg(long)]
        exit_code: bool,
    },
    /// Show the sync history.
    History {
        #[command(flatten)]
        app: AppName,
        #[arg(long, short = 'p')]
        project: Option<String>,
    },
    /// Roll back to a history entry (see `app history`), by default the previous one; with a
    /// selection, each app to its own previous entry (previewed and confirmed first).
    Rollback {
        /// Application name, or project/name (or select apps with -l, --cluster, ...).
        name: Option<String>,
        /// History id to roll back to (default: the entry before the current one).
        id: Option<i64>,
        #[command(flatten)]
        selection: Selection,
        /// With a selection: do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Delete resources not in that revision.
        #[arg(long)]
        prune: bool,
        /// Return once the command is queued.
        #[arg(long)]
        r#async: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Wait until applications are Synced and Healthy (named, or every app of a selection).
    Wait {
        /// Applications (name or project/name), or select them with -l, --cluster, ...
        names: Vec<String>,
        #[command(flatten)]
        selection: Selection,
        /// Wait for Synced only.
        #[arg(long, conflicts_with = "health")]
        sync: bool,
        /// Wait for Healthy only.
        #[arg(long)]
        health: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Stop the app's running sync or rollback.
    #[command(name = "terminate-op")]
    TerminateOp {
        #[command(flatten)]
        app: AppName,
        #[arg(long, short = 'p')]
        project: Option<String>,
    },
    /// List the app's live resources: what it manages and what they own (ReplicaSets, Pods, …).
    Resources {
        #[command(flatten)]
        app: AppName,
        #[arg(long, short = 'p')]
        project: Option<String>,
    },
    /// Print a resource's live manifest, read from its cluster now (through its spoke).
    Manifest {
        #[command(flatten)]
        app: AppName,
        /// KIND/NAME of a resource of the app (`deployment/web`, `pod/web-7d9c-x2l`).
        resource: String,
        #[arg(long, short = 'p')]
        project: Option<String>,
        /// The resource's namespace, when the app has two of that kind and name.
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// Keep metadata.managedFields.
        #[arg(long)]
        show_managed_fields: bool,
    },
    /// Print a resource's events (and its pods'), read from its cluster now.
    Events {
        #[command(flatten)]
        app: AppName,
        /// KIND/NAME of a resource of the app.
        resource: String,
        #[arg(long, short = 'p')]
        project: Option<String>,
        #[arg(long, short = 'n')]
        namespace: Option<String>,
    },
    /// Print the logs of a pod, or of every pod of a workload, through the app's spoke.
    Logs(LogsArgs),
    /// Run a command in a container of the app's pod through its spoke (`-it` for a shell); exits with the
    /// command's exit code. Needs the project's exec permission.
    Exec(ExecArgs),
    /// Print the rendered manifests.
    Manifests {
        #[command(flatten)]
        app: AppName,
        #[arg(long, short = 'p')]
        project: Option<String>,
        /// Render this revision instead of the app's target.
        #[arg(long)]
        revision: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct AppCreateArgs {
    /// Application name (or project/name); not needed with -f.
    pub name: Option<String>,
    /// Read the Application from a YAML file (edgecd or Argo CD) instead of flags.
    #[arg(long, short = 'f', conflicts_with_all = ["repo", "path"])]
    pub file: Option<PathBuf>,
    #[arg(long, short = 'p')]
    pub project: Option<String>,
    /// Git repository URL.
    #[arg(long, required_unless_present = "file")]
    pub repo: Option<String>,
    /// Directory in the repository.
    #[arg(long, required_unless_present = "file")]
    pub path: Option<String>,
    /// Branch, tag or commit (default HEAD).
    #[arg(long, default_value = "HEAD")]
    pub revision: String,
    /// Cluster to deploy to.
    #[arg(long = "dest-cluster", required_unless_present = "file")]
    pub dest_cluster: Option<String>,
    /// Default namespace for the app's resources.
    #[arg(long = "dest-namespace", default_value = "")]
    pub dest_namespace: String,
    /// Sync automatically when git changes.
    #[arg(long)]
    pub auto_sync: bool,
    /// With --auto-sync: undo changes made in the cluster.
    #[arg(long, requires = "auto_sync")]
    pub self_heal: bool,
    /// With --auto-sync: delete resources no longer in git.
    #[arg(long, requires = "auto_sync")]
    pub auto_prune: bool,
    /// Sync option, e.g. CreateNamespace=true (repeatable).
    #[arg(long = "sync-option")]
    pub sync_options: Vec<String>,
    /// Label key=value (repeatable).
    #[arg(long = "label", short = 'l')]
    pub labels: Vec<String>,
    /// Update the app if it exists.
    #[arg(long)]
    pub upsert: bool,
    /// Validate only.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct AppSetArgs {
    #[command(flatten)]
    pub app: AppName,
    #[arg(long, short = 'p')]
    pub project: Option<String>,
    #[arg(long)]
    pub repo: Option<String>,
    #[arg(long)]
    pub path: Option<String>,
    #[arg(long)]
    pub revision: Option<String>,
    #[arg(long = "dest-namespace")]
    pub dest_namespace: Option<String>,
    /// Turn automated sync on or off.
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub auto_sync: Option<bool>,
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub self_heal: Option<bool>,
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub auto_prune: Option<bool>,
    /// Add or replace a label key=value (repeatable).
    #[arg(long = "label", short = 'l')]
    pub labels: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// List clusters with their connection state and app counts.
    #[command(alias = "ls")]
    List {
        /// Cluster label selector.
        #[arg(long, short = 'l')]
        selector: Option<String>,
        /// Only clusters whose name contains this text.
        #[arg(long)]
        search: Option<String>,
    },
    /// Show one cluster.
    Get { name: String },
    /// Register a cluster; prints its one-time bootstrap token and the spoke's install command.
    Add {
        name: String,
        /// Label key=value (repeatable).
        #[arg(long = "label", short = 'l')]
        labels: Vec<String>,
        /// API server URL (matches Argo CD destination.server).
        #[arg(long)]
        server_url: Option<String>,
    },
    /// Change a cluster's labels or API server URL (admins).
    Set {
        name: String,
        /// Add or replace a label key=value (repeatable).
        #[arg(long = "label", short = 'l')]
        labels: Vec<String>,
        /// Remove a label (repeatable).
        #[arg(long = "remove-label", value_name = "KEY")]
        remove_labels: Vec<String>,
        /// API server URL, what Argo CD's `destination.server` and a set's `{{server}}` match.
        #[arg(long)]
        server_url: Option<String>,
    },
    /// Remove a cluster from the fleet.
    #[command(alias = "rm")]
    Remove { name: String },
    /// Revoke a cluster's certificate: its spoke is refused from now on.
    Revoke {
        name: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Issue a new bootstrap token for a cluster.
    Token { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// List projects.
    #[command(alias = "ls")]
    List,
    /// Show one project.
    Get { name: String },
    /// Create a project. Without --source-repo and --dest it allows nothing (deny by default).
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Allowed source repository glob (repeatable; `*` for any). None: no repository.
        #[arg(long = "source-repo")]
        source_repos: Vec<String>,
        /// Allowed destination `CLUSTER:NAMESPACE` (globs; `*:*` for any). None: no destination.
        #[arg(long = "dest")]
        destinations: Vec<String>,
        /// Update the project if it exists (its sources, destinations and description are replaced).
        #[arg(long)]
        upsert: bool,
    },
    /// Delete a project.
    #[command(alias = "rm")]
    Delete { name: String },
    /// Allow a source repository (URL glob, `*` for any).
    AddSource { name: String, repo: String },
    /// Stop allowing a source repository.
    RemoveSource { name: String, repo: String },
    /// Allow a destination `CLUSTER:NAMESPACE` (globs; `*:*` for any).
    #[command(alias = "add-dest")]
    AddDestination { name: String, destination: String },
    /// Stop allowing a destination.
    #[command(alias = "remove-dest")]
    RemoveDestination { name: String, destination: String },
    /// Who holds which role in a project (owner, deployer, viewer).
    #[command(subcommand)]
    Role(ProjectRoleCommand),
    /// The least role that reads pod logs through the spokes (deployer by default; admins).
    SetLogRole { name: String, role: RoleArg },
    /// The least role that runs commands in containers (`app exec`, the console's terminal), or `off` (the
    /// default: nobody, admins included); admins only. Every exec session is audited.
    SetExecRole { name: String, role: ExecRoleArg },
}

/// Who may exec in a project: a least role, or nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecRoleArg {
    /// Nobody (the default).
    Off,
    Owner,
    Deployer,
    Viewer,
}

/// A project role, as the hub names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Edit the project's apps (and the project's description).
    Owner,
    /// Sync, refresh and roll back the project's apps.
    Deployer,
    /// Read only.
    Viewer,
}

#[derive(Debug, Subcommand)]
pub enum ProjectRoleCommand {
    /// List the project's role bindings.
    #[command(alias = "ls")]
    List { project: String },
    /// Give a role to users and OIDC groups (admins).
    Add {
        project: String,
        #[arg(value_enum, ignore_case = true)]
        role: RoleArg,
        /// Local user (repeatable).
        #[arg(long = "user", short = 'u')]
        users: Vec<String>,
        /// OIDC group (repeatable).
        #[arg(long = "group", short = 'g')]
        groups: Vec<String>,
    },
    /// Take a role from users and groups; with neither, remove the role's whole binding (admins).
    #[command(alias = "rm")]
    Remove {
        project: String,
        #[arg(value_enum, ignore_case = true)]
        role: RoleArg,
        #[arg(long = "user", short = 'u')]
        users: Vec<String>,
        #[arg(long = "group", short = 'g')]
        groups: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Store a credential for every repository URL starting with URL_PREFIX (admins).
    Add {
        /// e.g. https://git.example.com/team-a/ or ssh://git@git.example.com/
        url_prefix: String,
        /// HTTPS user name.
        #[arg(long, short = 'u')]
        username: Option<String>,
        /// HTTPS password or access token (prefer --password-stdin: flags end up in shell history).
        #[arg(long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// SSH private key file (PEM or OpenSSH).
        #[arg(long, value_name = "FILE")]
        ssh_private_key_file: Option<PathBuf>,
        /// known_hosts file for SSH.
        #[arg(long, value_name = "FILE")]
        ssh_known_hosts_file: Option<PathBuf>,
        /// Projects that may use this credential (repeatable; default: every project).
        #[arg(long = "project", short = 'p')]
        projects: Vec<String>,
    },
    /// List repository credentials (never their secrets).
    #[command(alias = "ls")]
    List,
    /// Delete a repository credential.
    #[command(alias = "remove", alias = "delete")]
    Rm { url_prefix: String },
}

/// `PROJECT:ROLE`, e.g. `team-a:deployer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    pub project: String,
    pub role: RoleArg,
}

/// Parses `PROJECT:ROLE`.
pub fn parse_role_grant(text: &str) -> Result<RoleGrant, String> {
    let (project, role) = text
        .split_once(':')
        .ok_or_else(|| format!("expected PROJECT:ROLE (e.g. team-a:deployer), got {text:?}"))?;
    if project.is_empty() {
        return Err(format!("expected PROJECT:ROLE, got {text:?}"));
    }
    let role = RoleArg::from_str(role, true)
        .map_err(|_| format!("unknown role {role:?}: owner, deployer or viewer"))?;
    Ok(RoleGrant {
        project: project.to_owned(),
        role,
    })
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a local user (admins).
    Create {
        name: String,
        /// Password (prefer --password-stdin or the prompt).
        #[arg(long, conflicts_with_all = ["password_stdin", "no_password"])]
        password: Option<String>,
        /// Read the password from standard input.
        #[arg(long, conflicts_with = "no_password")]
        password_stdin: bool,
        /// No password: the user logs in through OIDC only.
        #[arg(long)]
        no_password: bool,
        /// Make the user an admin.
        #[arg(long)]
        admin: bool,
        /// A project role, `PROJECT:ROLE` (owner, deployer, viewer; repeatable).
        #[arg(long = "role", value_parser = parse_role_grant)]
        roles: Vec<RoleGrant>,
    },
    /// List local users (admins).
    #[command(alias = "ls")]
    List,
    /// Delete a local user: their sessions end and their API tokens are revoked (admins).
    #[command(alias = "rm")]
    Delete {
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for yourself; it is printed once.
    Create {
        /// What the token is for, e.g. ci-deploy.
        name: String,
        /// Lifetime, e.g. 720h (default: no expiry).
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<Duration>,
        /// A project role the token carries, `PROJECT:ROLE` (repeatable; at most your own).
        #[arg(long = "role", value_parser = parse_role_grant)]
        roles: Vec<RoleGrant>,
        /// The token acts as an admin (admins only).
        #[arg(long)]
        admin: bool,
    },
    /// List your API tokens (admins: --owner for someone else's).
    #[command(alias = "ls")]
    List {
        #[arg(long)]
        owner: Option<String>,
    },
    /// Revoke an API token by id.
    #[command(alias = "rm", alias = "delete")]
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum AppsetCommand {
    /// List application sets.
    #[command(alias = "ls")]
    List {
        #[arg(long = "project", short = 'p')]
        projects: Vec<String>,
    },
    /// Show one application set.
    Get {
        name: String,
        #[arg(long, short = 'p', default_value = "default")]
        project: String,
    },
    /// Create or update application sets from a file (Argo CD YAML).
    #[command(alias = "create")]
    Apply(ApplyArgs),
    /// Delete an application set.
    #[command(alias = "rm")]
    Delete {
        name: String,
        #[arg(long, short = 'p', default_value = "default")]
        project: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Argo CD YAML (argoproj.io/v1alpha1 Application, ApplicationSet, AppProject), mapped onto
    /// edgecd's objects; anything edgecd does not support is refused naming the field.
    #[command(alias = "argo")]
    Argocd(ApplyArgs),
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// YAML file (`-` for stdin); repeatable.
    #[arg(long, short = 'f', required = true)]
    pub file: Vec<PathBuf>,
    /// Validate only.
    #[arg(long)]
    pub dry_run: bool,
    /// Project for documents that name none.
    #[arg(long, default_value = "default")]
    pub project: String,
    /// Evaluate the application sets in the file at this cluster's spoke (its own cluster is
    /// `https://kubernetes.default.svc` there) instead of at the hub.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Evaluate the application sets in the file at each of these clusters' spokes (comma-separated),
    /// each generating its own cluster's apps.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["cluster", "cluster_selector"])]
    pub clusters: Vec<String>,
    /// Evaluate the application sets in the file at the spoke of every cluster whose labels match
    /// (e.g. `tier=edge`): a cluster that comes to match gets the sets, one that stops matching loses
    /// them and their apps.
    #[arg(long, conflicts_with = "cluster")]
    pub cluster_selector: Option<String>,
}

impl ApplyArgs {
    /// The scope of the file's application sets, in the hub's text form (empty: the hub, or `--cluster`).
    pub fn scope(&self) -> String {
        if let Some(selector) = &self.cluster_selector {
            format!("selector:{selector}")
        } else if !self.clusters.is_empty() {
            format!("clusters:{}", self.clusters.join(","))
        } else {
            String::new()
        }
    }
}

/// Parses `90s`, `5m`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    edgecd_core::duration::GoDuration::parse(text)
        .map(|d| d.0)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn history_times_are_rfc3339_or_ages() {
        let at = parse_time("2026-12-01T00:00:00Z").unwrap();
        assert_eq!(at.unix_timestamp(), 1_796_083_200);
        let week_ago = parse_time("7d").unwrap();
        assert_eq!(
            (time::OffsetDateTime::now_utc() - week_ago).whole_hours(),
            7 * 24
        );
        let ninety_ago = parse_time("90m").unwrap();
        assert_eq!(
            (time::OffsetDateTime::now_utc() - ninety_ago).whole_minutes(),
            90
        );
        let error = parse_time("yesterday").unwrap_err();
        assert!(error.contains("RFC 3339"), "{error}");
        let parsed = Cli::try_parse_from([
            "edgecd", "history", "--result", "failed", "--result", "error", "-c", "edge-1",
        ])
        .unwrap();
        let Command::History(args) = parsed.command else {
            panic!("not history: {:?}", parsed.command);
        };
        assert_eq!(
            args.result,
            [DeploymentResult::Failed, DeploymentResult::Error]
        );
        assert_eq!(args.cluster.as_deref(), Some("edge-1"));
        assert_eq!(args.limit, 50);
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let error = Cli::try_parse_from(["edgecd", "app", "list", "--health", "Fine"])
            .err()
            .map(|e| e.exit_code());
        assert_eq!(error, Some(2));
    }

    #[test]
    fn filters_parse() {
        let cli = Cli::try_parse_from([
            "edgecd",
            "app",
            "list",
            "-p",
            "team-a",
            "--cluster",
            "cluster-1",
            "-l",
            "tier=web",
            "--health",
            "degraded",
            "--sync",
            "out-of-sync",
            "-o",
            "json",
        ]);
        let Ok(Cli {
            command: Command::App(AppCommand::List { filter, .. }),
            global,
        }) = cli
        else {
            panic!("did not parse: {cli:?}");
        };
        assert_eq!(filter.projects, ["team-a"]);
        assert_eq!(filter.health, [HealthArg::Degraded]);
        assert_eq!(filter.sync, [SyncArg::OutOfSync]);
        assert_eq!(global.output, Output::Json);
    }
}
