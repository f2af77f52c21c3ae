//! Event and audit-log RPCs: events of an app (readers of its project) or of a cluster (admins); the audit log (admins).

use edgecd_core::access::Action;
use edgecd_proto::convert as pc;
use edgecd_proto::v1;
use tonic::Status;

use super::apps::page_size;
use super::convert;
use super::{Call, HubApi, store_error};
use crate::store::{EventFilter, EventSeverity};

pub(super) async fn list_events(
    api: &HubApi,
    call: &Call,
    req: v1::ListEventsRequest,
) -> Result<v1::ListEventsResponse, Status> {
    let mut filter = EventFilter::default();
    if let Some(app) = &req.app {
        let app = convert::app_ref(Some(app))?;
        api.authorize(call, Action::Read, app.project.as_str())
            .await?;
        filter.app = Some((
            app.project.as_str().to_owned(),
            app.name.as_str().to_owned(),
        ));
    }
    if !req.cluster.is_empty() {
        filter.cluster = Some(req.cluster.clone());
    }
    if filter.app.is_none() {
        // Events of a whole cluster (or fleet) span projects.
        api.authorize_admin(call)?;
    }
    let cursor = (!req.page_token.is_empty()).then_some(req.page_token.as_str());
    let page = api
        .store()
        .list_events(&filter, page_size(req.page_size), cursor)
        .await
        .map_err(|e| store_error(e, "events"))?;
    let warnings_only = req.min_severity == v1::EventSeverity::Warning as i32;
    Ok(v1::ListEventsResponse {
        // Severity is filtered within the page: a page may hold fewer items
        // than asked while more follow.
        items: page
            .items
            .iter()
            .filter(|e| !warnings_only || e.severity == EventSeverity::Warning)
            .map(convert::event)
            .collect(),
        next_page_token: page.next_cursor.unwrap_or_default(),
    })
}

pub(super) async fn list_audit(
    api: &HubApi,
    call: &Call,
    req: v1::ListAuditLogRequest,
) -> Result<v1::ListAuditLogResponse, Status> {
    api.authorize_admin(call)?;
    let since = req.since.as_ref().and_then(pc::from_timestamp);
    let cursor = (!req.page_token.is_empty()).then_some(req.page_token.as_str());
    let page = api
        .store()
        .list_audit(page_size(req.page_size), cursor)
        .await
        .map_err(|e| store_error(e, "the audit log"))?;
    Ok(v1::ListAuditLogResponse {
        // Actor, target and time are filtered within the page (newest first).
        items: page
            .items
            .iter()
            .filter(|a| req.actor.is_empty() || a.actor == req.actor)
            .filter(|a| a.target.starts_with(&req.target_prefix))
            .filter(|a| since.is_none_or(|s| a.time >= s))
            .map(convert::audit)
            .collect(),
        next_page_token: page.next_cursor.unwrap_or_default(),
    })
}
