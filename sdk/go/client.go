package edgecd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/edgecd/edgecd/sdk/go/edgecdv1"
)

// MaxMessageSize is the largest response the client accepts by default
// (64 MiB, as the Rust SDK): a large app's manifests or resource tree can
// exceed gRPC-Go's 4 MiB default.
const MaxMessageSize = 64 << 20

// An Option configures [Dial].
type Option func(*config)

type config struct {
	caPEM      []byte
	caFile     string
	plaintext  bool
	token      string
	serverName string
	dialOpts   []grpc.DialOption
}

// WithSystemRoots verifies the hub's certificate against the operating
// system's roots. This is the default.
func WithSystemRoots() Option {
	return func(c *config) { c.caPEM, c.caFile, c.plaintext = nil, "", false }
}

// WithCAPEM verifies the hub's certificate against this CA certificate (PEM)
// only, e.g. the hub's own CA.
func WithCAPEM(pem []byte) Option {
	return func(c *config) { c.caPEM, c.caFile, c.plaintext = pem, "", false }
}

// WithCAFile is [WithCAPEM] with the PEM read from a file when dialing.
func WithCAFile(path string) Option {
	return func(c *config) { c.caPEM, c.caFile, c.plaintext = nil, path, false }
}

// WithInsecurePlaintext connects without TLS (an http:// endpoint). Insecure:
// [Dial] accepts it only for a hub on a loopback address (localhost,
// 127.0.0.0/8, ::1), such as the dev fleet.
func WithInsecurePlaintext() Option {
	return func(c *config) { c.caPEM, c.caFile, c.plaintext = nil, "", true }
}

// WithToken sends "authorization: Bearer <token>" with every call: a session
// token from [Client.LoginPassword] or an API token. Empty means none.
func WithToken(token string) Option {
	return func(c *config) { c.token = token }
}

// WithServerName verifies this name in the hub's certificate instead of the
// endpoint's host.
func WithServerName(name string) Option {
	return func(c *config) { c.serverName = name }
}

// WithDialOptions adds gRPC dial options (interceptors, a custom dialer, ...),
// applied after the SDK's own.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.dialOpts = append(c.dialOpts, opts...) }
}

// A Client is a connection to the hub. Every RPC of edgecd.v1.HubService is
// one of its methods (from the embedded [edgecdv1.HubServiceClient]); the
// bearer token given to [Dial] or [Client.WithToken] goes with each call.
// A Client is safe for concurrent use.
type Client struct {
	edgecdv1.HubServiceClient

	conn     *grpc.ClientConn
	endpoint string
	secure   bool
}

// Dial prepares a client of the hub at endpoint: "https://host:port",
// "http://127.0.0.1:port" (with [WithInsecurePlaintext]), or "host:port"
// (the scheme follows the options). Without a port, https means 443 and
// http 80.
//
// Dial does not wait for the connection: the first call connects (and
// reconnects as needed), so an unreachable hub is reported by that call;
// call GetServerInfo to check at once. Close the client when done.
func Dial(endpoint string, opts ...Option) (*Client, error) {
	var cfg config
	for _, opt := range opts {
		opt(&cfg)
	}
	host, port, err := parseEndpoint(endpoint, cfg.plaintext)
	if err != nil {
		return nil, err
	}
	target := net.JoinHostPort(host, port)
	var transport credentials.TransportCredentials
	if cfg.plaintext {
		if !IsLoopback(host) {
			return nil, fmt.Errorf("edgecd: refusing plaintext to %s: insecure plaintext is only for a hub on loopback; use TLS", target)
		}
		transport = insecure.NewCredentials()
	} else {
		tlsConfig, err := cfg.tls()
		if err != nil {
			return nil, err
		}
		transport = credentials.NewTLS(tlsConfig)
	}
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, PermitWithoutStream: true}),
		grpc.WithUserAgent("edgecd-go-sdk"),
	}
	conn, err := grpc.NewClient("dns:///"+target, append(dialOpts, cfg.dialOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("edgecd: hub endpoint %s: %w", target, err)
	}
	c := &Client{conn: conn, endpoint: target, secure: !cfg.plaintext}
	return c.withToken(cfg.token), nil
}

