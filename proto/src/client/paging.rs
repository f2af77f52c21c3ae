//! List calls as async streams that follow the hub's cursor pagination, and the watch stream.

use std::future::Future;

use futures::stream::{self, BoxStream, StreamExt as _, TryStreamExt as _};

use super::{Client, Error, Result};
use crate::v1::*;

/// A stream of items (or the error that ended it), fetched page by page as it is consumed.
pub type ItemStream<T> = BoxStream<'static, Result<T>>;

/// Pages through a list call: `fetch(token)` returns one page's items and the next token
/// (empty when done). Stops after the first error.
fn paginate<T, F, Fut>(fetch: F) -> ItemStream<T>
where
    T: Send + 'static,
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(Vec<T>, String)>> + Send + 'static,
{
    // State: Some(token) while there is a page to fetch.
    stream::try_unfold(Some(String::new()), move |token| {
        let next = token.map(&fetch);
        async move {
            let Some(next) = next else {
                return Ok(None);
            };
            let (items, next_token) = next.await?;
            let state = (!next_token.is_empty()).then_some(next_token);
            Ok(Some((stream::iter(items.into_iter().map(Ok)), state)))
        }
    })
    .try_flatten()
    .boxed()
}

impl Client {
    /// Every application matching `request.filter`, in `request.sort` order, fetched
    /// `request.page_size` at a time (the hub's default if 0).
    ///
    /// ```no_run
    /// # async fn demo(client: edgecd_proto::client::Client) -> Result<(), edgecd_proto::client::Error> {
    /// use edgecd_proto::v1::{ApplicationFilter, HealthStatusCode, ListApplicationsRequest};
    /// use futures::TryStreamExt as _;
    /// let request = ListApplicationsRequest {
    ///     filter: Some(ApplicationFilter {
    ///         health: vec![HealthStatusCode::Degraded as i32],
    ///         ..Default::default()
    ///     }),
    ///     ..Default::default()
    /// };
    /// let degraded: Vec<_> = client.applications(request).try_collect().await?;
    /// println!("{} degraded apps", degraded.len());
    /// # Ok(())
    /// # }
    /// ```
    pub fn applications(&self, request: ListApplicationsRequest) -> ItemStream<ApplicationSummary> {
        let client = self.clone();
        paginate(move |page_token| {
            let (client, request) = (
                client.clone(),
                ListApplicationsRequest {
                    page_token,
                    ..request.clone()
                },
            );
            async move {
                let page = client.list_applications(request).await?;
                Ok((page.items, page.next_page_token))
            }
        })
    }

    /// Every cluster matching `request.filter`.
    pub fn clusters(&self, request: ListClustersRequest) -> ItemStream<Cluster> {
        let client = self.clone();
        paginate(move |page_token| {
            let (client, request) = (
                client.clone(),
                ListClustersRequest {
                    page_token,
                    ..request.clone()
                },
            );
            async move {
                let page = client.list_clusters(request).await?;
                Ok((page.items, page.next_page_token))
            }
        })
    }

    /// Every project.
    pub fn projects(&self, request: ListProjectsRequest) -> ItemStream<Project> {
        let client = self.clone();
        paginate(move |page_token| {
            let (client, request) = (
                client.clone(),
                ListProjectsRequest {
                    page_token,
                    ..request.clone()
                },
            );
            async move {
                let page = client.list_projects(request).await?;
                Ok((page.items, page.next_page_token))
            }
        })
    }

    /// Every application set in `request.projects` (all if empty).
    pub fn application_sets(
        &self,
        request: ListApplicationSetsRequest,
    ) -> ItemStream<ApplicationSet> {
        let client = self.clone();
        paginate(move |page_token| {
            let (client, request) = (
                client.clone(),
                ListApplicationSetsRequest {
                    page_token,
                    ..request.clone()
                },
            );
            async move {
                let page = client.list_application_sets(request).await?;
                Ok((page.items, page.next_page_token))
            }
        })
    }

