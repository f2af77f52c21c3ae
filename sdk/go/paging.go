package edgecd

import (
	"context"
	"fmt"
	"iter"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/edgecd/edgecd/sdk/go/edgecdv1"
)

// paginate yields the items of every page, fetching the next page (the one
// after token) only when the caller has consumed the previous one. The first
// error is yielded with a zero item and ends the sequence.
func paginate[T any](ctx context.Context, method, token string, fetch func(ctx context.Context, token string) ([]T, string, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		for {
			items, next, err := fetch(ctx, token)
			if err != nil {
				yield(zero, fmt.Errorf("edgecd: %s: %w", method, err))
				return
			}
			for _, item := range items {
				if !yield(item, nil) {
					return
				}
			}
			if next == "" {
				return
			}
			if next == token {
				yield(zero, fmt.Errorf("edgecd: %s: the hub returned the page token it was given", method))
				return
			}
			token = next
		}
	}
}

// page is a copy of req (a new request when nil) for one page, so the
// caller's request is never changed.
func page[M proto.Message](req M, empty M) M {
	if !req.ProtoReflect().IsValid() {
		return empty
	}
	return proto.CloneOf(req)
}

// Applications yields every application matching req.Filter, in req.Sort
// order, fetching req.PageSize at a time (0: the hub's default, 100) and
// following next_page_token from req.PageToken (empty: the first page) until
// the last page. Stop early by breaking out of the loop; an error ends the
// sequence.
//
//	req := &edgecdv1.ListApplicationsRequest{Filter: &edgecdv1.ApplicationFilter{
//		Health: []edgecdv1.HealthStatusCode{edgecdv1.HealthStatusCode_HEALTH_STATUS_CODE_DEGRADED},
//	}}
//	for app, err := range client.Applications(ctx, req) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(app.GetProject(), app.GetName())
//	}
func (c *Client) Applications(ctx context.Context, req *edgecdv1.ListApplicationsRequest, opts ...grpc.CallOption) iter.Seq2[*edgecdv1.ApplicationSummary, error] {
	return paginate(ctx, "ListApplications", req.GetPageToken(), func(ctx context.Context, token string) ([]*edgecdv1.ApplicationSummary, string, error) {
		r := page(req, &edgecdv1.ListApplicationsRequest{})
		r.PageToken = token
		resp, err := c.ListApplications(ctx, r, opts...)
		return resp.GetItems(), resp.GetNextPageToken(), err
	})
}

// Clusters yields every cluster matching req.Filter, page by page (see
// [Client.Applications]).
func (c *Client) Clusters(ctx context.Context, req *edgecdv1.ListClustersRequest, opts ...grpc.CallOption) iter.Seq2[*edgecdv1.Cluster, error] {
	return paginate(ctx, "ListClusters", req.GetPageToken(), func(ctx context.Context, token string) ([]*edgecdv1.Cluster, string, error) {
		r := page(req, &edgecdv1.ListClustersRequest{})
		r.PageToken = token
		resp, err := c.ListClusters(ctx, r, opts...)
		return resp.GetItems(), resp.GetNextPageToken(), err
	})
}

// Projects yields every project the caller may read, page by page.
func (c *Client) Projects(ctx context.Context, req *edgecdv1.ListProjectsRequest, opts ...grpc.CallOption) iter.Seq2[*edgecdv1.Project, error] {
	return paginate(ctx, "ListProjects", req.GetPageToken(), func(ctx context.Context, token string) ([]*edgecdv1.Project, string, error) {
		r := page(req, &edgecdv1.ListProjectsRequest{})
		r.PageToken = token
		resp, err := c.ListProjects(ctx, r, opts...)
		return resp.GetItems(), resp.GetNextPageToken(), err
	})
}

// ApplicationSets yields every application set of req.Projects (all when
// empty), page by page.
func (c *Client) ApplicationSets(ctx context.Context, req *edgecdv1.ListApplicationSetsRequest, opts ...grpc.CallOption) iter.Seq2[*edgecdv1.ApplicationSet, error] {
	return paginate(ctx, "ListApplicationSets", req.GetPageToken(), func(ctx context.Context, token string) ([]*edgecdv1.ApplicationSet, string, error) {
		r := page(req, &edgecdv1.ListApplicationSetsRequest{})
		r.PageToken = token
		resp, err := c.ListApplicationSets(ctx, r, opts...)
		return resp.GetItems(), resp.GetNextPageToken(), err
	})
}

// Commands yields every command of an app or a cluster, page by page.
func (c *Client) Commands(ctx context.Context, req *edgecdv1.ListCommandsRequest, opts ...grpc.CallOption) iter.Seq2[*edgecdv1.CommandRecord, error] {
	return paginate(ctx, "ListCommands", req.GetPageToken(), func(ctx context.Context, token string) ([]*edgecdv1.CommandRecord, string, error) {
		r := page(req, &edgecdv1.ListCommandsRequest{})
		r.PageToken = token
		resp, err := c.ListCommands(ctx, r, opts...)
		return resp.GetItems(), resp.GetNextPageToken(), err
	})
}

// Events yields every event of an app or a cluster, page by page.
func (c *Client) Events(ctx context.Context, req *edgecdv1.ListEventsRequest, opts ...grpc.CallOption) iter.Seq2[*edgecdv1.Event, error] {
	return paginate(ctx, "ListEvents", req.GetPageToken(), func(ctx context.Context, token string) ([]*edgecdv1.Event, string, error) {
		r := page(req, &edgecdv1.ListEventsRequest{})
		r.PageToken = token
		resp, err := c.ListEvents(ctx, r, opts...)
		return resp.GetItems(), resp.GetNextPageToken(), err
	})
}

// Deployments yields the fleet's deployment record matching req, newest
// first, page by page.
func (c *Client) Deployments(ctx context.Context, req *edgecdv1.ListDeploymentsRequest, opts ...grpc.CallOption) iter.Seq2[*edgecdv1.Deployment, error] {
	return paginate(ctx, "ListDeployments", req.GetPageToken(), func(ctx context.Context, token string) ([]*edgecdv1.Deployment, string, error) {
		r := page(req, &edgecdv1.ListDeploymentsRequest{})
		r.PageToken = token
		resp, err := c.ListDeployments(ctx, r, opts...)
		return resp.GetItems(), resp.GetNextPageToken(), err
	})
}

// AuditLog yields every audit-log entry matching req, page by page.
func (c *Client) AuditLog(ctx context.Context, req *edgecdv1.ListAuditLogRequest, opts ...grpc.CallOption) iter.Seq2[*edgecdv1.AuditEntry, error] {
	return paginate(ctx, "ListAuditLog", req.GetPageToken(), func(ctx context.Context, token string) ([]*edgecdv1.AuditEntry, string, error) {
		r := page(req, &edgecdv1.ListAuditLogRequest{})
		r.PageToken = token
		resp, err := c.ListAuditLog(ctx, r, opts...)
		return resp.GetItems(), resp.GetNextPageToken(), err
	})
}
