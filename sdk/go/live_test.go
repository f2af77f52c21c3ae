package edgecd

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edgecd/edgecd/sdk/go/edgecdv1"
)

// TestLiveHub runs the SDK against a running hub (e2e/tests/go_sdk.rs starts
// a dev fleet for it):
//
//	EDGECD_GO_SDK_SERVER    the hub's gRPC URL (https://host:port; http:// for a loopback hub)
//	EDGECD_GO_SDK_CA_FILE   the hub's CA certificate (PEM); the system roots if unset
//	EDGECD_GO_SDK_USERNAME  a local user who may read and sync the apps of some cluster
//	EDGECD_GO_SDK_PASSWORD  its password
//
// It logs in, lists the apps of the cluster with the most apps (at least two)
// with a page size smaller than their count, then watches one of them while
// it syncs it. The hub's apps are otherwise left as they were.
func TestLiveHub(t *testing.T) {
	server := os.Getenv("EDGECD_GO_SDK_SERVER")
	username, password := os.Getenv("EDGECD_GO_SDK_USERNAME"), os.Getenv("EDGECD_GO_SDK_PASSWORD")
	if server == "" || username == "" || password == "" {
		t.Skip("no live hub: EDGECD_GO_SDK_SERVER, EDGECD_GO_SDK_USERNAME and EDGECD_GO_SDK_PASSWORD are not all set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Every ListApplications call is counted, to see the pages.
	var listCalls atomic.Int32
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method == edgecdv1.HubService_ListApplications_FullMethodName {
			listCalls.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	opts := []Option{WithDialOptions(grpc.WithChainUnaryInterceptor(count))}
	if strings.HasPrefix(server, "http://") {
		opts = append(opts, WithInsecurePlaintext())
	} else if ca := os.Getenv("EDGECD_GO_SDK_CA_FILE"); ca != "" {
		opts = append(opts, WithCAFile(ca))
	}
	anonymous, err := Dial(server, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer anonymous.Close()
	info, err := anonymous.GetServerInfo(ctx, &edgecdv1.GetServerInfoRequest{})
	if err != nil {
		t.Fatalf("GetServerInfo: %v", err)
	}
	t.Logf("hub %s at %s, protocol %d.%d", info.GetVersion(), anonymous.Endpoint(), info.GetProtocol().GetMajor(), info.GetProtocol().GetMinor())

	// Log in: without the session token the hub refuses; with it, it knows the user.
	if _, err := anonymous.WhoAmI(ctx, &edgecdv1.WhoAmIRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("WhoAmI without a token: %v, want Unauthenticated", err)
	}
	if _, err := anonymous.LoginPassword(ctx, username, password+"-wrong"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	session, err := anonymous.LoginPassword(ctx, username, password)
	if err != nil {
		t.Fatal(err)
	}
	if session.GetToken() == "" {
		t.Fatal("the login returned no token")
	}
	client := anonymous.WithToken(session.GetToken())
	who, err := client.WhoAmI(ctx, &edgecdv1.WhoAmIRequest{})
	if err != nil || who.GetName() != username {
		t.Fatalf("WhoAmI with the session: %v, %v; want %s", who, err, username)
	}

	// Every app, to choose a filter: the cluster with the most apps.
	byCluster := map[string][]*edgecdv1.ApplicationSummary{}
	for app, err := range client.Applications(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		byCluster[app.GetCluster()] = append(byCluster[app.GetCluster()], app)
	}
	cluster := ""
	for name, apps := range byCluster {
		if len(apps) > len(byCluster[cluster]) || (len(apps) == len(byCluster[cluster]) && name < cluster) {
			cluster = name
		}
	}
	want := byCluster[cluster]
	if len(want) < 2 {
		t.Fatalf("the hub has no cluster with two apps or more (apps by cluster: %d clusters, the largest %q with %d)", len(byCluster), cluster, len(want))
	}

	// The cluster's apps, fewer a page than there are: the first page says so, the iterator follows the rest.
	pageSize := uint32(len(want)+1) / 2
	req := &edgecdv1.ListApplicationsRequest{
		Filter:   &edgecdv1.ApplicationFilter{Clusters: []string{cluster}},
		Sort:     &edgecdv1.ApplicationSort{Field: edgecdv1.ApplicationSortField_APPLICATION_SORT_FIELD_NAME},
		PageSize: pageSize,
	}
	first, err := client.ListApplications(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.GetItems()) != int(pageSize) || first.GetNextPageToken() == "" || first.GetTotal() != uint64(len(want)) {
		t.Fatalf("the first page of %s: %d apps, next token %q, total %d; want %d, a token, %d",
			cluster, len(first.GetItems()), first.GetNextPageToken(), first.GetTotal(), pageSize, len(want))
	}
	listCalls.Store(0)
	var got []string
	for app, err := range client.Applications(ctx, req) {
		if err != nil {
			t.Fatal(err)
		}
		if app.GetCluster() != cluster {
			t.Fatalf("%s/%s is on %s, not %s", app.GetProject(), app.GetName(), app.GetCluster(), cluster)
		}
		got = append(got, app.GetProject()+"/"+app.GetName())
	}
	var expected []string
	for _, app := range want {
		expected = append(expected, app.GetProject()+"/"+app.GetName())
	}
	slices.Sort(expected)
	if !slices.IsSorted(got) || !slices.Equal(got, expected) {
		t.Fatalf("the apps of %s, %d a page: %v; want %v (sorted by name)", cluster, pageSize, got, expected)
	}
	pages := (len(want) + int(pageSize) - 1) / int(pageSize)
	if calls := int(listCalls.Load()); calls != pages {
		t.Fatalf("%d ListApplications calls for %d apps, %d a page; want %d", calls, len(want), pageSize, pages)
	}
	t.Logf("listed the %d apps of %s in %d pages of %d", len(got), cluster, pages, pageSize)

	// Watch one app (a manual one if there is one) and its commands, sync it, see the sync on the watch.
	target := want[0]
	for _, app := range want {
		if !app.GetAutomated() {
			target = app
			break
		}
	}
	ref := &edgecdv1.AppRef{Project: target.GetProject(), Name: target.GetName()}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	events := make(chan *edgecdv1.WatchEvent)
	watchErr := make(chan error, 1)
	go func() {
		defer close(events)
		req := &edgecdv1.WatchRequest{
			Kinds:     []edgecdv1.WatchKind{edgecdv1.WatchKind_WATCH_KIND_APPLICATIONS, edgecdv1.WatchKind_WATCH_KIND_COMMANDS},
			AppFilter: &edgecdv1.ApplicationFilter{Projects: []string{ref.GetProject()}, Names: []string{ref.GetName()}},
		}
		for event, err := range client.WatchEvents(watchCtx, req) {
			if err != nil {
				watchErr <- err
				return
			}
			select {
			case events <- event:
			case <-watchCtx.Done():
				return
			}
		}
	}()
	next := func(what string) *edgecdv1.WatchEvent {
		t.Helper()
		select {
		case event, ok := <-events:
			if !ok {
				select {
				case err := <-watchErr:
					t.Fatalf("the watch ended waiting for %s: %v", what, err)
				default:
					t.Fatalf("the hub closed the watch waiting for %s", what)
				}
			}
			return event
		case <-time.After(90 * time.Second):
			t.Fatalf("no watch event for 90 s waiting for %s", what)
		}
		return nil
	}
	if event := next("the watch to start"); event.GetType() != edgecdv1.WatchEventType_WATCH_EVENT_TYPE_BOOKMARK {
		t.Fatalf("the watch began with %v, want a BOOKMARK", event)
	}

	command, err := client.SyncApplication(ctx, &edgecdv1.SyncApplicationRequest{App: ref, Sync: &edgecdv1.SyncCommand{}})
	if err != nil {
		t.Fatalf("SyncApplication %s/%s: %v", ref.GetProject(), ref.GetName(), err)
	}
	issued := command.GetUpdatedAt().AsTime()
	t.Logf("sync of %s/%s: command %s, %v", ref.GetProject(), ref.GetName(), command.GetCommandId(), command.GetOutcome())
	succeeded, synced := false, false
	for !succeeded || !synced {
		event := next("the sync's result and the app's change")
		if c := event.GetCommand(); c != nil && c.GetCommandId() == command.GetCommandId() {
			t.Logf("watch: command %s %v", c.GetCommandId(), c.GetOutcome())
			switch c.GetOutcome() {
			case edgecdv1.CommandOutcome_COMMAND_OUTCOME_SUCCEEDED:
				succeeded = true
			case edgecdv1.CommandOutcome_COMMAND_OUTCOME_FAILED, edgecdv1.CommandOutcome_COMMAND_OUTCOME_EXPIRED,
				edgecdv1.CommandOutcome_COMMAND_OUTCOME_UNSUPPORTED, edgecdv1.CommandOutcome_COMMAND_OUTCOME_REJECTED:
				t.Fatalf("the sync ended %v: %s", c.GetOutcome(), c.GetMessage())
			}
		}
		if app := event.GetApplication(); app != nil {
			if app.GetProject() != ref.GetProject() || app.GetName() != ref.GetName() {
				t.Fatalf("the watch of %s/%s sent %s/%s", ref.GetProject(), ref.GetName(), app.GetProject(), app.GetName())
			}
			t.Logf("watch: %v %s/%s sync %v, health %v, operation %v, updated %v", event.GetType(), app.GetProject(), app.GetName(),
				app.GetSync(), app.GetHealth(), app.GetOperationPhase(), app.GetUpdatedAt().AsTime())
			if event.GetType() == edgecdv1.WatchEventType_WATCH_EVENT_TYPE_UPSERTED &&
				app.GetOperationPhase() == edgecdv1.OperationPhase_OPERATION_PHASE_SUCCEEDED &&
				!app.GetUpdatedAt().AsTime().Before(issued) {
				synced = true
			}
		}
	}
	stopWatch()
	t.Logf("the watch saw the sync of %s/%s succeed and the app change", ref.GetProject(), ref.GetName())
}
