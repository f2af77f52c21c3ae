//! One application by reference: parsing `NAME` or `PROJECT/NAME`, naming it, reading it; shared by the app commands, bulk actions and waiting, so that none of them imports another for it.

use edgecd_proto::client::Client;
use edgecd_proto::v1;

use crate::exit::Exit;

/// `project/name`, or `name` in `project` (default `default`).
pub fn app_ref(name: &str, project: Option<&str>) -> anyhow::Result<v1::AppRef> {
    let (project, name) = match name.split_once('/') {
        Some((p, n)) => {
            if let Some(flag) = project
                && flag != p
            {
                anyhow::bail!(Exit::usage(format!(
                    "{name:?} names project {p:?} but --project is {flag:?}"
                )));
            }
            (p, n)
        }
        None => (project.unwrap_or("default"), name),
    };
    if project.is_empty() || name.is_empty() || name.contains('/') {
        anyhow::bail!(Exit::usage(format!(
            "invalid application name {name:?}: use NAME or PROJECT/NAME"
        )));
    }
    Ok(v1::AppRef::new(project, name))
}

pub fn display(app: &v1::AppRef) -> String {
    format!("{}/{}", app.project, app.name)
}

pub async fn fetch(client: &Client, app: &v1::AppRef) -> anyhow::Result<v1::Application> {
    Ok(client
        .get_application(v1::GetApplicationRequest {
            app: Some(app.clone()),
        })
        .await?)
}