// tls builds the TLS configuration: the CA given, or the system roots.
func (c *config) tls() (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.serverName}
	pem := c.caPEM
	if c.caFile != "" {
		var err error
		if pem, err = os.ReadFile(c.caFile); err != nil {
			return nil, fmt.Errorf("edgecd: reading the hub's CA: %w", err)
		}
	}
	if pem != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			what := "the CA certificate"
			if c.caFile != "" {
				what = c.caFile
			}
			return nil, fmt.Errorf("edgecd: %s holds no PEM certificate", what)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// parseEndpoint returns the host and port of endpoint, checking that its
// scheme, if any, agrees with plaintext.
func parseEndpoint(endpoint string, plaintext bool) (host, port string, err error) {
	rest := strings.TrimRight(strings.TrimSpace(endpoint), "/")
	if rest == "" {
		return "", "", errors.New("edgecd: the hub endpoint is empty")
	}
	scheme := "https"
	if plaintext {
		scheme = "http"
	}
	if s, after, ok := strings.Cut(rest, "://"); ok {
		switch {
		case s == "http" && !plaintext:
			return "", "", fmt.Errorf("edgecd: %s is plaintext http but TLS is configured (use https://, or WithInsecurePlaintext for a loopback hub)", rest)
		case s == "https" && plaintext:
			return "", "", fmt.Errorf("edgecd: %s is https but insecure plaintext is configured", rest)
		case s != "http" && s != "https":
			return "", "", fmt.Errorf("edgecd: unsupported scheme %q in %s (use https:// or http://)", s, rest)
		}
		rest = after
	}
	if strings.ContainsAny(rest, "/?#@") {
		return "", "", fmt.Errorf("edgecd: the hub endpoint %s has more than a host and port", endpoint)
	}
	host, port, err = net.SplitHostPort(rest)
	if err != nil {
		// No port: the scheme's.
		host, port = strings.TrimSuffix(strings.TrimPrefix(rest, "["), "]"), "443"
		if scheme == "http" {
			port = "80"
		}
	}
	if host == "" {
		return "", "", fmt.Errorf("edgecd: the hub endpoint %s names no host", endpoint)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("edgecd: the hub endpoint %s has no valid port", endpoint)
	}
	return host, port, nil
}

// IsLoopback reports whether host is "localhost" or a loopback IP address
// (127.0.0.0/8, ::1).
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// WithToken returns a client on the same connection that sends token (empty:
// none) with every call, e.g. the one from [Client.LoginPassword]. Closing
// either client closes the shared connection.
func (c *Client) WithToken(token string) *Client {
	return c.withToken(token)
}

func (c *Client) withToken(token string) *Client {
	var creds credentials.PerRPCCredentials
	if token != "" {
		creds = bearer{token: token, secure: c.secure}
	}
	return &Client{
		HubServiceClient: edgecdv1.NewHubServiceClient(authConn{conn: c.conn, creds: creds}),
		conn:             c.conn,
		endpoint:         c.endpoint,
		secure:           c.secure,
	}
}

// LoginPassword logs in as a local user. The response carries the session
// token (Token; pass it to [Client.WithToken]), when it expires and who the
// user is.
func (c *Client) LoginPassword(ctx context.Context, username, password string) (*edgecdv1.LoginResponse, error) {
	resp, err := c.Login(ctx, &edgecdv1.LoginRequest{
		Method: &edgecdv1.LoginRequest_Password{
			Password: &edgecdv1.PasswordLogin{Username: username, Password: password},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("edgecd: logging in as %s at %s: %w", username, c.endpoint, err)
	}
	return resp, nil
}

// Endpoint is the hub's host:port.
func (c *Client) Endpoint() string { return c.endpoint }

// Conn is the underlying gRPC connection.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection (shared with the clients made by
// [Client.WithToken]).
func (c *Client) Close() error { return c.conn.Close() }
