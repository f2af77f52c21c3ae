// Package edgecd is the Go client SDK for the edgecd hub's gRPC API,
// edgecd.v1.HubService.
//
// The messages and the service client are generated from the hub's .proto
// files into package [github.com/edgecd/edgecd/sdk/go/edgecdv1]; this
// package adds what every client needs around them: [Dial] with TLS (the
// system roots or the hub's own CA) and a bearer token sent with every call,
// [Client.LoginPassword], iterators that follow the list calls' page tokens
// ([Client.Applications] and the like), and [Client.WatchEvents].
//
// Every RPC of the service is a method of [Client] (it embeds
// [edgecdv1.HubServiceClient]), taking and returning the generated messages.
// Errors are gRPC status errors, possibly wrapped with what the SDK was
// doing: read their code with [google.golang.org/grpc/status.Code].
//
//	client, err := edgecd.Dial("https://hub.example.com:8443",
//		edgecd.WithCAFile("hub-ca.pem"),
//		edgecd.WithToken(os.Getenv("EDGECD_TOKEN")))
//	if err != nil {
//		return err
//	}
//	defer client.Close()
//	req := &edgecdv1.ListApplicationsRequest{
//		Filter: &edgecdv1.ApplicationFilter{Projects: []string{"team-a"}},
//	}
//	for app, err := range client.Applications(ctx, req) {
//		if err != nil {
//			return err
//		}
//		fmt.Printf("%s/%s on %s\n", app.GetProject(), app.GetName(), app.GetCluster())
//	}
package edgecd
