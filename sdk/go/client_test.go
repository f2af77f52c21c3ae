package edgecd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/edgecd/edgecd/sdk/go/edgecdv1"
)

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		endpoint   string
		plaintext  bool
		host, port string
		err        string
	}{
		{endpoint: "https://hub.example.com:8443", host: "hub.example.com", port: "8443"},
		{endpoint: " https://hub.example.com/ ", host: "hub.example.com", port: "443"},
		{endpoint: "hub:9000", host: "hub", port: "9000"},
		{endpoint: "https://[::1]:9000", host: "::1", port: "9000"},
		{endpoint: "[::1]", host: "::1", port: "443"},
		{endpoint: "http://127.0.0.1:50051", plaintext: true, host: "127.0.0.1", port: "50051"},
		{endpoint: "localhost", plaintext: true, host: "localhost", port: "80"},
		{endpoint: "", err: "empty"},
		{endpoint: "http://hub:80", err: "plaintext http but TLS is configured"},
		{endpoint: "https://127.0.0.1:1", plaintext: true, err: "https but insecure plaintext"},
		{endpoint: "ftp://hub", err: `unsupported scheme "ftp"`},
		{endpoint: "https://hub:8443/api", err: "more than a host and port"},
		{endpoint: "https://hub:http", err: "no valid port"},
		{endpoint: "https://:8443", err: "names no host"},
	} {
		host, port, err := parseEndpoint(tc.endpoint, tc.plaintext)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseEndpoint(%q): error %v, want one saying %q", tc.endpoint, err, tc.err)
			}
			continue
		}
		if err != nil || host != tc.host || port != tc.port {
			t.Errorf("parseEndpoint(%q) = %q, %q, %v; want %q, %q", tc.endpoint, host, port, err, tc.host, tc.port)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "127.3.2.1": true, "::1": true, "[::1]": true,
		"10.0.0.1": false, "hub.example.com": false, "localhost.example.com": false, "": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestDialRefusesPlaintextBeyondLoopback(t *testing.T) {
	_, err := Dial("http://hub.example.com:80", WithInsecurePlaintext(), WithToken("secret"))
	if err == nil || !strings.Contains(err.Error(), "refusing plaintext") {
		t.Fatalf("Dial: %v, want a refusal", err)
	}
	_, err = Dial("http://10.1.2.3:80", WithInsecurePlaintext())
	if err == nil {
		t.Fatal("Dial accepted plaintext to 10.1.2.3")
	}
}

func TestDialRefusesACAWithoutCertificates(t *testing.T) {
	_, err := Dial("hub:8443", WithCAPEM([]byte("not a certificate")))
	if err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Fatalf("Dial: %v, want a refusal of the CA", err)
	}
	_, err = Dial("hub:8443", WithCAFile(t.TempDir()+"/missing.pem"))
	if err == nil || !strings.Contains(err.Error(), "reading the hub's CA") {
		t.Fatalf("Dial: %v, want a missing CA file", err)
	}
}

// fakeHub serves the few calls the SDK's helpers use, with the hub's rules:
// a token for everything but Login, next_page_token until the last page.
type fakeHub struct {
	edgecdv1.UnimplementedHubServiceServer
	apps      []*edgecdv1.ApplicationSummary
	listCalls atomic.Int32
}

const (
	fakeUser  = "alice"
	fakePass  = "s3cret"
	fakeToken = "session-token-1"
)

func newFakeHub() *fakeHub {
	h := &fakeHub{}
	for i := range 10 {
		project := "team-a"
		if i%2 == 1 {
			project = "team-b"
		}
		h.apps = append(h.apps, &edgecdv1.ApplicationSummary{
			Project: project, Name: fmt.Sprintf("app-%02d", i), Cluster: "cluster-1",
		})
	}
	return h
}

func authorized(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if !slices.Equal(md.Get("authorization"), []string{"Bearer " + fakeToken}) {
		return status.Error(codes.Unauthenticated, "no valid token")
	}
	return nil
}

func (h *fakeHub) Login(_ context.Context, req *edgecdv1.LoginRequest) (*edgecdv1.LoginResponse, error) {
	p := req.GetPassword()
	if p.GetUsername() != fakeUser || p.GetPassword() != fakePass {
		return nil, status.Error(codes.Unauthenticated, "wrong username or password")
	}
	return &edgecdv1.LoginResponse{Token: fakeToken, User: &edgecdv1.UserInfo{Name: fakeUser}}, nil
}

