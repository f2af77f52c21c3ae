package edgecd_test

import (
	"context"
	"fmt"
	"log"
	"os"

	edgecd "github.com/edgecd/edgecd/sdk/go"
	"github.com/edgecd/edgecd/sdk/go/edgecdv1"
)

// Log in, list a project's apps page by page, then sync one while watching
// it. (docs/sdk.md shows this example; it is compiled, not run, by go test.)
func Example() {
	ctx := context.Background()
	client, err := edgecd.Dial("https://hub.example.com:8443", edgecd.WithCAFile("hub-ca.pem"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// A session as a local user; with an API token, pass edgecd.WithToken(token) to Dial instead.
	session, err := client.LoginPassword(ctx, "alice", os.Getenv("EDGECD_PASSWORD"))
	if err != nil {
		log.Fatal(err)
	}
	client = client.WithToken(session.GetToken())

	// Every app of project team-a, fetched a page at a time as the loop goes on.
	list := &edgecdv1.ListApplicationsRequest{
		Filter: &edgecdv1.ApplicationFilter{Projects: []string{"team-a"}},
	}
	for app, err := range client.Applications(ctx, list) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s/%s on %s: %v\n", app.GetProject(), app.GetName(), app.GetCluster(), app.GetSync())
	}

	// Sync team-a/nginx and follow it: the watch starts with a BOOKMARK, after which
	// nothing the sync changes can be missed.
	nginx := &edgecdv1.AppRef{Project: "team-a", Name: "nginx"}
	watch := &edgecdv1.WatchRequest{
		Kinds: []edgecdv1.WatchKind{
			edgecdv1.WatchKind_WATCH_KIND_APPLICATIONS,
			edgecdv1.WatchKind_WATCH_KIND_COMMANDS,
		},
		AppFilter: &edgecdv1.ApplicationFilter{Projects: []string{"team-a"}, Names: []string{"nginx"}},
	}
	var command string
	for event, err := range client.WatchEvents(ctx, watch) {
		if err != nil {
			log.Fatal(err)
		}
		if event.GetType() == edgecdv1.WatchEventType_WATCH_EVENT_TYPE_BOOKMARK && command == "" {
			status, err := client.SyncApplication(ctx, &edgecdv1.SyncApplicationRequest{App: nginx})
			if err != nil {
				log.Fatal(err)
			}
			command = status.GetCommandId()
		}
		if app := event.GetApplication(); app != nil {
			fmt.Println(app.GetName(), app.GetSync(), app.GetHealth(), app.GetOperationPhase())
		}
		if c := event.GetCommand(); c.GetCommandId() == command && command != "" {
			fmt.Println("sync", c.GetOutcome(), c.GetMessage())
			switch c.GetOutcome() {
			case edgecdv1.CommandOutcome_COMMAND_OUTCOME_PENDING,
				edgecdv1.CommandOutcome_COMMAND_OUTCOME_DELIVERED,
				edgecdv1.CommandOutcome_COMMAND_OUTCOME_RUNNING:
				continue
			}
			break // finished: succeeded, failed, expired, unsupported or rejected
		}
	}
}