    /// Every command of an app or a cluster.
    pub fn commands(&self, request: ListCommandsRequest) -> ItemStream<CommandRecord> {
        let client = self.clone();
        paginate(move |page_token| {
            let (client, request) = (
                client.clone(),
                ListCommandsRequest {
                    page_token,
                    ..request.clone()
                },
            );
            async move {
                let page = client.list_commands(request).await?;
                Ok((page.items, page.next_page_token))
            }
        })
    }

    /// Every event of an app or a cluster.
    pub fn events(&self, request: ListEventsRequest) -> ItemStream<Event> {
        let client = self.clone();
        paginate(move |page_token| {
            let (client, request) = (
                client.clone(),
                ListEventsRequest {
                    page_token,
                    ..request.clone()
                },
            );
            async move {
                let page = client.list_events(request).await?;
                Ok((page.items, page.next_page_token))
            }
        })
    }

    /// Every deployment of the fleet's record matching the request, newest first.
    pub fn deployments(&self, request: ListDeploymentsRequest) -> ItemStream<Deployment> {
        let client = self.clone();
        paginate(move |page_token| {
            let (client, request) = (
                client.clone(),
                ListDeploymentsRequest {
                    page_token,
                    ..request.clone()
                },
            );
            async move {
                let page = client.list_deployments(request).await?;
                Ok((page.items, page.next_page_token))
            }
        })
    }

    /// Every audit-log entry matching the request.
    pub fn audit_log(&self, request: ListAuditLogRequest) -> ItemStream<AuditEntry> {
        let client = self.clone();
        paginate(move |page_token| {
            let (client, request) = (
                client.clone(),
                ListAuditLogRequest {
                    page_token,
                    ..request.clone()
                },
            );
            async move {
                let page = client.list_audit_log(request).await?;
                Ok((page.items, page.next_page_token))
            }
        })
    }

    /// Changes to apps, clusters, commands and events as they happen. The stream ends when the hub
    /// closes it; resume with the last event's `resume_token`, and re-list on a RESET event.
    ///
    /// ```no_run
    /// # async fn demo(client: edgecd_proto::client::Client) -> Result<(), edgecd_proto::client::Error> {
    /// use edgecd_proto::v1::{watch_event, WatchKind, WatchRequest};
    /// use futures::TryStreamExt as _;
    /// let mut events = client
    ///     .watch(WatchRequest { kinds: vec![WatchKind::Applications as i32], ..Default::default() })
    ///     .await?;
    /// while let Some(event) = events.try_next().await? {
    ///     if let Some(watch_event::Object::Application(app)) = event.object {
    ///         println!("{}/{} changed", app.project, app.name);
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    /// The logs of a pod (or of every pod of a workload) of an app, read through its spoke; with `follow`,
    /// new lines keep coming until the stream is dropped (which stops the read at the spoke).
    pub async fn stream_pod_logs(
        &self,
        request: StreamPodLogsRequest,
    ) -> Result<ItemStream<PodLogChunk>> {
        let endpoint = self.endpoint.clone();
        let what = Some(super::app_name(request.app.as_ref()));
        let stream = self
            .raw()
            .stream_pod_logs(request)
            .await
            .map_err(|status| Error::from_status(status, "StreamPodLogs", &endpoint, what))?
            .into_inner();
        Ok(stream
            .map_err(move |status| Error::from_status(status, "StreamPodLogs", &endpoint, None))
            .boxed())
    }

    pub async fn watch(&self, request: WatchRequest) -> Result<ItemStream<WatchEvent>> {
        let endpoint = self.endpoint.clone();
        let stream = self
            .raw()
            .watch(request)
            .await
            .map_err(|status| Error::from_status(status, "Watch", &endpoint, None))?
            .into_inner();
        Ok(stream
            .map_err(move |status| Error::from_status(status, "Watch", &endpoint, None))
            .boxed())
    }
}