func (h *fakeHub) WhoAmI(ctx context.Context, _ *edgecdv1.WhoAmIRequest) (*edgecdv1.UserInfo, error) {
	if err := authorized(ctx); err != nil {
		return nil, err
	}
	return &edgecdv1.UserInfo{Name: fakeUser}, nil
}

func (h *fakeHub) ListApplications(ctx context.Context, req *edgecdv1.ListApplicationsRequest) (*edgecdv1.ListApplicationsResponse, error) {
	h.listCalls.Add(1)
	if err := authorized(ctx); err != nil {
		return nil, err
	}
	var matching []*edgecdv1.ApplicationSummary
	for _, app := range h.apps {
		if projects := req.GetFilter().GetProjects(); len(projects) == 0 || slices.Contains(projects, app.GetProject()) {
			matching = append(matching, app)
		}
	}
	offset := 0
	if token := req.GetPageToken(); token != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(token, "offset:"))
		if err != nil || n > len(matching) {
			return nil, status.Errorf(codes.InvalidArgument, "bad page token %q", token)
		}
		offset = n
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = 100
	}
	end := min(offset+size, len(matching))
	resp := &edgecdv1.ListApplicationsResponse{Items: matching[offset:end], Total: uint64(len(matching))}
	if end < len(matching) {
		resp.NextPageToken = fmt.Sprintf("offset:%d", end)
	}
	return resp, nil
}

func (h *fakeHub) Watch(req *edgecdv1.WatchRequest, stream grpc.ServerStreamingServer[edgecdv1.WatchEvent]) error {
	if err := authorized(stream.Context()); err != nil {
		return err
	}
	if err := stream.Send(&edgecdv1.WatchEvent{Type: edgecdv1.WatchEventType_WATCH_EVENT_TYPE_BOOKMARK, ResumeToken: "w:0"}); err != nil {
		return err
	}
	for i, app := range h.apps {
		if names := req.GetAppFilter().GetNames(); len(names) > 0 && !slices.Contains(names, app.GetName()) {
			continue
		}
		event := &edgecdv1.WatchEvent{
			Type:        edgecdv1.WatchEventType_WATCH_EVENT_TYPE_UPSERTED,
			ResumeToken: fmt.Sprintf("w:%d", i+1),
			Object:      &edgecdv1.WatchEvent_Application{Application: app},
		}
		if err := stream.Send(event); err != nil {
			return err
		}
	}
	return nil
}

// serve starts hub on loopback (with TLS when creds is not nil) and returns
// its port.
func serve(t *testing.T, hub *fakeHub, creds credentials.TransportCredentials) int {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	server := grpc.NewServer(opts...)
	edgecdv1.RegisterHubServiceServer(server, hub)
	go func() { _ = server.Serve(lis) }()
	t.Cleanup(server.Stop)
	return lis.Addr().(*net.TCPAddr).Port
}

func TestLoginAndPaginationOverLoopbackPlaintext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hub := newFakeHub()
	port := serve(t, hub, nil)
	anonymous, err := Dial(fmt.Sprintf("http://127.0.0.1:%d", port), WithInsecurePlaintext())
	if err != nil {
		t.Fatal(err)
	}
	defer anonymous.Close()

	// Without a token: the hub's Unauthenticated, through the SDK's wrapping.
	yielded := 0
	for _, err := range anonymous.Applications(ctx, nil) {
		yielded++
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "ListApplications") {
			t.Fatalf("anonymous list: %v, want Unauthenticated", err)
		}
	}
	if yielded != 1 {
		t.Fatalf("the anonymous list yielded %d times, want once (its error)", yielded)
	}
	if _, err := anonymous.LoginPassword(ctx, fakeUser, "wrong"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("login with a wrong password: %v, want Unauthenticated", err)
	}

	session, err := anonymous.LoginPassword(ctx, fakeUser, fakePass)
	if err != nil {
		t.Fatal(err)
	}
	client := anonymous.WithToken(session.GetToken())
	if who, err := client.WhoAmI(ctx, &edgecdv1.WhoAmIRequest{}); err != nil || who.GetName() != fakeUser {
		t.Fatalf("WhoAmI: %v, %v", who, err)
	}

	// Five apps of team-a, two a page: three calls; the request is left as it was.
	req := &edgecdv1.ListApplicationsRequest{
		Filter:   &edgecdv1.ApplicationFilter{Projects: []string{"team-a"}},
		PageSize: 2,
	}
	hub.listCalls.Store(0)
	var names []string
	for app, err := range client.Applications(ctx, req) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, app.GetName())
	}
	if want := []string{"app-00", "app-02", "app-04", "app-06", "app-08"}; !slices.Equal(names, want) {
		t.Fatalf("apps %v, want %v", names, want)
	}
	if calls := hub.listCalls.Load(); calls != 3 {
		t.Fatalf("%d ListApplications calls, want 3", calls)
	}
	if req.GetPageToken() != "" {
		t.Fatalf("the caller's request was changed: %v", req)
	}

	// Breaking out fetches no further page.
	hub.listCalls.Store(0)
	seen := 0
	for _, err := range client.Applications(ctx, req) {
		if err != nil {
			t.Fatal(err)
		}
		if seen++; seen == 3 {
			break
		}
	}
	if calls := hub.listCalls.Load(); calls != 2 {
		t.Fatalf("%d ListApplications calls for 3 apps, want 2", calls)
	}

	// From a page token on; a nil request means every app.
	rest := 0
	for _, err := range client.Applications(ctx, &edgecdv1.ListApplicationsRequest{PageToken: "offset:8"}) {
		if err != nil {
			t.Fatal(err)
		}
		rest++
	}
	all := 0
	for _, err := range client.Applications(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		all++
	}
	if rest != 2 || all != 10 {
		t.Fatalf("%d apps from offset 8 and %d in all, want 2 and 10", rest, all)
	}
}

func TestWatchEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	port := serve(t, newFakeHub(), nil)
	client, err := Dial(fmt.Sprintf("127.0.0.1:%d", port), WithInsecurePlaintext(), WithToken(fakeToken))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	req := &edgecdv1.WatchRequest{
		Kinds:     []edgecdv1.WatchKind{edgecdv1.WatchKind_WATCH_KIND_APPLICATIONS},
		AppFilter: &edgecdv1.ApplicationFilter{Names: []string{"app-03", "app-07"}},
	}
	var got []string
	for event, err := range client.WatchEvents(ctx, req) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, event.GetType().String()+" "+event.GetApplication().GetName())
	}
	want := []string{
		"WATCH_EVENT_TYPE_BOOKMARK ",
		"WATCH_EVENT_TYPE_UPSERTED app-03",
		"WATCH_EVENT_TYPE_UPSERTED app-07",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	refused := false
	for _, err := range client.WithToken("").WatchEvents(ctx, req) {
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("watch without a token: %v, want Unauthenticated", err)
		}
		refused = true
	}
	if !refused {
		t.Fatal("a watch without a token was not refused")
	}
}

// selfSigned returns a certificate for 127.0.0.1 and localhost that is its
// own CA, and its PEM.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fake hub"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestTLSWithTheHubsCA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cert, caPEM := selfSigned(t)
	port := serve(t, newFakeHub(), credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}}))

	for _, endpoint := range []string{fmt.Sprintf("https://127.0.0.1:%d", port), fmt.Sprintf("localhost:%d", port)} {
		client, err := Dial(endpoint, WithCAPEM(caPEM), WithToken(fakeToken))
		if err != nil {
			t.Fatal(err)
		}
		who, err := client.WhoAmI(ctx, &edgecdv1.WhoAmIRequest{})
		if err != nil || who.GetName() != fakeUser {
			t.Fatalf("WhoAmI at %s: %v, %v", endpoint, who, err)
		}
		client.Close()
	}

	// The system roots do not know the hub's CA; another name than the certificate's fails too.
	for _, opts := range [][]Option{
		{WithSystemRoots()},
		{WithCAPEM(caPEM), WithServerName("hub.example.com")},
	} {
		client, err := Dial(fmt.Sprintf("https://127.0.0.1:%d", port), opts...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = client.WhoAmI(ctx, &edgecdv1.WhoAmIRequest{})
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("WhoAmI with an unverifiable certificate: %v, want Unavailable", err)
		}
		client.Close()
	}
}
